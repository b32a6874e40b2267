"""Tune and measure the answer step offline, on what collect.py saved.

    .venv/bin/python docs/research/answers/tune.py extract /tmp/qa16/python-docs.pkl /tmp/qa16/pdf-manuals.pkl
    .venv/bin/python docs/research/answers/tune.py claims /tmp/qa16/python-docs.pkl /tmp/qa16/pdf-manuals.pkl

`extract`: the share of extracted answers that contain the gold keywords, for the old extractive
answer (BM25 over sentences, as in git commit daa53f8) and for the new one under a grid of weights;
the grid is searched on the FIRST set only and every other set is reported at the weights chosen
there, so they say how the choice carries to questions it was not fitted on.

`claims`: the claim check's measures on dev pairs: each gold-answer sentence against its gold passage
(supported) and against passages that do not hold the answer (unsupported: retrieved passages of
pages that are not gold and lack the keywords, and passages retrieved for off-topic questions);
precision and recall of the "unsupported" flag over a grid of thresholds, chosen on the first set.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import subprocess
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qa_app.answer.claims import THRESHOLDS, support
from qa_app.answer.extractive import (
    WEIGHTS,
    Weights,
    candidate_units,
    extractive_answer,
    format_extract,
    passage_units,
)
from qa_app.evaluation import contains_keywords

ROOT = Path(__file__).resolve().parents[3]

BASELINE_COMMIT = "daa53f8"


def baseline() -> types.ModuleType:
    """The extractive module as it was before issue 16 (BM25 over sentences of the top 3 passages)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:qa_app/answer/extractive.py"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("old_extractive")
    sys.modules["old_extractive"] = module  # dataclasses look their module up
    exec(compile(source, "old_extractive.py", "exec"), module.__dict__)
    return module


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The saved sets, with vectors added (and saved) for units the segmentation now makes."""
    sets = []
    for path in paths:
        with path.open("rb") as handle:
            data = pickle.load(handle)
        wanted: dict[str, None] = {}
        for record in data["records"]:
            for unit in candidate_units(record["passages"], 5):
                wanted.setdefault(unit.embed_text)
            for passage in record.get("gold_passages", []) + record["passages"]:
                for unit in passage_units(1, passage):
                    wanted.setdefault(unit.embed_text)
        missing = [t for t in wanted if t not in data["vectors"]]
        if missing:
            print(f"{path}: embedding {len(missing)} new units", file=sys.stderr)
            encoder = _encoder()
            for start in range(0, len(missing), 32):
                part = sorted(missing[start:start + 32], key=len)
                data["vectors"].update(zip(part, encoder.encode_questions(part), strict=True))
            with path.open("wb") as handle:
                pickle.dump(data, handle)
        sets.append(data)
    return sets


_ENCODER: Any = None


def _encoder() -> Any:
    global _ENCODER
    if _ENCODER is None:
        from qa_app.embedding.encoder import DenseEncoder

        _ENCODER = DenseEncoder.load("all-MiniLM-L6-v2", "fp32")
    return _ENCODER


def answerable(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in data["records"] if r["keywords"]]


# ---------------------------------------------------------------------------------------------- extract


def rate(records: Sequence[dict[str, Any]], answer: Callable[[dict[str, Any]], str]) -> tuple[float, float]:
    """(share of answers holding every keyword, mean characters)."""
    texts = [answer(r) for r in records]
    hits = sum(contains_keywords(t, r["keywords"]) for t, r in zip(texts, records, strict=True))
    return hits / len(records), sum(len(t) for t in texts) / len(records)


def cited_gold(records: Sequence[dict[str, Any]], sentences: Callable[[dict[str, Any]], Sequence[Any]]) -> float:
    """Citation precision: of the passages the answers quote, the share from a gold document."""
    cited = gold = 0
    for record in records:
        numbers = {s.number for s in sentences(record)}
        cited += len(numbers)
        gold += sum(record["gold"][n - 1] for n in numbers)
    return gold / cited if cited else 0.0


def new_answer(vectors: dict[str, np.ndarray], weights: Weights, max_sentences: int,
               use_vectors: bool = True) -> Callable[[dict[str, Any]], str]:
    def answer(record: dict[str, Any]) -> str:
        sentences = extractive_answer(record["question"], record["passages"],
                                      vectors=vectors if use_vectors else None, weights=weights,
                                      max_sentences=max_sentences)
        return format_extract(sentences)
    return answer


def bounds(record: dict[str, Any]) -> tuple[bool, bool]:
    """Whether any top-3 passage, and any single unit of one, holds every keyword (the ceilings)."""
    passages = record["passages"][:3]
    units = candidate_units(passages)
    return (any(contains_keywords(p.text, record["keywords"]) for p in passages),
            any(contains_keywords(u.text, record["keywords"]) for u in units))


GRID = {
    "words": (0.0, 0.1, 0.2),
    "rank_step": (0.03, 0.06, 0.1),
    "passage": (0.0, 0.5),
    "identifier": (0.1, 0.2, 0.3),
    "sentences": (1, 2, 3),
    "more_margin": (0.08, 0.15, 0.25),
    "more_anywhere": (False, True),
}


def extract(sets: list[dict[str, Any]]) -> None:
    old = baseline()
    for data in sets:
        records = answerable(data)
        ceilings = [bounds(r) for r in records]
        old_rate, old_chars = rate(records, lambda r: old.format_extract(old.extractive_answer(r["question"],
                                                                                           r["passages"])))
        old1_rate, old1_chars = rate(records, lambda r: old.format_extract(old.extractive_answer(
            r["question"], r["passages"], max_sentences=1)))
        print(f"\n== {data['set']}: {len(records)} questions with gold answers")
        print(f"ceiling: a top-3 passage holds the keywords {sum(c[0] for c in ceilings) / len(records):.3f}, "
              f"a single unit of one {sum(c[1] for c in ceilings) / len(records):.3f}")
        print(f"old (BM25 over sentences, up to 3)   contains {old_rate:.3f}  mean chars {old_chars:.0f}")
        print(f"old, 1 sentence                      contains {old1_rate:.3f}  mean chars {old1_chars:.0f}")
        old_cp = cited_gold(records, lambda r: old.extractive_answer(r["question"], r["passages"]))
        new_cp = cited_gold(records, lambda r: extractive_answer(r["question"], r["passages"], vectors=data["vectors"]))
        print(f"citation precision: old {old_cp:.3f}, new {new_cp:.3f}")
        for n in (1, 2, 3):
            r, c = rate(records, new_answer(data["vectors"], WEIGHTS, n))
            k, kc = rate(records, new_answer(data["vectors"], WEIGHTS, n, use_vectors=False))
            print(f"new defaults, up to {n} sentence(s)      contains {r:.3f}  mean chars {c:.0f}   "
                  f"(keywords only: {k:.3f}, {kc:.0f})")
    fit = sets[0]
    records = answerable(fit)
    results = []
    for values in itertools.product(*GRID.values()):
        weights = replace(WEIGHTS, **dict(zip(GRID, values, strict=True)))
        if weights.sentences == 1 and (weights.more_margin != GRID["more_margin"][0] or weights.more_anywhere):
            continue  # the same answers as another setting
        r, c = rate(records, new_answer(fit["vectors"], weights, weights.sentences))
        results.append((r, -c, weights.sentences, weights))
    results.sort(key=lambda x: (x[0], x[1]), reverse=True)
    print(f"\n== grid on {fit['set']} ({len(results)} settings): the best 12, then each at the chosen weights")
    for r, c, n, weights in results[:12]:
        shown = {k: getattr(weights, k) for k in GRID}
        print(f"  contains {r:.3f}  chars {-c:.0f}  up to {n}  {shown}")
    print("\nspread of the grid on the first set: "
          f"min {results[-1][0]:.3f}, median {results[len(results) // 2][0]:.3f}, max {results[0][0]:.3f}")
    for data in sets[1:]:
        held = answerable(data)
        for r0, _, n, weights in results[:5]:
            r, c = rate(held, new_answer(data["vectors"], weights, n))
            print(f"  {data['set']}: at {({k: getattr(weights, k) for k in GRID}, n)} (fit {r0:.3f}) "
                  f"contains {r:.3f} chars {c:.0f}")


# ---------------------------------------------------------------------------------------------- claims


Pair = tuple[float, float]


def pairs(data: dict[str, Any], off_topic: list[dict[str, Any]]) -> tuple[list[Pair], dict[str, list[Pair]],
                                                                           dict[str, int]]:
    """Supported pairs and unsupported ones by kind, each (dense, overlap); counts of what was skipped.

    Unsupported kinds: `other_page` (a retrieved passage of a page that is not gold and lacks the
    keywords), `off_topic` (a passage retrieved for an off-topic question), and `swapped` (the gold
    sentence with its keyword replaced by another question's, against the gold passage: a wrong
    fact in the right words, which this check is not expected to catch).
    """
    vectors = data["vectors"]
    supported: list[Pair] = []
    unsupported: dict[str, list[Pair]] = {"other_page": [], "off_topic": [], "swapped": []}
    skipped = {"no_gold_passage": 0, "swapped_not_in_sentence": 0}
    records = answerable(data)
    for i, record in enumerate(records):
        gold = record.get("gold_passages") or []
        if not gold:
            skipped["no_gold_passage"] += 1
        for sentence in record.get("answer_sentences", []):
            if gold:
                measures = [(support(sentence, p, vectors), p) for p in gold]
                (dense, overlap), best_passage = max(measures, key=lambda m: (m[0][0] or 0.0) + m[0][1])
                supported.append((dense or 0.0, overlap))
                swapped = _swap(sentence, record["keywords"], records[(i + 1) % len(records)]["keywords"])
                if swapped is None:
                    skipped["swapped_not_in_sentence"] += 1
                else:
                    d, o = support(swapped, best_passage, {**vectors, **_vectors([swapped])})
                    unsupported["swapped"].append((d or 0.0, o))
            for passage, is_gold in zip(record["passages"], record["gold"], strict=True):
                if not is_gold and not any(contains_keywords(passage.embed_text, [k]) for k in record["keywords"]):
                    d, o = support(sentence, passage, vectors)
                    unsupported["other_page"].append((d or 0.0, o))
            if off_topic:
                other = off_topic[i % len(off_topic)]
                for passage in other["passages"][:2]:
                    d, o = support(sentence, passage, vectors)
                    unsupported["off_topic"].append((d or 0.0, o))
    return supported, unsupported, skipped


def _swap(sentence: str, keywords: Sequence[str], others: Sequence[str]) -> str | None:
    """`sentence` with the first alternative of its first keyword that it holds replaced by another
    question's first keyword (None when the sentence holds none)."""
    for alternative in keywords[0].split("|"):
        at = sentence.lower().find(alternative.lower())
        if alternative and at >= 0:
            return sentence[:at] + others[0].split("|")[0] + sentence[at + len(alternative):]
    return None


_SWAPPED: dict[str, np.ndarray] = {}


def _vectors(texts: list[str]) -> dict[str, np.ndarray]:
    missing = [t for t in texts if t not in _SWAPPED]
    if missing:
        _SWAPPED.update(zip(missing, _encoder().encode_questions(missing), strict=True))
    return {t: _SWAPPED[t] for t in texts}


def flags(pairs_: list[Pair], dense: float, overlap: float) -> int:
    return sum(not (d >= dense and o >= overlap) for d, o in pairs_)


def report(supported: list[Pair], unsupported: list[Pair], dense: float, overlap: float) -> dict[str, float]:
    false_flags = flags(supported, dense, overlap)
    true_flags = flags(unsupported, dense, overlap)
    flagged = false_flags + true_flags
    return {"precision": round(true_flags / flagged if flagged else 0.0, 3),
            "recall": round(true_flags / len(unsupported), 3),
            "false_flag_rate": round(false_flags / len(supported), 3)}


def _percentiles(values: list[Pair]) -> str:
    d = np.array([v[0] for v in values])
    o = np.array([v[1] for v in values])
    return (f"dense p10/p50/p90 {np.percentile(d, 10):.2f}/{np.percentile(d, 50):.2f}/{np.percentile(d, 90):.2f}"
            f"   overlap p10/p50/p90 {np.percentile(o, 10):.2f}/{np.percentile(o, 50):.2f}/{np.percentile(o, 90):.2f}")


def claims(sets: list[dict[str, Any]]) -> None:
    measured = []
    for data in sets:
        off_topic = [r for r in data["records"] if r["qid"].startswith("off-topic:")]
        supported, by_kind, skipped = pairs(data, off_topic)
        unsupported = by_kind["other_page"] + by_kind["off_topic"]  # what the thresholds are fitted on
        measured.append((data["set"], supported, unsupported, by_kind))
        print(f"\n== {data['set']}: {len(supported)} supported pairs; unsupported "
              f"{ {k: len(v) for k, v in by_kind.items()} }; skipped {skipped}")
        print(f"  {'supported':12} {_percentiles(supported)}")
        for kind, values in by_kind.items():
            print(f"  {kind:12} {_percentiles(values)}")
    name, supported, unsupported, _ = measured[0]
    grid = [(d / 100, o / 100) for d in range(30, 81, 5) for o in range(0, 91, 10)]
    print(f"\n== thresholds on {name} (other_page + off_topic): F1 of the flag, and the best recall with at most "
          f"10% false flags")
    scored = []
    for dense, overlap in grid:
        r = report(supported, unsupported, dense, overlap)
        f1 = 2 * r["precision"] * r["recall"] / (r["precision"] + r["recall"]) if r["precision"] + r["recall"] else 0
        scored.append((f1, dense, overlap, r))
    for f1, dense, overlap, r in sorted(scored, key=lambda s: s[0], reverse=True)[:3]:
        print(f"  F1 {f1:.3f} at dense {dense:.2f} overlap {overlap:.2f}: {r}")
    capped = [s for s in scored if s[3]["false_flag_rate"] <= 0.10]
    capped.sort(key=lambda s: (s[3]["recall"], s[0]), reverse=True)
    for _, dense, overlap, r in capped[:3]:
        print(f"  capped: dense {dense:.2f} overlap {overlap:.2f}: {r}")
    dense, overlap = THRESHOLDS.dense, THRESHOLDS.overlap
    print(f"\n== at the thresholds in qa_app (dense {dense}, overlap {overlap})")
    for set_name, sup, uns, by_kind in measured:
        print(f"  {set_name}: {report(sup, uns, dense, overlap)}")
        for kind, values in by_kind.items():
            print(f"      {kind:10} flagged {flags(values, dense, overlap)} of {len(values)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["extract", "claims"])
    parser.add_argument("sets", nargs="+", type=Path, help="collect.py outputs; the first is tuned on")
    args = parser.parse_args()
    sets = load(args.sets)
    {"extract": extract, "claims": claims}[args.what](sets)


if __name__ == "__main__":
    main()
