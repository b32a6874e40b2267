"""Embed questions off the event loop: questions that arrive together share one model call, on
threads of one core each."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from qa_app.batching import Batcher
from qa_app.embedding.encoder import DenseEncoder


def question_threads(count: int) -> ThreadPoolExecutor:
    """Threads that each run the model on one core. A batch of a few short questions gains little
    from torch's intra-op threads and pays for their synchronisation, while separate batches on
    separate cores add up (docs/performance.md)."""
    import torch

    default = torch.get_num_threads()

    def one_core() -> None:
        torch.set_num_threads(1)
        torch.get_num_threads()  # torch fixes a thread's count when first asked (or at its first parallel op)

    pool = ThreadPoolExecutor(count, thread_name_prefix="qa-question", initializer=one_core)
    started = threading.Barrier(count + 1)
    for _ in range(count):  # every thread exists, and has fixed its count, once all meet here
        pool.submit(started.wait)
    started.wait()
    torch.set_num_threads(default)  # set_num_threads is also the default for threads started later
    return pool


class QueryBatcher:
    """Embeds questions off the event loop. Questions that arrive while the model is busy wait for
    the next free thread and share one model call; up to `threads` calls run at once."""

    def __init__(self, encoder: DenseEncoder, max_batch: int = 64, threads: int | None = None) -> None:
        self.encoder = encoder
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
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
