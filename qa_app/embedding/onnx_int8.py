"""The model in int8 through ONNX Runtime, for CPUs without bf16 matrix units.

The transformer, mean pooling and normalisation are exported once with `torch.onnx.export`, the
MatMul weights quantized with `onnxruntime.quantization.quantize_dynamic` (int8 weights per output
channel, activations quantized per call), and the file is kept under a cache folder named by a hash
of the model's files and of this recipe: made on first use, reused by every later start.

Choices, each measured (docs/performance.md, bench/precision.py):
- per channel: one scale per tensor drops the cosine to fp32 to ~0.94; per channel keeps it ~0.99;
- MatMul only: the embedding tables stay float (quantizing the Gather costs quality, not time);
- the feed-forward output projections (1536 -> 384, one a layer, 6 of the 36 weight products) stay fp32:
  their input, after GELU, is skewed, and quantizing it cost 0.008 of dense nDCG@10 on the Python-docs dev
  set (under the 0.005 gate); kept in fp32 the quality is fp32's, for ~10% of the int8 speed;
- 7-bit weights (`reduce_range`): ONNX Runtime's AVX2 kernel (no VNNI) adds pairs of u8 x s8 products
  in 16 bits, which overflow with full 8-bit weights; with 7 bits every x86 kernel computes the same
  integers, so the vectors, and the quality measured on any machine, are the same on every CPU class.

The tokenizer stays the model's fast tokenizer (its Rust backend, set as sentence-transformers sets it).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RECIPE = ("minilm-int8-v2: opset 17, mean pooling + L2 in the graph, MatMul QInt8 per channel, reduce_range, "
          "feed-forward output projections in fp32")
MODEL_FILE = "model.int8.onnx"


class Int8Unavailable(Exception):
    """The int8 path cannot run here (no onnxruntime, or a model it cannot export): the chooser falls
    back to another path and logs this, so it never reaches the user as an error."""


def default_cache_dir() -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/qa_app`, as other tools on the machine keep their caches."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa_app"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def model_key(model: Any, folder: str | None, recipe: str = RECIPE,
              packages: tuple[str, ...] = ("onnxruntime", "torch", "transformers")) -> str:
    """A hash of the model's files (the folder it was loaded from; else its weights), the recipe and the
    versions of the packages that make and run the file."""
    digest = hashlib.sha256(recipe.encode())
    for package in packages:
        digest.update(f"{package}={_version(package)}".encode())
    digest.update(str(model.max_seq_length).encode())
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file()) if folder and Path(folder).is_dir() else []
    if files:
        for path in files:
            digest.update(str(path.relative_to(folder or "")).encode())
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
    else:
        for name, tensor in model.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:20]


def check_exportable(model: Any) -> None:
    """Int8Unavailable unless the model is a transformer with mean pooling (and maybe a normalisation)."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise Int8Unavailable(f"int8 export knows Transformer + Pooling (+ Normalize) models, not {kinds}")
    mode = getattr(modules[1], "pooling_mode", None)
    if mode not in ("mean", ("mean",)):
        raise Int8Unavailable(f"int8 export knows mean pooling, not {mode}")
    if model.default_prompt_name:
        raise Int8Unavailable("int8 export does not add the model's prompt")


def prepare(model: Any, folder: str | None, cache_dir: Path) -> Path:
    """The quantized model file for `model`, exported and quantized now unless it is in the cache."""
    check_exportable(model)
    target = cache_dir / "onnx" / model_key(model, folder) / MODEL_FILE
    if target.exists():
        return target
    try:
        import onnxruntime  # type: ignore[import-untyped]  # noqa: F401  (fail before the export if it is missing)
        from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]
    except ImportError as exc:
        raise Int8Unavailable(f"the int8 path needs onnxruntime and onnx: {exc}") from None

    def quantize(fp32: Path, quantized: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes that the model was not pre-processed: it needs none here
            quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                             per_channel=True, reduce_range=True, nodes_to_exclude=_feed_forward_outputs(fp32))

    return made_once(model, target, quantize, "int8 model")


def made_once(model: Any, target: Path, convert: Callable[[Path, Path], object], what: str) -> Path:
    """`target`: `model` exported (export_pooled) and `convert`ed (fp32 file -> target file) in a scratch
    folder beside it, then moved into place whole. Another process starting at once reads a whole file or
    none; the caller has already found that `target` does not exist."""
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fp32 = Path(work) / "model.onnx"
        export_pooled(model, fp32)
        exported = time.perf_counter()
        made = Path(work) / target.name
        convert(fp32, made)
        os.replace(made, target)
    log.info("%s made in %.1f s (export %.1f s): %s", what, time.perf_counter() - started, exported - started, target)
    return target


def _feed_forward_outputs(path: Path) -> list[str]:
    """The MatMul nodes of each layer's feed-forward output projection (BERT names them
    layer.N/output/dense; the attention's own output projection is layer.N/attention/output/dense)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and "/output/dense/" in n.name and "/attention/" not in n.name]


def export_pooled(model: Any, path: Path) -> None:
    """The transformer, mean pooling and L2 normalisation as one ONNX graph (inputs input_ids and
    attention_mask, output embedding), in fp32 whatever the caller's model holds."""
    import torch

    transformer = copy.deepcopy(model[0].auto_model).float().eval()  # the caller's model keeps its dtype

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    example = torch.ones(2, 16, dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(Pooled().eval(), (example, example), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)


def text_tokenizer(model: Any) -> Any:
    """A private copy of the model's Rust tokenizer, truncating as sentence-transformers does; no padding
    (every text runs alone)."""
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise Int8Unavailable("the int8 path needs a fast tokenizer")
    backend = copy.deepcopy(backend)
    backend.enable_truncation(max_length=int(model.max_seq_length))
    backend.no_padding()
    return backend


class OnnxInt8Path:
    """Passages on a session with one thread per core; questions on a one-thread session that runs on
    the caller's thread, so questions on separate threads run side by side (as the torch path's do).
    Every text runs alone (see encode_passages). Two one-thread sessions' worth of texts in parallel
    measured 2-4x slower than one two-thread session here."""

    version = f"each text alone; {RECIPE}"  # what the benchmark's vector cache keys on besides the model

    name = "onnx-int8"
    precision = "int8"

    def __init__(self, model: Any, model_file: Path, threads: int) -> None:
        import onnxruntime as ort

        self.model_file = model_file
        self._passages = self._session(ort, model_file, threads)
        self._questions = self._session(ort, model_file, 1)
        self._passage_tokenizer = text_tokenizer(model)
        self._question_tokenizer = text_tokenizer(model)
        self.dim = int(model.get_embedding_dimension())
        self._passage_lock = threading.Lock()
        self._question_lock = threading.Lock()  # for the tokenizer only: sessions run calls concurrently

    @staticmethod
    def _session(ort: Any, model_file: Path, threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: the same cores run Milvus, the event loop and,
        # on users' machines, other work.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _run(session: Any, encodings: list[Any]) -> np.ndarray:
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        vectors = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.asarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: list[str], batch_size: int) -> np.ndarray:
        """One model call per text, whatever `batch_size` asks: activations are quantized per call, so a
        batch would make a text's vector depend on the texts beside it (cosine ~0.97-0.99 between
        batchings); alone, the same text always gets the same vector. It is also faster: no padding, and
        one text's activations stay in the core's cache (docs/performance.md)."""
        with self._passage_lock:
            encodings = self._passage_tokenizer.encode_batch(texts)
        if not encodings:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([self._run(self._passages, [encoding]) for encoding in encodings])

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        with self._question_lock:
            encodings = self._question_tokenizer.encode_batch(texts)
        if not encodings:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([self._run(self._questions, [encoding]) for encoding in encodings])
