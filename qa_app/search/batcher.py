"""Concurrent searches of one kind sent to Milvus together, as one request with many queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qa_app.batching import Batcher
from qa_app.store import HitList, PassageStore

Kind = tuple[str, int, str, tuple[str, ...], bool]  # field, limit, filter expression, partitions, ids only


class SearchBatcher:
    """Searches that arrive while `concurrency` requests of their kind (same field, limit, filter and
    partitions) are in flight wait, then go together as one request of several queries. A question
    alone is searched at once. Milvus answers a request of several queries for less CPU than as many
    requests (docs/performance.md has the figures)."""

    def __init__(self, store: PassageStore, max_batch: int = 16, concurrency: int = 1) -> None:
        self.store = store
        self._batches: Batcher[Kind, Any, HitList] = Batcher(self._search_many, max_batch=max_batch,
                                                             concurrency=concurrency)

    @property
    def requests(self) -> int:
        """Milvus requests made."""
        return self._batches.calls

    @property
    def queries(self) -> int:
        """Queries those requests carried."""
        return self._batches.items

    async def search(self, field: str, query: Any, limit: int, expr: str = "",
                     partitions: Sequence[str] = (), *, ids_only: bool = False) -> HitList:
        return await self._batches.submit((field, limit, expr, tuple(partitions), ids_only), query)

    async def _search_many(self, kind: Kind, queries: list[Any]) -> list[HitList]:
        field, limit, expr, partitions, ids_only = kind
        return await self.store.search_many(field, queries, limit, expr, partitions, ids_only=ids_only)
