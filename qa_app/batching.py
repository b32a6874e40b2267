"""Work that arrives while earlier work of its kind runs waits, then runs together in one call."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

Kind = TypeVar("Kind", bound=Hashable)
Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Kind, Item, Result]):
    """Runs `run(kind, items)` for items submitted together: up to `concurrency` calls per kind at
    once, each of at most `max_batch` items; items that arrive meanwhile wait for the next call. An
    item submitted alone runs at once. `run` returns one result per item, in order."""

    def __init__(self, run: Callable[[Kind, list[Item]], Awaitable[Sequence[Result]]], *, max_batch: int,
                 concurrency: int) -> None:
        self._run = run
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._pending: dict[Kind, list[tuple[Item, asyncio.Future[Result]]]] = {}
        self._in_flight: dict[Kind, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # calls made, and the items they carried: their ratio is the mean batch
        self.items = 0

    async def submit(self, kind: Kind, item: Item) -> Result:
        if kind not in self._pending and self._has_slot(kind):
            return await self._alone(kind, item)
        # Every slot of `kind` is taken (items wait only then): the call that frees one starts this item.
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(kind, []).append((item, future))
        return await future

    async def _alone(self, kind: Kind, item: Item) -> Result:
        """An item with a free slot and nothing waiting runs in the caller's own task: no task and no
        future to hand its result over (what a lone question costs, at concurrency 1). Items that
        arrive meanwhile wait for it as for any call."""
        self._take_slot(kind)
        self.calls += 1
        self.items += 1
        try:
            return (await self._run(kind, [item]))[0]
        finally:
            self._free_slot(kind)

    def _start(self, kind: Kind) -> None:
        while self._pending.get(kind) and self._has_slot(kind):
            waiting = self._pending.pop(kind)
            batch, rest = waiting[: self.max_batch], waiting[self.max_batch:]
            if rest:
                self._pending[kind] = rest
            self._take_slot(kind)
            task = asyncio.create_task(self._call(kind, batch))
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._finished, kind=kind))

    def _finished(self, task: asyncio.Task[None], kind: Kind) -> None:
        self._tasks.discard(task)
        self._free_slot(kind)

    def _has_slot(self, kind: Kind) -> bool:
        return self._in_flight.get(kind, 0) < self.concurrency

    def _take_slot(self, kind: Kind) -> None:
        self._in_flight[kind] = self._in_flight.get(kind, 0) + 1

    def _free_slot(self, kind: Kind) -> None:
        """A call of `kind` ended: the items waiting meanwhile start in its place."""
        self._in_flight[kind] -= 1
        if not self._in_flight[kind]:
            del self._in_flight[kind]
        self._start(kind)

    async def _call(self, kind: Kind, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        live = [(item, future) for item, future in batch if not future.done()]  # a request may have gone
        if not live:
            return
        self.calls += 1
        self.items += len(live)
        try:
            results = await self._run(kind, [item for item, _ in live])
        except Exception as exc:  # every waiting request must hear of it
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(live, results, strict=True):
            if not future.done():
                future.set_result(result)
