"""Answer a question with passages: embed it, search dense, keyword or both, fused."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from qa_app.embedding.encoder import DenseEncoder
from qa_app.embedding.question_batcher import QueryBatcher
from qa_app.search import fusion
from qa_app.search.batcher import SearchBatcher
from qa_app.search.query import Query, SearchResult
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
                "search_batches": {"milvus_requests": self.searches.requests, "queries": self.searches.queries}}

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
        # explains the fused ranking, so it fetches ids and scores, no passages.
        explains = query.mode == "hybrid" and self.fusion == "rrf"
        keyword = asyncio.ensure_future(self.searches.search(
            "sparse", query.searched, depth if query.mode == "hybrid" else limit, expr, corpora, ids_only=explains)) \
            if query.mode != "dense" else None
        try:
            vector = await self.batcher.encode(query.searched) if query.mode != "sparse" else None
            embedded = time.perf_counter()
            if query.mode == "dense":
                assert vector is not None
                passages = fusion.single(await self.searches.search("dense", vector, limit, expr, corpora), dense=True)
            elif query.mode == "sparse":
                assert keyword is not None
                passages = fusion.single(await keyword, dense=False)
            else:
                assert vector is not None and keyword is not None
                if explains:
                    fused, sparse = await asyncio.gather(
                        self.store.search_hybrid(vector, query.searched, min(depth, limit + TIE_MARGIN),
                                                 candidates=depth, rrf_k=self.rrf_k,
                                                 expr=expr, partitions=corpora, with_vectors=True),
                        keyword,
                    )
                    passages = fusion.explain_rrf(fused, sparse, vector, self.rrf_k)
                else:
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
