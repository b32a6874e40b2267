"""Embed questions off the event loop: questions that arrive together share one model call, on
threads of one core each."""

from __future__ import annotations

import asyncio
import collections
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np

from qa_app.batching import Batcher
from qa_app.embedding.encoder import DenseEncoder

_Task = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]  # a future and the call that fulfils it


class WarmThreads(Executor):
    """A fixed set of threads where a task goes to the thread that became idle last.
    In a ThreadPoolExecutor every idle thread waits on one queue and whichever the queue's lock wakes
    takes the task, so questions asked one at a time wander across the threads, each often starting
    where the model's weights, buffers and the thread's state have gone cold since its last turn; the
    thread that just finished is the warm one (measured through `qa-app serve`: docs/performance.md).
    Tasks that find every thread busy wait in order of arrival."""

    def __init__(self, count: int, name: str, initializer: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Task | None]] = []  # the thread idle last is at the end
        self._waiting: collections.deque[_Task] = collections.deque()
        self._closed = False
        started = threading.Barrier(count + 1)
        self._threads = [threading.Thread(target=self._work, args=(queue.SimpleQueue(), initializer, started),
                                          name=f"{name}_{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()
        started.wait()  # every thread runs, its initializer done

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        task = (future, fn, args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            if self._idle:
                self._idle.pop().put(task)
            else:
                self._waiting.append(task)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Threads finish the task they run and stop (waited for with `wait`); tasks still waiting run
        first unless cancelled."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft()[0].cancel()
            idle, self._idle = self._idle, []
        for inbox in idle:
            inbox.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self, inbox: queue.SimpleQueue[_Task | None], initializer: Callable[[], None] | None,
              started: threading.Barrier) -> None:
        if initializer is not None:
            initializer()
        with self._lock:
            self._idle.append(inbox)
        started.wait()
        while (task := inbox.get()) is not None:
            while task is not None:
                future, fn, args, kwargs = task
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as exc:  # the caller sees it, as with ThreadPoolExecutor
                        future.set_exception(exc)
                del future, fn, args, kwargs
                with self._lock:
                    task = self._waiting.popleft() if self._waiting else None
                    if task is None:
                        if self._closed:
                            return
                        self._idle.append(inbox)


def question_threads(count: int) -> WarmThreads:
    """Threads that each run the model on one core. A batch of a few short questions gains little
    from torch's intra-op threads and pays for their synchronisation, while separate batches on
    separate cores add up (docs/performance.md)."""
    import torch

    default = torch.get_num_threads()

    def one_core() -> None:
        torch.set_num_threads(1)
        torch.get_num_threads()  # torch fixes a thread's count when first asked (or at its first parallel op)

    pool = WarmThreads(count, "qa-question", one_core)
    torch.set_num_threads(default)  # set_num_threads is also the default for threads started later
    return pool


class QueryBatcher:
    """Embeds questions off the event loop. Questions that arrive while the model is busy wait for
    the next free thread and share one model call; up to `threads` calls run at once."""

    def __init__(self, encoder: DenseEncoder, max_batch: int = 64, threads: int | None = None) -> None:
        self.encoder = encoder
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._pool: WarmThreads | None = None
        self._batches: Batcher[None, str, np.ndarray] = Batcher(self._embed, max_batch=max_batch,
                                                                concurrency=self.threads)

    @property
    def calls(self) -> int:
        """Model calls made: with `questions`, their ratio is the mean batch."""
        return self._batches.calls

    @property
    def questions(self) -> int:
        return self._batches.items

    async def encode(self, text: str) -> np.ndarray:
        return await self._batches.submit(None, text)

    async def _embed(self, _: None, texts: list[str]) -> list[np.ndarray]:
        if self._pool is None:  # once, on the first question: a few ms to start the threads
            self._pool = question_threads(self.threads)
        return list(await asyncio.get_running_loop().run_in_executor(self._pool, self.encoder.encode_questions, texts))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)  # batches already running finish; their requests get answers
            self._pool = None
