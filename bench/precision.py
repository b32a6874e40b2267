"""Embedding paths side by side (torch fp32, torch bf16, OpenVINO and ONNX Runtime int8): passage encode rate, question
embedding p50, agreement with fp32, and the quality gate (dense nDCG@10 on SciFact dev and Python-docs dev,
also with passages of one path searched by questions of another).

Method. Each path is the app's own `DenseEncoder.load(model, precision)` (the precision named, so the
start-up self-test checks agreement only). Speed: the passages of the SciFact ingestion slice, batch 32,
each path in turn, rounds rotating the order (`speed_rounds`); the rate is the median over rounds. Question
p50: one SciFact question at a time through `encode_questions` on a one-core worker thread (as the app's
question threads run), blocks of questions per path, rotating. Quality (on every CPU class: OpenVINO's int8
kernels give slightly different vectors on AVX-512 and AVX2-VNNI; ONNX Runtime cannot be limited, so its
figures are its own kernels' on every class, see qa_app/embedding/onnx_int8.py): dense retrieval, nDCG@10 by
qa_app.evaluation; SciFact dev (binary qrels; documents = title + " " + text, truncated at the model's 256
tokens) over the judged documents plus a sample of the others (`--ndcg-full`: the whole corpus); Python-docs
dev (data/eval/python-docs, graded qrels over /usr/share/doc/python3.11/html: each page's passages made by
the Loader's chunker, a page ranked by its best passage) over the judged pages plus a sample of the others.
The cross table ranks documents embedded by one path with questions embedded by another. Document vectors
are cached under bench/results/cache/ keyed by path, model and text hash. Gate (issue 18): |delta nDCG@10|
<= 0.005 against fp32 on both sets and mean cosine to fp32 >= 0.99.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.common import CACHE, PYDOCS_EVAL, PYDOCS_HTML, SCIFACT, Context, Row, emulated, median, on_worker, pct, queries

TOLERANCE = 0.005
MIN_MEAN_COSINE = 0.99
QUESTION_GOAL = 0.6  # question embedding p50 of the chosen path <= 0.6 x fp32's


def paths_to_measure(ctx: Context) -> dict[str, tuple[str, str | None]]:
    """name -> (precision, the one path to run or None: the one this CPU class chooses)."""
    from qa_app.embedding.cpu import candidate_paths, native_bf16

    measured: dict[str, tuple[str, str | None]] = {"fp32": ("fp32", None)}
    # bf16 without bf16 units (or with oneDNN limited to AVX2) is emulated and slower than fp32: not a path anyone runs.
    if native_bf16() and not emulated():
        measured["bf16"] = ("bf16", None)
    measured["int8"] = ("int8", None)
    int8 = candidate_paths("int8")
    if len(int8) > 1:  # OpenVINO where the CPU has VNNI: ONNX Runtime's int8 beside it, for comparison
        measured["int8-" + int8[1].split("-")[0]] = ("int8", int8[1])
    return measured


def encoders(ctx: Context) -> dict[str, Any]:
    from qa_app.embedding.encoder import DenseEncoder

    found = ctx.paths
    for name, (precision, only) in paths_to_measure(ctx).items():
        if name not in found:
            encoder = DenseEncoder.load(ctx.encoder.name, precision, path=only)
            if encoder.precision != precision:
                ctx.log(f"precision: {name} unavailable ({encoder.selection.reason})")
                continue
            found[name] = encoder
    return found


def cached(key: str, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path), True
    CACHE.mkdir(parents=True, exist_ok=True)
    vectors = compute()
    np.save(path, vectors)
    return vectors, False


def rank_documents(doc_vecs: np.ndarray, doc_of_row: list[str], q_vecs: np.ndarray, depth: int = 10) -> list[list[str]]:
    """Per question, documents by their best row (a passage or the document itself), best first."""
    scores = q_vecs @ doc_vecs.T
    ranked = []
    for row in scores:
        order = np.argsort(-row, kind="stable")
        seen: list[str] = []
        for j in order:
            doc = doc_of_row[j]
            if doc not in seen:
                seen.append(doc)
                if len(seen) == depth:
                    break
        ranked.append(seen)
    return ranked


def ndcg(ranked: list[list[str]], qids: list[str], qrels: dict[str, dict[str, int]], binary: bool) -> float:
    from qa_app.evaluation import ndcg_at_k

    return float(np.mean([ndcg_at_k(r, qrels[q], 10, binary=binary) for r, q in zip(ranked, qids, strict=True)]))


def scifact_set(ctx: Context) -> dict[str, Any]:
    from qa_app.evaluation import read_qrels, read_queries

    qrels = read_qrels(SCIFACT / "qrels" / "dev.tsv")
    all_queries = read_queries(SCIFACT / "queries.jsonl")
    qids = sorted(q for q in all_queries if q in qrels)
    docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open()]
    if not ctx.sizes.ndcg_full_corpus:
        judged = {d for rel in qrels.values() for d in rel}
        docs = [d for d in docs if d["_id"] in judged] + [d for d in docs if d["_id"] not in judged][: ctx.sizes.ndcg_sample_docs]
    return {"name": "scifact-dev", "texts": [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs],
            "doc_of_row": [d["_id"] for d in docs], "qids": qids, "questions": [all_queries[q] for q in qids],
            "qrels": qrels, "binary": True,
            "corpus": f"{len(docs)} docs" + ("" if ctx.sizes.ndcg_full_corpus else " (judged + sample)")}


def pydocs_set(ctx: Context) -> dict[str, Any] | None:
    from bench.ingestion import loader_for
    from qa_app.evaluation import read_qrels, read_queries

    if not PYDOCS_HTML.is_dir():
        ctx.log(f"precision: {PYDOCS_HTML} missing (apt-get install python3.11-doc): Python-docs set skipped")
        return None
    qrels = read_qrels(PYDOCS_EVAL / "qrels.tsv")
    all_queries = read_queries(PYDOCS_EVAL / "queries.jsonl")
    qids = sorted(q for q in all_queries if q in qrels)
    judged = sorted({d for rel in qrels.values() for d in rel})
    others = sorted(str(p.relative_to(PYDOCS_HTML)) for p in PYDOCS_HTML.rglob("*.html")
                    if "_" not in p.relative_to(PYDOCS_HTML).parts[0] and str(p.relative_to(PYDOCS_HTML)) not in judged)
    step = max(1, len(others) // max(1, ctx.sizes.pydocs_eval_others))
    pages = judged + others[::step][: ctx.sizes.pydocs_eval_others]
    loader = loader_for(ctx)
    texts, doc_of_row = [], []
    for page in pages:
        for passage in loader.passages_of(PYDOCS_HTML / page):
            texts.append(passage.embed_text)
            doc_of_row.append(page)
    return {"name": "python-docs-dev", "texts": texts, "doc_of_row": doc_of_row, "qids": qids,
            "questions": [all_queries[q] for q in qids], "qrels": qrels, "binary": False,
            "corpus": f"{len(pages)} pages, {len(texts)} passages ({len(judged)} judged + {len(pages) - len(judged)} others)"}


def quality(ctx: Context, found: dict[str, Any]) -> dict[str, Any]:
    sets = [s for s in (scifact_set(ctx), pydocs_set(ctx)) if s is not None]
    out: dict[str, Any] = {}
    for data in sets:
        text_key = hashlib.sha256(json.dumps(data["texts"]).encode()).hexdigest()[:16]
        docs: dict[str, np.ndarray] = {}
        qs: dict[str, np.ndarray] = {}
        from_cache: dict[str, bool] = {}
        for name, encoder in found.items():
            version = getattr(encoder.path, "version", "")  # how the path runs texts: a change means new vectors
            # int8 kernels of different CPU classes give slightly different vectors (OpenVINO's do)
            kernels = f"|{emulated()}" if encoder.precision == "int8" and emulated() else ""
            key = hashlib.sha256(f"{encoder.path_name}|{version}|{encoder.name}|{text_key}{kernels}".encode()).hexdigest()[:16]
            started = time.perf_counter()
            docs[name], from_cache[name] = cached(f"{data['name']}-{name}-{key}",
                                                  lambda e=encoder: on_worker(e.encode, data["texts"], 32))
            qs[name] = on_worker(encoder.encode_questions, data["questions"])
            ctx.log(f"precision/{data['name']}: {name} vectors in {time.perf_counter() - started:.0f} s"
                    f"{' (documents from cache)' if from_cache[name] else ''}")
        cross = {f"{d}/{q}": ndcg(rank_documents(docs[d], data["doc_of_row"], qs[q]), data["qids"], data["qrels"],
                                  data["binary"]) for d in found for q in found}
        cos = {name: np.sum(docs["fp32"] * v, axis=1) for name, v in docs.items() if name != "fp32"}
        out[data["name"]] = {"corpus": data["corpus"], "queries": len(data["qids"]), "vectors_cached": from_cache,
                             "ndcg": {name: cross[f"{name}/{name}"] for name in found}, "cross": cross,
                             "doc_cosine_to_fp32": {n: {"mean": float(c.mean()), "min": float(c.min())} for n, c in cos.items()}}
        ctx.log(f"precision/{data['name']}: dense nDCG@10 " + ", ".join(f"{k} {v:.4f}" for k, v in cross.items()))
    return out


def speed(ctx: Context, found: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from bench.ingestion import passages_for
    from qa_app.embedding.question_batcher import question_threads

    texts = [p.embed_text for p in passages_for(ctx, ctx.scifact_slice())][: ctx.sizes.speed_passages]
    names = list(found)
    for encoder in found.values():
        on_worker(encoder.encode, texts[:32], 32)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in names}
    vectors: dict[str, np.ndarray] = {}
    for rnd in range(ctx.sizes.speed_rounds):
        for name in names[rnd % len(names):] + names[: rnd % len(names)]:
            started = time.perf_counter()
            vectors[name] = on_worker(found[name].encode, texts, 32)
            seconds[name].append(time.perf_counter() - started)
    rates = {name: len(texts) / median(s) for name, s in seconds.items()}
    cos = {name: np.sum(vectors["fp32"] * v, axis=1) for name, v in vectors.items() if name != "fp32"}

    pool = question_threads(1)
    loop = asyncio.new_event_loop()
    latencies: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:
            for q in queries(10, seed=1):
                loop.run_until_complete(loop.run_in_executor(pool, found[name].encode_questions, [q]))
        for rnd in range(ctx.sizes.latency_rounds):
            for name in names[rnd % len(names):] + names[: rnd % len(names)]:
                for q in queries(ctx.sizes.latency_per_round, seed=200 + rnd):
                    started = time.perf_counter()
                    loop.run_until_complete(loop.run_in_executor(pool, found[name].encode_questions, [q]))
                    latencies[name].append(time.perf_counter() - started)
    finally:
        loop.close()
        pool.shutdown()
    question_ms = {name: pct(v, 50) * 1000 for name, v in latencies.items()}
    ctx.log("precision: " + ", ".join(f"{n} {rates[n]:.1f} passages/s, question p50 {question_ms[n]:.1f} ms" for n in names))
    return {"passages": len(texts), "rates": rates, "seconds": seconds, "question_p50_ms": question_ms,
            "question_p95_ms": {n: pct(v, 95) * 1000 for n, v in latencies.items()},
            "cosine_to_fp32": {n: {"mean": float(c.mean()), "min": float(c.min())} for n, c in cos.items()},
            "self_test": {n: e.selection.as_dict() for n, e in found.items()}}


def run(ctx: Context) -> None:
    found = encoders(ctx)
    result: dict[str, Any] = {"paths": {n: e.path_name for n, e in found.items()}, "speed": speed(ctx, found)}
    result["quality"] = quality(ctx, found)
    ctx.details["precision"] = result
    s = result["speed"]
    for name in found:
        if name == "fp32":
            continue
        cos = s["cosine_to_fp32"][name]
        ctx.rows.append(Row(f"encode speed, {found[name].path_name} vs torch-fp32 (batch 32, {s['passages']} passages)",
                            f"{s['rates'][name]:.1f} passages/s", f"{s['rates']['fp32']:.1f} passages/s",
                            s["rates"][name] / s["rates"]["fp32"], "(report)", None,
                            f"cosine to fp32 mean {cos['mean']:.4f}, min {cos['min']:.4f}"))
        ratio = s["question_p50_ms"][name] / s["question_p50_ms"]["fp32"]
        ctx.rows.append(Row(f"question embedding p50, {found[name].path_name} vs torch-fp32 (one question, one core)",
                            f"{s['question_p50_ms'][name]:.1f} ms", f"{s['question_p50_ms']['fp32']:.1f} ms", ratio,
                            f"<= {QUESTION_GOAL}x", ratio <= QUESTION_GOAL if name == "int8" else None))
        gated = not name.startswith("int8-")  # the int8 path measured beside the chosen one: a report
        for set_name, q in result.get("quality", {}).items():
            delta = q["ndcg"][name] - q["ndcg"]["fp32"]
            mean_cos = q["doc_cosine_to_fp32"][name]["mean"]
            ctx.rows.append(Row(f"quality gate, {found[name].path_name}: dense nDCG@10 on {set_name} ({q['corpus']})",
                                f"{q['ndcg'][name]:.4f}", f"{q['ndcg']['fp32']:.4f} (fp32)", None,
                                f"|delta| <= {TOLERANCE}, cosine >= {MIN_MEAN_COSINE}" if gated else "(report)",
                                abs(delta) <= TOLERANCE and mean_cos >= MIN_MEAN_COSINE if gated else None,
                                f"delta {delta:+.4f}; document cosine to fp32 mean {mean_cos:.4f}; "
                                f"{name} passages + fp32 questions {q['cross'][f'{name}/fp32']:.4f}, "
                                f"fp32 passages + {name} questions {q['cross'][f'fp32/{name}']:.4f}"))
