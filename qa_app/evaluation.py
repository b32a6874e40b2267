"""Measure retrieval on a BEIR-style query set: nDCG@10, Recall@10/100, MRR@10 and hit@5.

The metric functions are pure (a ranked list of document ids and the query's judgements in, a number
out) and follow trec_eval: gain = relevance grade, discount = log2(rank + 1), the ideal ranking built
from every judged document, a document relevant when its grade is at least 1.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from qa_app.answer.answerer import Answer
from qa_app.errors import EvalInputError, ReadError
from qa_app.ingest.readers import beir_records
from qa_app.models import Passage
from qa_app.search.query import MODES, Query, SearchResult
from qa_app.service import QAService

Qrels = dict[str, dict[str, int]]  # query id -> document id -> relevance grade
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "hit@5")
DEFAULT_DEPTH = 100  # passages fetched per query: Recall@100 needs at least 100 ranks


# -- metrics ---------------------------------------------------------------------------------------


def _gains(judged: Mapping[str, int], binary: bool) -> dict[str, int]:
    """Positive grades only (binary: every relevant document counts 1)."""
    return {doc: (1 if binary else rel) for doc, rel in judged.items() if rel > 0}


def dcg_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int, *, binary: bool = False) -> float:
    gains = _gains(judged, binary)
    return sum(gains.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], 1))


def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int, *, binary: bool = False) -> float:
    """DCG of the ranking over DCG of the ideal ranking of all judged documents; 0 with none relevant."""
    ideal = sorted(_gains(judged, binary).values(), reverse=True)[:k]
    best = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, 1))
    return dcg_at_k(ranked, judged, k, binary=binary) / best if best else 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, rel in judged.items() if rel > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document within the top k, else 0."""
    for rank, doc in enumerate(ranked[:k], 1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def hit_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    return 1.0 if mrr_at_k(ranked, judged, k) else 0.0


def query_metrics(ranked: Sequence[str], judged: Mapping[str, int], *, binary: bool = False) -> dict[str, float]:
    return {
        "ndcg@10": ndcg_at_k(ranked, judged, 10, binary=binary),
        "recall@10": recall_at_k(ranked, judged, 10),
        "recall@100": recall_at_k(ranked, judged, 100),
        "mrr@10": mrr_at_k(ranked, judged, 10),
        "hit@5": hit_at_k(ranked, judged, 5),
    }


def mean_metrics(per_query: Iterable[Mapping[str, float]]) -> dict[str, float]:
    rows = list(per_query)
    return {m: (sum(r[m] for r in rows) / len(rows) if rows else 0.0) for m in METRICS}


# -- passages to documents -------------------------------------------------------------------------


def _suffix_index(judged_ids: Iterable[str]) -> dict[str, str]:
    return {doc.replace("\\", "/").strip("/"): doc for doc in judged_ids}


def document_of(passage: Passage, judged_suffixes: Mapping[str, str]) -> str:
    """The document a passage belongs to, named as the qrels name it when they do.

    A passage with a `doc_id` (a BEIR JSONL corpus) is that document. One without (a folder of pages)
    is its `source`, or the judged id that is a path suffix of it, whole components only: qrels id
    `library/functools.html` names source `/usr/share/doc/python3.11/html/library/functools.html`.
    The longest matching suffix wins. A passage of a paged document (PDF) is first looked up by page,
    as `FILE#PAGE` for each page it spans (qrels id `R-intro.pdf#12`), then as its file.
    """
    if passage.doc_id:
        return passage.doc_id
    source = passage.source.replace("\\", "/")
    if passage.page:
        for page in range(passage.page, max(passage.page, passage.page_end) + 1):
            found = _judged_suffix(f"{source}#{page}", judged_suffixes)
            if found is not None:
                return found
    return _judged_suffix(source, judged_suffixes) or passage.source


def _judged_suffix(path: str, judged_suffixes: Mapping[str, str]) -> str | None:
    parts = path.strip("/").split("/")
    for start in range(len(parts)):  # longest suffix first
        found = judged_suffixes.get("/".join(parts[start:]))
        if found is not None:
            return found
    return None


def qrels_by_file(qrels: Qrels) -> Qrels:
    """Judgements of pages (`FILE#PAGE`) as judgements of their files, each file at its best grade: to
    score whether the right file was found, whatever the page."""
    by_file: Qrels = {}
    for qid, judged in qrels.items():
        files: dict[str, int] = {}
        for doc, grade in judged.items():
            name = doc.rsplit("#", 1)[0] if re.search(r"#\d+$", doc) else doc
            files[name] = max(grade, files.get(name, grade))
        by_file[qid] = files
    return by_file


def rank_documents(passages: Sequence[Passage], judged_suffixes: Mapping[str, str]) -> list[str]:
    """Documents in order of their best passage (passages arrive best first); each one once."""
    seen: dict[str, None] = {}
    for passage in passages:
        seen.setdefault(document_of(passage, judged_suffixes), None)
    return list(seen)


# -- input files -----------------------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a BOM allowed); EvalInputError when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path}: cannot read: {exc}") from None


def read_queries(path: Path) -> dict[str, str]:
    """BEIR queries.jsonl: {"_id", "text"} a line."""
    queries: dict[str, str] = {}
    lines = _read_lines(path)
    try:
        for record in beir_records("\n".join(lines)):
            queries[str(record["_id"])] = record.get("text", "")
    except ReadError as exc:
        raise EvalInputError(f"{path} {exc}") from None
    return queries


def read_qrels(path: Path) -> Qrels:
    """BEIR qrels TSV: query-id, corpus-id, score; a header line first (skipped when not numeric)."""
    qrels: Qrels = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path}: cannot read: {exc}") from None
    for number, row in enumerate(rows, 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 3:
            raise EvalInputError(f"{path} line {number}: expected query-id, corpus-id and score separated by tabs")
        try:
            score = int(float(row[2]))
        except ValueError:
            if number == 1:
                continue  # the header
            raise EvalInputError(f"{path} line {number}: score {row[2]!r} is not a number") from None
        qrels.setdefault(row[0].strip(), {})[row[1].strip()] = score
    return qrels


# -- running ---------------------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    metrics: dict[str, float]
    queries: int
    seconds: float
    mean_documents: float  # distinct documents retrieved per query: below 100 understates Recall@100
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {**{k: round(v, 4) for k, v in self.metrics.items()}, "queries": self.queries,
                "seconds": round(self.seconds, 2), "mean_documents": round(self.mean_documents, 1)}


@dataclass
class EvalReport:
    results: list[ModeResult]
    queries: int
    unjudged: int  # queries without a relevant judgement: not evaluated, as trec_eval does
    missing: int  # judged queries absent from the queries file
    depth: int
    binary: bool

    def as_dict(self) -> dict[str, object]:
        return {"queries": self.queries, "unjudged": self.unjudged, "missing": self.missing,
                "depth": self.depth, "relevance": "binary" if self.binary else "graded",
                "modes": {r.mode: r.as_dict() for r in self.results}}

    def table(self) -> str:
        head = ["mode", *METRICS, "docs", "queries", "seconds"]
        rows = [[r.mode, *(f"{r.metrics[m]:.4f}" for m in METRICS), f"{r.mean_documents:.1f}", str(r.queries),
                 f"{r.seconds:.1f}"] for r in self.results]
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                 for row in [head, *rows]]
        notes = [f"depth {self.depth} passages a query, {self.relevance_name} relevance"]
        if self.unjudged:
            notes.append(f"{self.unjudged} queries without relevant judgements skipped")
        if self.missing:
            notes.append(f"{self.missing} judged queries missing from the queries file")
        return "\n".join([*lines, "; ".join(notes)])

    @property
    def relevance_name(self) -> str:
        return "binary" if self.binary else "graded"


async def evaluate_mode(service: QAService, queries: Mapping[str, str], qrels: Qrels, mode: str, *,
                        depth: int = DEFAULT_DEPTH, concurrency: int = 8, binary: bool = False,
                        show_progress: bool = True) -> ModeResult:
    """Ask every query (at most `concurrency` at a time) and average its metrics."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    await service.ready()
    suffixes = _suffix_index({doc for judged in qrels.values() for doc in judged})
    gate = asyncio.Semaphore(max(1, concurrency))
    per_query: dict[str, dict[str, float]] = {}
    documents: dict[str, int] = {}
    bar = tqdm(total=len(queries), desc=f"eval {mode}", unit="query", disable=not show_progress, leave=False)

    async def one(qid: str, text: str) -> None:
        async with gate:
            # Built directly, not by parse_query: the eval may go past max_top_k to reach Recall@100.
            result = await service.ask(Query(text, top_k=depth, mode=mode))
        ranked = rank_documents(result.passages, suffixes)
        per_query[qid] = query_metrics(ranked, qrels[qid], binary=binary)
        documents[qid] = len(ranked)
        bar.update(1)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(qid, text) for qid, text in queries.items()))
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    ordered = {qid: per_query[qid] for qid in queries}
    mean_docs = sum(documents.values()) / len(documents) if documents else 0.0
    return ModeResult(mode, mean_metrics(ordered.values()), len(ordered), seconds, mean_docs, ordered)


def judged_queries(queries: Mapping[str, str], qrels: Qrels) -> tuple[dict[str, str], int, int]:
    """The queries to evaluate (those with a relevant judgement), and counts of the unjudged and missing."""
    relevant = {qid for qid, judged in qrels.items() if any(rel > 0 for rel in judged.values())}
    chosen = {qid: text for qid, text in queries.items() if qid in relevant}
    return chosen, len(queries) - len(chosen), len(relevant - set(queries))


async def evaluate(service: QAService, queries: Mapping[str, str], qrels: Qrels, modes: Sequence[str], *,
                   depth: int = DEFAULT_DEPTH, concurrency: int = 8, binary: bool = False,
                   show_progress: bool = True) -> EvalReport:
    chosen, unjudged, missing = judged_queries(queries, qrels)
    results = [await evaluate_mode(service, chosen, qrels, mode, depth=depth, concurrency=concurrency,
                                   binary=binary, show_progress=show_progress) for mode in modes]
    return EvalReport(results, len(chosen), unjudged, missing, depth, binary)


# -- answers ---------------------------------------------------------------------------------------
#
# On questions with gold answers: does the answer contain the keywords any correct answer contains,
# do its citations name gold documents, and does it refuse the questions nothing answers (and only
# those)? Extracted answers always; generated ones when an LLM is configured.


@dataclass(frozen=True)
class GoldAnswer:
    """A short reference answer and the keywords any correct answer contains: each keyword is one or
    more alternatives separated by `|`, matched case-insensitively as substrings."""

    answer: str
    keywords: tuple[str, ...]


def read_answers(path: Path) -> dict[str, GoldAnswer]:
    """answers.jsonl: {"_id", "answer", "keywords": [...]} a line."""
    answers: dict[str, GoldAnswer] = {}
    lines = _read_lines(path)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            keywords = record["keywords"]
            if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip("| ") for k in keywords):
                raise TypeError("keywords must be a list of non-empty strings")
            answers[str(record["_id"])] = GoldAnswer(str(record.get("answer", "")), tuple(keywords))
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalInputError(f"{path} line {number}: expected {{\"_id\", \"answer\", \"keywords\"}}: {exc}") from None
    return answers


def contains_keywords(text: str, keywords: Sequence[str]) -> bool:
    """Whether `text` holds every keyword, through any one of its `|` alternatives (case-insensitive)."""
    lowered = text.lower()
    return all(any(alt.strip().lower() in lowered for alt in keyword.split("|") if alt.strip())
               for keyword in keywords)


@dataclass
class AnswerCounts:
    """What one kind of answer (extracted, generated) did on the answerable and off-topic questions."""

    name: str
    questions: int = 0  # answerable questions asked
    answered: int = 0  # of which got an answer (not no_answer)
    contains: int = 0  # answers that hold every keyword
    cited: int = 0  # passages cited, over the answerable questions
    cited_gold: int = 0  # of which belong to a gold document
    refused_answerable: int = 0
    off_topic: int = 0
    refused_off_topic: int = 0
    claims: int = 0  # generated: sentences checked ...
    unsupported: int = 0  # ... and found unsupported or uncited
    llm_failures: int = 0  # generated: answers extracted instead because the LLM failed
    chars: int = 0  # total length of the answers given
    seconds: float = 0.0
    per_question: dict[str, dict[str, object]] = field(default_factory=dict)

    def add(self, qid: str, answer: Answer, *, gold: GoldAnswer | None, judged: Mapping[str, int],
            suffixes: Mapping[str, str], passages: Sequence[Passage]) -> None:
        refused = answer.kind == "no_answer"
        row: dict[str, object] = {"kind": answer.kind, "text": answer.text}
        if answer.reason:
            row["reason"] = answer.reason
        if answer.claims is not None:
            row["unsupported"] = answer.unsupported
        if answer.error:
            self.llm_failures += 1
        if answer.claims is not None:
            self.claims += len(answer.claims)
            self.unsupported += answer.unsupported or 0
        if gold is None:
            self.off_topic += 1
            self.refused_off_topic += refused
        else:
            self.questions += 1
            self.refused_answerable += refused
            if not refused:
                self.answered += 1
                self.chars += len(answer.text)
                hit = contains_keywords(answer.text, gold.keywords)
                self.contains += hit
                by_id = {p.id: p for p in passages}
                cited = [by_id[c["passage_id"]] for c in answer.citations if c["passage_id"] in by_id]
                gold_cited = sum(judged.get(document_of(p, suffixes), 0) > 0 for p in cited)
                self.cited += len(cited)
                self.cited_gold += gold_cited
                row.update(contains=hit, cited=len(cited), cited_gold=gold_cited)
        self.per_question[qid] = row

    @staticmethod
    def _ratio(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    def as_dict(self) -> dict[str, object]:
        refused = self.refused_off_topic + self.refused_answerable
        figures = {
            "contains": self._ratio(self.contains, self.questions),
            "citation_precision": self._ratio(self.cited_gold, self.cited),
            "refusal_precision": self._ratio(self.refused_off_topic, refused),
            "refusal_recall": self._ratio(self.refused_off_topic, self.off_topic),
            "answered": self._ratio(self.answered, self.questions),
            "unsupported": self._ratio(self.unsupported, self.claims),
        }
        return {**{k: None if v is None else round(v, 4) for k, v in figures.items()},
                "questions": self.questions, "off_topic": self.off_topic, "cited": self.cited,
                "claims": self.claims, "llm_failures": self.llm_failures,
                "mean_chars": round(self.chars / self.answered, 1) if self.answered else None,
                "seconds": round(self.seconds, 2)}


ANSWER_COLUMNS = ("contains", "citation_precision", "refusal_precision", "refusal_recall", "answered", "unsupported")


@dataclass
class AnswerReport:
    kinds: list[AnswerCounts]
    questions: int
    off_topic: int
    top_k: int
    mode: str
    missing: int  # gold answers whose question is not in the queries file

    def as_dict(self, per_question: bool = False) -> dict[str, object]:
        data: dict[str, object] = {"questions": self.questions, "off_topic": self.off_topic, "top_k": self.top_k,
                                   "mode": self.mode, "missing": self.missing,
                                   "answers": {k.name: k.as_dict() for k in self.kinds}}
        if per_question:
            data["per_question"] = {k.name: k.per_question for k in self.kinds}
        return data

    def table(self) -> str:
        head = ["answer", *ANSWER_COLUMNS, "chars", "seconds"]
        rows = []
        for kind in self.kinds:
            data = kind.as_dict()
            rows.append([kind.name, *("-" if data[c] is None else f"{data[c]:.3f}" for c in ANSWER_COLUMNS),
                         "-" if data["mean_chars"] is None else f"{data['mean_chars']:.0f}", f"{kind.seconds:.1f}"])
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                 for row in [head, *rows]]
        notes = [f"{self.questions} answerable and {self.off_topic} off-topic questions, top {self.top_k} "
                 f"passages ({self.mode})"]
        if self.missing:
            notes.append(f"{self.missing} gold answers without a question")
        failures = sum(k.llm_failures for k in self.kinds if k.name == "generated")
        if failures:
            notes.append(f"the LLM failed on {failures} questions (their answers were extracted)")
        return "\n".join([*lines, "; ".join(notes)])


async def evaluate_answers(service: QAService, queries: Mapping[str, str], answers: Mapping[str, GoldAnswer],
                           qrels: Qrels, off_topic: Mapping[str, str] | None = None, *, generate: bool = True,
                           top_k: int = 5, mode: str = "hybrid", concurrency: int = 8,
                           show_progress: bool = True) -> AnswerReport:
    """Retrieve `top_k` passages for each question with a gold answer and each off-topic question,
    then answer from them: extracted (at most `concurrency` at a time) and, when the service has an
    LLM and `generate`, generated (one at a time: a local server runs one request at once)."""
    await service.ready()
    answerable = {qid: text for qid, text in queries.items() if qid in answers}
    asked = {**{f"off-topic:{qid}": text for qid, text in (off_topic or {}).items()}, **answerable}
    suffixes = _suffix_index({doc for judged in qrels.values() for doc in judged})
    gate = asyncio.Semaphore(max(1, concurrency))
    results: dict[str, tuple[Query, SearchResult]] = {}
    extracted = AnswerCounts("extracted")
    bar = tqdm(total=len(asked), desc="answers", unit="question", disable=not show_progress, leave=False)

    def add(counts: AnswerCounts, qid: str, answer: Answer) -> None:
        counts.add(qid, answer, gold=answers.get(qid), judged=qrels.get(qid, {}), suffixes=suffixes,
                   passages=results[qid][1].passages)

    async def one(qid: str, text: str) -> None:
        query = Query(text, top_k=top_k, mode=mode)
        async with gate:
            result = await service.ask(query)
            results[qid] = (query, result)
            add(extracted, qid, await service.extract(text, result.passages, query))
        bar.update(1)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(qid, text) for qid, text in asked.items()))
    finally:
        bar.close()
    extracted.seconds = time.perf_counter() - started
    kinds = [extracted]
    if generate and service.generates:
        generated = AnswerCounts("generated")
        started = time.perf_counter()
        for qid in tqdm(asked, desc="generated answers", unit="question", disable=not show_progress, leave=False):
            query, result = results[qid]
            add(generated, qid, await service.answer(query.question, result.passages, query))
        generated.seconds = time.perf_counter() - started
        kinds.append(generated)
    for counts in kinds:  # in the order of the files, whatever order the answers finished in
        counts.per_question = {qid: counts.per_question[qid] for qid in asked}
    return AnswerReport(kinds, len(answerable), len(off_topic or {}), top_k, mode,
                        len(set(answers) - set(queries)))
