"""Answer a question with passages: embed it, search dense, keyword or both, fused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import numpy as np

from qa_app.embedding.encoder import DenseEncoder
from qa_app.embedding.question_batcher import QueryBatcher
from qa_app.models import Passage
from qa_app.search import fusion
from qa_app.search.batcher import SearchBatcher
from qa_app.search.query import Query, SearchResult
from qa_app.search.rank_decoding import Ranks, decode_ranks
from qa_app.settings import Settings
from qa_app.store import HitList, PassageStore
from qa_app.store.expressions import build_expression, matches, needs_recheck

# Passages past the top_k a hybrid search returns: Milvus cuts a run of equal fused scores at an
# arbitrary member (servers differ between processes), so a few more are fetched, put in a fixed
# order (fusion.explain_rrf) and cut here: the same question then gets the same passages everywhere.
TIE_MARGIN = 5
EMBED_CHUNK = 16  # texts a model call when embedding many (sentences): shorter calls pad less


class Retriever:
    def __init__(self, store: PassageStore, batcher: QueryBatcher, *, candidates: int, rrf_k: int,
                 fusion: str, dense_weight: float) -> None:
        self.store = store
        self.batcher = batcher
        self.searches = SearchBatcher(store)
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.ranks_decoded = 0    # RRF results whose ranks were read off the result alone
        self.keyword_lookups = 0  # and those whose ranks took a keyword search

    async def embed(self, question: str) -> np.ndarray:
        """The question's vector (questions that arrive together share a model call)."""
        return await self.batcher.encode(question)

    async def embed_many(self, texts: list[str], chunk: int = EMBED_CHUNK) -> np.ndarray:
        """Unit vectors of many short texts (sentences of the passages shown), in their order: sorted by
        length into calls of `chunk` texts, so little padding is computed, on a worker thread."""
        encoder = self.batcher.encoder
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.zeros((len(texts), encoder.info.dim), dtype=np.float32)
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            vectors[part] = await asyncio.to_thread(encoder.encode_questions, [texts[i] for i in part])
        return vectors

    def stats(self) -> dict[str, dict[str, int]]:
        """How much batching saved: model calls and Milvus requests against what they carried."""
        return {"question_batches": {"model_calls": self.batcher.calls, "questions": self.batcher.questions},
                "search_batches": {"milvus_requests": self.searches.requests, "queries": self.searches.queries},
                "rrf_ranks": {"decoded": self.ranks_decoded, "keyword_searches": self.keyword_lookups}}

    def close(self) -> None:
        self.batcher.close()

    async def search(self, query: Query) -> SearchResult:
        started = time.perf_counter()
        expr = build_expression(query.filter)
        recheck = needs_recheck(query.filter)
        # A loose expression is checked again here, so fetch enough to fill top_k afterwards.
        limit = max(query.top_k, self.candidates) if recheck else query.top_k
        depth = max(self.candidates, limit)
        corpora = query.filter.corpora
        # BM25 needs no embedding: its search runs while the question is embedded. Under RRF it only
        # explains the fused ranking, so it fetches ids and scores, no passages; and where the ranks
        # can be read off the fused result (rank_decoding: an exact dense index, no recheck) it runs
        # only when they cannot, after the hybrid search.
        explains = query.mode == "hybrid" and self.fusion == "rrf"
        decodes = explains and self.store.is_embedded and not recheck
        keyword = asyncio.ensure_future(self._keyword(query, depth if query.mode == "hybrid" else limit, expr,
                                                      ids_only=explains)) \
            if query.mode != "dense" and not decodes else None
        try:
            vector = await self.batcher.encode(query.searched) if query.mode != "sparse" else None
            embedded = time.perf_counter()
            if query.mode == "dense":
                assert vector is not None
                passages = fusion.single(await self.searches.search("dense", vector, limit, expr, corpora), dense=True)
            elif query.mode == "sparse":
                assert keyword is not None
                passages = fusion.single(await keyword, dense=False)
            elif explains:
                assert vector is not None
                passages = await self._rrf(query, vector, depth, limit, expr, keyword)
            else:
                assert vector is not None and keyword is not None
                dense, sparse = await asyncio.gather(self.searches.search("dense", vector, depth, expr, corpora),
                                                     keyword)
                passages = fusion.weighted(dense, sparse, limit, self.dense_weight)
        finally:
            if keyword is not None:
                _settle(keyword)
        if recheck:
            kept = [p for p in passages if matches(query.filter, {"text": p.text, "source": p.source,
                                                                   "title": p.title})]
            passages = [p.ranked(i) for i, p in enumerate(kept, 1)]
        done = time.perf_counter()
        timings = {"embed": (embedded - started) * 1000, "search": (done - embedded) * 1000,
                   "total": (done - started) * 1000}
        return SearchResult(query, passages[: query.top_k], {k: round(v, 2) for k, v in timings.items()})

    def _keyword(self, query: Query, limit: int, expr: str, *, ids_only: bool) -> Awaitable[HitList]:
        return self.searches.search("sparse", query.searched, limit, expr, query.filter.corpora, ids_only=ids_only)

    async def _rrf(self, query: Query, vector: np.ndarray, depth: int, limit: int, expr: str,
                   keyword: asyncio.Future[HitList] | None) -> list[Passage]:
        """Milvus's hybrid search, fused by RRF, with each passage's rank in both lists: decoded from
        the result where `keyword` (the running keyword search) is None, else read with it."""
        returned = min(depth, limit + TIE_MARGIN)
        search = self.store.search_hybrid(vector, query.searched, returned, candidates=depth, rrf_k=self.rrf_k,
                                          expr=expr, partitions=query.filter.corpora, with_vectors=True)
        if keyword is None:
            fused = await search
            ranks = decoded_ranks(fused, vector, self.rrf_k, depth, returned, query.top_k)
            if ranks is not None:
                self.ranks_decoded += 1
            else:
                self.keyword_lookups += 1
                ranks = fusion.ranks_with_keyword_list(
                    fused, await self._keyword(query, depth, expr, ids_only=True), self.rrf_k)
        else:
            fused, sparse = await asyncio.gather(search, keyword)
            self.keyword_lookups += 1
            ranks = fusion.ranks_with_keyword_list(fused, sparse, self.rrf_k)
        return fusion.explain_rrf(fused, ranks, vector, self.rrf_k, keep=limit)


def decoded_ranks(fused: HitList, vector: np.ndarray, rrf_k: int, depth: int, limit: int,
                  needed: int) -> list[Ranks] | None:
    """The ranks of `fused` in both lists as rank_decoding reads them off the result (None where
    it cannot be sure of the best `needed`)."""
    if fused.vectors is None:
        return None
    cosines: list[float] = (fused.vectors @ vector).tolist() if len(fused) else []
    ranks = decode_ranks(fused.scores, cosines, rrf_k, depth, limit, needed)
    return None if ranks is None else [r if r is not None else (None, None) for r in ranks]


def open_retriever(settings: Settings, store: PassageStore, encoder: DenseEncoder) -> Retriever:
    """A retriever over `store` with the fusion and candidate depth of `settings`."""
    return Retriever(store, QueryBatcher(encoder), candidates=settings.candidates, rrf_k=settings.rrf_k,
                     fusion=settings.fusion, dense_weight=settings.dense_weight)


def _settle(task: asyncio.Future[HitList]) -> None:
    """Cancel `task` if it still runs (the request failed before it was needed), and mark its failure
    as seen: the request's own error is the one reported."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()
