"""Batcher: pure scheduling logic, with a run function that records its calls."""

from __future__ import annotations

import asyncio

import pytest

from qa_app.batching import Batcher


class Recorder:
    """A `run` that holds each call until released, so tests decide what arrives meanwhile."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.gate = asyncio.Event()
        self.fail = False

    async def __call__(self, kind: str, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("backend down")
        return [item * 10 for item in items]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _batcher(max_batch: int = 8, concurrency: int = 1) -> tuple[Recorder, Batcher[str, int, int]]:
    run = Recorder()
    return run, Batcher(run, max_batch=max_batch, concurrency=concurrency)


async def _submitted(batcher: Batcher[str, int, int], *items: int, kind: str = "q") -> list[asyncio.Future[int]]:
    """`items` submitted as separate requests, once each has reached the batcher."""
    futures = [asyncio.ensure_future(batcher.submit(kind, item)) for item in items]
    await _settle()
    return futures


def test_a_lone_item_runs_at_once_in_a_call_of_its_own() -> None:
    async def scenario() -> None:
        run, batcher = _batcher()
        run.gate.set()
        assert await batcher.submit("q", 3) == 30
        assert await batcher.submit("q", 4) == 40
        assert run.calls == [[3], [4]]
        assert (batcher.calls, batcher.items) == (2, 2)
    asyncio.run(scenario())


def test_items_arriving_during_a_call_share_the_next_one_in_order() -> None:
    async def scenario() -> None:
        run, batcher = _batcher(max_batch=3)
        [first] = await _submitted(batcher, 1)
        later = await _submitted(batcher, *range(2, 7))
        assert run.calls == [[1]]  # the rest wait for the running call
        run.gate.set()
        assert await first == 10
        assert await asyncio.gather(*later) == [20, 30, 40, 50, 60]
        assert run.calls == [[1], [2, 3, 4], [5, 6]]  # at most max_batch a call
    asyncio.run(scenario())


def test_kinds_do_not_wait_for_each_other_and_concurrency_bounds_each() -> None:
    async def scenario() -> None:
        run, batcher = _batcher(concurrency=2)
        tasks = [*await _submitted(batcher, 1, 2, 3, kind="a"), *await _submitted(batcher, 4, kind="b")]
        assert sorted(map(tuple, run.calls)) == [(1,), (2,), (4,)]  # a third "a" call waits
        run.gate.set()
        assert await asyncio.gather(*tasks) == [10, 20, 30, 40]
        assert [3] in run.calls
    asyncio.run(scenario())


def test_a_failed_call_fails_every_item_it_carried_and_the_next_call_runs() -> None:
    async def scenario() -> None:
        run, batcher = _batcher()
        [first] = await _submitted(batcher, 1)
        waiting = await _submitted(batcher, 2, 3)
        run.fail = True
        run.gate.set()
        with pytest.raises(RuntimeError, match="backend down"):
            await first
        for task in waiting:
            with pytest.raises(RuntimeError, match="backend down"):
                await task
        run.fail = False
        assert await batcher.submit("q", 5) == 50
    asyncio.run(scenario())


def test_an_item_whose_request_went_away_is_not_run() -> None:
    async def scenario() -> None:
        run, batcher = _batcher()
        [first] = await _submitted(batcher, 1)
        gone, kept = await _submitted(batcher, 2, 3)
        gone.cancel()
        run.gate.set()
        assert await first == 10 and await kept == 30
        assert run.calls == [[1], [3]]
    asyncio.run(scenario())


def test_a_cancelled_lone_item_frees_its_slot() -> None:
    async def scenario() -> None:
        run, batcher = _batcher()
        [lone] = await _submitted(batcher, 1)
        lone.cancel()
        await _settle()
        run.gate.set()
        assert await batcher.submit("q", 2) == 20
    asyncio.run(scenario())
