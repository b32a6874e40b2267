"""WarmThreads: the question threads' executor hands a task to the thread that became idle last."""

from __future__ import annotations

import threading
import time

import pytest

from qa_app.embedding.question_batcher import WarmThreads

pytestmark = pytest.mark.unit


def test_tasks_one_at_a_time_stay_on_the_thread_that_finished_last() -> None:
    pool = WarmThreads(3, "warm")
    try:
        names = {pool.submit(lambda: threading.current_thread().name).result(timeout=5) for _ in range(20)}
        assert len(names) == 1  # a ThreadPoolExecutor of 3 spreads them over its threads
    finally:
        pool.shutdown()


def test_tasks_at_once_use_every_thread_and_the_rest_wait_in_order() -> None:
    pool = WarmThreads(2, "warm")
    release = threading.Event()
    started: list[str] = []
    order: list[int] = []

    def hold() -> str:
        started.append(threading.current_thread().name)
        release.wait(5)
        return threading.current_thread().name

    try:
        held = [pool.submit(hold) for _ in range(2)]
        queued = [pool.submit(order.append, i) for i in range(5)]
        deadline = time.monotonic() + 5
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(set(started)) == 2 and order == []  # both threads busy: the others wait
        release.set()
        assert len({f.result(timeout=5) for f in held}) == 2
        for f in queued:
            f.result(timeout=5)
        assert order == [0, 1, 2, 3, 4]
    finally:
        pool.shutdown()


def test_an_exception_reaches_the_caller_and_the_thread_goes_on() -> None:
    pool = WarmThreads(1, "warm")
    try:
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(timeout=5)
        assert pool.submit(lambda: 42).result(timeout=5) == 42
    finally:
        pool.shutdown()


def test_shutdown_runs_what_waits_unless_cancelled_and_refuses_more() -> None:
    pool = WarmThreads(1, "warm")
    release = threading.Event()
    busy = pool.submit(release.wait, 5)
    waiting = pool.submit(lambda: "ran")
    cancelled_pool = WarmThreads(1, "warm")
    cancelled_release = threading.Event()
    cancelled_busy = cancelled_pool.submit(cancelled_release.wait, 5)
    cancelled = cancelled_pool.submit(lambda: "ran")
    pool.shutdown(wait=False)
    cancelled_pool.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(lambda: None)
    release.set()
    cancelled_release.set()
    assert busy.result(timeout=5) is True and waiting.result(timeout=5) == "ran"
    assert cancelled_busy.result(timeout=5) is True and cancelled.cancelled()


def test_the_initializer_runs_in_every_thread_before_the_pool_is_returned() -> None:
    seen: list[str] = []
    pool = WarmThreads(3, "init", lambda: seen.append(threading.current_thread().name))
    try:
        assert sorted(seen) == ["init_0", "init_1", "init_2"]
    finally:
        pool.shutdown()
