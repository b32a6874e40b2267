"""Concurrent searches of one kind sent to Milvus together, as one request with many queries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from qa_app.store import HitList, PassageStore

Kind = tuple[str, int, str, tuple[str, ...]]  # field, limit, filter expression, partitions


class SearchBatcher:
    """Searches that arrive while `concurrency` requests of their kind (same field, limit, filter and
    partitions) are in flight wait, then go together as one request of several queries. A question
    alone is searched at once. Measured on Milvus Lite, 3 queries in one request cost the client 0.5
    and the server 0.55 of the CPU time of 3 requests; at 16 concurrent questions on 2 cores, one
    request in flight per kind served 13% more questions a second than no batching, and two 5%."""

    def __init__(self, store: PassageStore, max_batch: int = 16, concurrency: int = 1) -> None:
        self.store = store
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._pending: dict[Kind, list[tuple[Any, asyncio.Future[HitList]]]] = {}
        self._in_flight: dict[Kind, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0  # Milvus requests made, and the queries they carried
        self.queries = 0

    async def search(self, field: str, query: Any, limit: int, expr: str = "",
                     partitions: Sequence[str] = ()) -> HitList:
        kind: Kind = (field, limit, expr, tuple(partitions))
        future: asyncio.Future[HitList] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(kind, []).append((query, future))
        self._start(kind)
        return await future

    def _start(self, kind: Kind) -> None:
        while self._pending.get(kind) and self._in_flight.get(kind, 0) < self.concurrency:
            waiting = self._pending.pop(kind)
            batch, rest = waiting[: self.max_batch], waiting[self.max_batch:]
            if rest:
                self._pending[kind] = rest
            self._in_flight[kind] = self._in_flight.get(kind, 0) + 1
            task = asyncio.create_task(self._run(kind, batch))
            self._tasks.add(task)
            task.add_done_callback(lambda done, kind=kind: self._finished(done, kind))

    def _finished(self, task: asyncio.Task[None], kind: Kind) -> None:
        self._tasks.discard(task)
        self._in_flight[kind] -= 1
        if not self._in_flight[kind]:
            del self._in_flight[kind]
        self._start(kind)

    async def _run(self, kind: Kind, batch: list[tuple[Any, asyncio.Future[HitList]]]) -> None:
        field, limit, expr, partitions = kind
        live = [(query, future) for query, future in batch if not future.done()]  # a request may have gone
        if not live:
            return
        self.requests += 1
        self.queries += len(live)
        try:
            rankings = await self.store.search_many(field, [q for q, _ in live], limit, expr, partitions)
        except Exception as exc:  # every waiting request must hear of it
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), ranking in zip(live, rankings):
            if not future.done():
                future.set_result(ranking)
