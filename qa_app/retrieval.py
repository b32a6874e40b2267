"""Answer a question with passages: embed it, search dense, keyword or both fused by RRF."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

from qa_app.encoders import QueryBatcher
from qa_app.filters import TextFilter, build_expression, matches, needs_recheck
from qa_app.search_batcher import SearchBatcher
from qa_app.store import Hit, HitList, PassageStore

MODES = ("hybrid", "dense", "sparse")


@dataclass(frozen=True)
class Query:
    question: str
    top_k: int = 5
    mode: str = "hybrid"
    filter: TextFilter = field(default_factory=TextFilter)


@dataclass(frozen=True)
class RankedPassage:
    id: str
    rank: int
    score: float
    text: str
    source: str
    doc_id: str
    title: str
    headings: tuple[str, ...]
    chunk: int
    corpus: str = "default"
    dense_rank: int | None = None
    sparse_rank: int | None = None
    dense_share: float | None = None  # of the fused score, the part that came from the dense list
    dense_score: float | None = None  # cosine similarity to the question, when the dense list has it

    @property
    def found_by(self) -> str:
        names = [n for n, r in (("dense", self.dense_rank), ("keyword", self.sparse_rank)) if r]
        return " + ".join(names) or "-"

    def as_dict(self) -> dict[str, object]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict() deep-copies: 6x slower
        data["headings"] = list(self.headings)
        data["found_by"] = self.found_by
        return data


@dataclass(frozen=True)
class SearchResult:
    query: Query
    passages: list[RankedPassage]
    timings_ms: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return {
            "question": self.query.question,
            "mode": self.query.mode,
            "top_k": self.query.top_k,
            "filter": {**self.query.filter.values(),
                       **({"corpus": list(self.query.filter.corpora)} if self.query.filter.corpora else {})},
            "passages": [p.as_dict() for p in self.passages],
            "timings_ms": self.timings_ms,
        }


class Retriever:
    def __init__(self, store: PassageStore, batcher: QueryBatcher, *, candidates: int, rrf_k: int,
                 fusion: str = "weighted", dense_weight: float = 0.6) -> None:
        self.store = store
        self.batcher = batcher
        self.searches = SearchBatcher(store)
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.fusion = fusion
        self.dense_weight = dense_weight

    async def search(self, query: Query) -> SearchResult:
        started = time.perf_counter()
        expr = build_expression(query.filter)
        recheck = needs_recheck(query.filter)
        # A loose expression is checked again here, so fetch enough to fill top_k afterwards.
        limit = max(query.top_k, self.candidates) if recheck else query.top_k
        depth = max(self.candidates, limit)
        corpora = query.filter.corpora
        # BM25 needs no embedding: its search runs while the question is embedded.
        keyword = asyncio.ensure_future(self.searches.search(
            "sparse", query.question, depth if query.mode == "hybrid" else limit, expr, corpora)) if query.mode != "dense" else None
        try:
            vector = await self.batcher.encode(query.question) if query.mode != "sparse" else None
            embedded = time.perf_counter()
            if query.mode == "dense":
                assert vector is not None
                passages = _ranked(await self.searches.search("dense", vector, limit, expr, corpora), dense=True)
            elif query.mode == "sparse":
                assert keyword is not None
                passages = _ranked(await keyword, dense=False)
            else:
                assert vector is not None and keyword is not None
                if self.fusion == "rrf":
                    fused, dense, sparse = await asyncio.gather(
                        self.store.search_hybrid(vector, query.question, limit, candidates=depth, rrf_k=self.rrf_k,
                                                 expr=expr, partitions=corpora),
                        self.searches.search("dense", vector, depth, expr, corpora),
                        keyword,
                    )
                    passages = self._explained(fused, dense, sparse)
                else:
                    dense, sparse = await asyncio.gather(self.searches.search("dense", vector, depth, expr, corpora),
                                                         keyword)
                    passages = self._weighted(dense, sparse, limit)
        finally:
            if keyword is not None:
                _settle(keyword)
        if recheck:
            passages = [p for p in passages if matches(query.filter, {"text": p.text, "source": p.source,
                                                                       "title": p.title})]
            passages = [_with_rank(p, i) for i, p in enumerate(passages, 1)]
        done = time.perf_counter()
        timings = {"embed": (embedded - started) * 1000, "search": (done - embedded) * 1000,
                   "total": (done - started) * 1000}
        return SearchResult(query, passages[: query.top_k], {k: round(v, 2) for k, v in timings.items()})

    def _explained(self, fused: HitList, dense: HitList, sparse: HitList) -> list[RankedPassage]:
        dense_ranks = {pid: i for i, pid in enumerate(dense.ids, 1)}
        sparse_ranks = {pid: i for i, pid in enumerate(sparse.ids, 1)}
        passages = []
        for rank, hit in enumerate(fused, 1):
            d, s = dense_ranks.get(hit.id), sparse_ranks.get(hit.id)
            d_part = 1 / (self.rrf_k + d) if d else 0.0
            s_part = 1 / (self.rrf_k + s) if s else 0.0
            share = d_part / (d_part + s_part) if d_part + s_part else None
            passages.append(_passage(hit, rank, dense_rank=d, sparse_rank=s,
                                     dense_share=None if share is None else round(share, 3),
                                     dense_score=None if d is None else _rounded(dense.scores[d - 1])))
        return passages

    def _weighted(self, dense: HitList, sparse: HitList, limit: int) -> list[RankedPassage]:
        """Fuse by score: each list's scores scaled to 0..1 over its candidates (best 1, last 0), then
        dense_weight x dense + (1 - dense_weight) x keyword; a passage missing from a list gets 0 there.
        Only the best `limit` become passages (this runs on the event loop for every question)."""
        dense_parts = {pid: self.dense_weight * s for pid, s in zip(dense.ids, _scaled(dense.scores))}
        sparse_parts = {pid: (1 - self.dense_weight) * s for pid, s in zip(sparse.ids, _scaled(sparse.scores))}
        dense_ranks = {pid: i for i, pid in enumerate(dense.ids, 1)}
        sparse_ranks = {pid: i for i, pid in enumerate(sparse.ids, 1)}
        totals = {pid: dense_parts.get(pid, 0.0) + sparse_parts.get(pid, 0.0) for pid in [*sparse.ids, *dense.ids]}
        best = heapq.nsmallest(limit, totals, key=lambda pid: (-totals[pid], pid))
        passages = []
        for rank, pid in enumerate(best, 1):
            total = totals[pid]
            share = dense_parts.get(pid, 0.0) / total if total else None
            dense_rank, sparse_rank = dense_ranks.get(pid), sparse_ranks.get(pid)
            hit = dense[dense_rank - 1] if dense_rank else sparse[sparse_rank - 1]  # type: ignore[operator]
            passages.append(_passage(hit, rank, score=total, dense_rank=dense_rank, sparse_rank=sparse_rank,
                                     dense_share=None if share is None else round(share, 3),
                                     dense_score=None if dense_rank is None else _rounded(dense.scores[dense_rank - 1])))
        return passages


def _scaled(scores: list[float]) -> list[float]:
    """Scores mapped to 1 for the first hit and 0 for the last, whichever way the backend orders them
    (Milvus Lite 3.x reports BM25 as negative distances)."""
    if not scores:
        return []
    best, worst = scores[0], scores[-1]
    if best == worst:
        return [1.0] * len(scores)
    return [(s - worst) / (best - worst) for s in scores]


def _passage(hit: Hit, rank: int, score: float | None = None, **explain: float | int | None) -> RankedPassage:
    return RankedPassage(id=hit.id, rank=rank, score=round(hit.score if score is None else score, 6), text=hit.text,
                         source=hit.source, doc_id=hit.doc_id, title=hit.title, headings=hit.headings, chunk=hit.chunk,
                         corpus=hit.corpus, **explain)  # type: ignore[arg-type]


def _ranked(hits: Sequence[Hit], *, dense: bool) -> list[RankedPassage]:
    if dense:
        return [_passage(h, i, dense_rank=i, dense_score=_rounded(h.score)) for i, h in enumerate(hits, 1)]
    return [_passage(h, i, sparse_rank=i) for i, h in enumerate(hits, 1)]


def _settle(task: asyncio.Future[HitList]) -> None:
    """Cancel `task` if it still runs (the request failed before it was needed), and mark its failure
    as seen: the request's own error is the one reported."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _with_rank(passage: RankedPassage, rank: int) -> RankedPassage:
    return replace(passage, rank=rank)
