"""The model in int8 through ONNX Runtime, for CPUs without AMX where OpenVINO cannot run (no VNNI, ARM).

The transformer, mean pooling and normalisation are exported once with `torch.onnx.export`, and every
MatMul with a weight becomes ONNX Runtime's `MatMulNBits` (com.microsoft) with 8-bit weights: symmetric,
one scale per block of input channels of each output column. With `accuracy_level` 4 ONNX Runtime
quantizes the input as it runs, per token and per block of the same channels, and multiplies in int8
(its MLAS kernels for AVX2, AVX2-VNNI, AVX-512 and ARM). The file is kept under a cache folder named by
a hash of the model's files and of this recipe: made on first use, reused by every later start.

Choices, each measured (docs/research/precision, bench/precision.py):
- scales per token and block, not per tensor: the earlier recipe (quantize_dynamic: one activation
  scale per call, int8 weights per output channel, 7 bits, the feed-forward output projections in fp32)
  let BERT's outlier channels and tokens cost resolution everywhere: cosine to fp32 0.997, SciFact dev
  nDCG@10 -0.0066 (outside the 0.005 gate). Per block, every product is int8 and the cosine is ~0.9996;
- channels sorted by range first (qa_app.embedding.channel_order, exact in fp32), so outlier channels
  share blocks with each other: then blocks of `SORTED_BLOCK` (64) are as close to fp32 as unsorted
  blocks of 32 and faster (1.12-1.23x a text on an Ice Lake-class Xeon, `avx2 avx512f avx512_vnni`).
  A model not laid out as BERT is quantized unsorted, in blocks of `BLOCK` (32): coarser unsorted blocks
  cost quality (64: cosine 0.9995, nDCG -0.0067 on Python docs);
- the embedding tables stay float (a Gather, not a MatMul: quantizing it costs quality, not time);
- ONNX Runtime picks its kernels from the CPU's own flags and cannot be limited, so the benchmark's
  "AVX2" class runs this path on the machine's own kernels; on a plain-AVX2 CPU other kernels run
  (docs/performance.md says so beside the figures).

The tokenizer stays the model's fast tokenizer (its Rust backend, set as sentence-transformers sets it).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import itertools
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from qa_app.embedding import channel_order

log = logging.getLogger(__name__)

BLOCK = 32  # input channels that share a weight scale, and (per token) an activation scale
SORTED_BLOCK = 64  # the same, once channels are sorted by range (BERT-layout models)
RECIPE = ("minilm-int8-v4: opset 17, eager attention, mean pooling + L2 in the graph, every MatMul as MatMulNBits, "
          f"8-bit symmetric weights in blocks of {SORTED_BLOCK} after channels sorted by range on calibration.txt "
          f"(BERT layout; else unsorted, blocks of {BLOCK}), activations quantized per token and block (accuracy_level 4)")
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
        import onnx  # noqa: F401
        import onnxruntime  # type: ignore[import-untyped]  # noqa: F401  (fail before the export if it is missing)
    except ImportError as exc:
        raise Int8Unavailable(f"the int8 path needs onnxruntime and onnx: {exc}") from None
    sort = channel_order.renumberable(model[0].auto_model)
    return made_once(model, target, functools.partial(block_int8, block=SORTED_BLOCK if sort else BLOCK), "int8 model",
                     sort_channels=sort)


def made_once(model: Any, target: Path, convert: Callable[[Path, Path], object], what: str, *,
              sort_channels: bool = False) -> Path:
    """`target`: `model` exported (export_pooled) and `convert`ed (fp32 file -> target file) in a scratch
    folder beside it, then moved into place whole. Another process starting at once reads a whole file or
    none; the caller has already found that `target` does not exist."""
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fp32 = Path(work) / "model.onnx"
        export_pooled(model, fp32, sort_channels=sort_channels)
        exported = time.perf_counter()
        made = Path(work) / target.name
        convert(fp32, made)
        os.replace(made, target)
    log.info("%s made in %.1f s (export %.1f s): %s", what, time.perf_counter() - started, exported - started, target)
    return target


WeightRewrite = Callable[[Any, str, np.ndarray], tuple[list[Any], list[Any]]]


def rewrite_weight_matmuls(source: Path, target: Path, rewrite: WeightRewrite, domains: tuple[str, ...] = ()) -> int:
    """`source` with each MatMul whose second input is a constant 2-D weight W [K, N] replaced by what
    `rewrite(node, weight name, W)` returns (nodes, initializers), the weight itself dropped; saved as
    `target`, with the operator `domains` the new nodes need. Returns how many were replaced."""
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load(str(source))
    graph = graph_model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes, converted = [], 0
    for node in graph.node:
        name = node.input[1] if node.op_type == "MatMul" and len(node.input) == 2 else ""
        w = numpy_helper.to_array(weights[name]).astype(np.float32) if name in weights else None
        if w is None or w.ndim != 2:
            nodes.append(node)
            continue
        replacement, initializers = rewrite(node, name, w)
        graph.initializer.remove(weights.pop(name))
        graph.initializer.extend(initializers)
        nodes += replacement
        converted += 1
    del graph.node[:]
    graph.node.extend(nodes)
    known = {o.domain for o in graph_model.opset_import}
    graph_model.opset_import.extend(helper.make_opsetid(d, 1) for d in domains if d not in known)
    onnx.save(graph_model, str(target))
    return converted


def block_int8(source: Path, target: Path, block: int = BLOCK) -> int:
    """`source` with each weight MatMul as MatMulNBits: per output column n and block b of `block` input
    channels, scale = max |W[b, n]| / 127 and the weight stored as round(W / scale) + 128 (the operator's
    default zero point for 8 bits), laid out [N, blocks, block]. Returns how many were replaced."""
    from onnx import helper, numpy_helper

    def rewrite(node: Any, name: str, w: np.ndarray) -> tuple[list[Any], list[Any]]:
        k, n = w.shape
        blocks = -(-k // block)
        columns = np.pad(w.T, ((0, 0), (0, blocks * block - k))).reshape(n, blocks, block)
        scale = np.abs(columns).max(axis=2) / 127.0
        scale[scale == 0] = 1.0
        quantized = (np.clip(np.rint(columns / scale[:, :, None]), -127, 127) + 128).astype(np.uint8)
        matmul = helper.make_node("MatMulNBits", [node.input[0], f"{name}_q8", f"{name}_scales"], list(node.output),
                                  name=node.name, domain="com.microsoft", K=k, N=n, bits=8, block_size=block,
                                  accuracy_level=4)
        return [matmul], [numpy_helper.from_array(quantized, f"{name}_q8"),
                          numpy_helper.from_array(scale.reshape(-1).astype(np.float32), f"{name}_scales")]

    return rewrite_weight_matmuls(source, target, rewrite, domains=("com.microsoft",))


def export_pooled(model: Any, path: Path, *, sort_channels: bool = False) -> None:
    """The transformer, mean pooling and L2 normalisation as one ONNX graph (inputs input_ids and
    attention_mask, output embedding), in fp32 whatever the caller's model holds. With `sort_channels`,
    the transformer's channels are sorted by range (channel_order; the embedding's put back in order at
    the end of the graph): the same vectors, for coarser quantization blocks."""
    import torch

    transformer = copy.deepcopy(model[0].auto_model).float().eval()  # the caller's model keeps its dtype
    restore = None
    if sort_channels:
        try:
            transformer, order = channel_order.sorted_channels(transformer, model.tokenizer, int(model.max_seq_length))
        except channel_order.NotExact as exc:
            raise Int8Unavailable(f"int8 export cannot sort this model's channels: {exc}") from None
        restore = torch.as_tensor(order.restore())
    # Plain attention (masked scores, softmax): the same numbers as torch's fused attention (1e-7 here),
    # whose export guards fully masked rows with IsNaN/Where over every score, an eighth of the int8
    # model's time.
    if hasattr(transformer, "set_attn_implementation"):
        transformer.set_attn_implementation("eager")

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if restore is not None:
                pooled = pooled[:, restore]
            return torch.nn.functional.normalize(pooled, dim=1)

    example = torch.ones(2, 16, dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(Pooled().eval(), (example, example), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)


def embed_each(encodings: list[Any], dim: int, embed_one: Callable[[Any], np.ndarray],
               workers: ThreadPoolExecutor | None, threads: int) -> np.ndarray:
    """The vectors of tokenized texts, each embedded alone by `embed_one`, in their order: shared out
    over `threads` worker threads, each taking the next text as it is free (lengths differ); on the
    calling thread where there are no workers or a single text (no hop)."""
    vectors = np.zeros((len(encodings), dim), dtype=np.float32)
    todo = itertools.count()

    def embed_until_done(_: int) -> None:
        while (i := next(todo)) < len(encodings):
            vectors[i] = embed_one(encodings[i])

    if workers is None or len(encodings) < 2:
        embed_until_done(0)
    else:
        list(workers.map(embed_until_done, range(threads)))
    return vectors


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
    """One session whose calls each run on their caller's thread (one intra-op thread): questions on
    separate threads run side by side, as the torch path's do, and passages are shared out over
    `threads` worker threads, a text a call (see encode_passages). Measured here, two texts at once on
    one-thread calls ran 17% faster than one text at a time on two threads, whose every operator ends at
    a barrier between the threads."""

    version = f"each text alone; {RECIPE}"  # what the benchmark's vector cache keys on besides the model

    name = "onnx-int8"
    precision = "int8"

    def __init__(self, model: Any, model_file: Path, threads: int) -> None:
        import onnxruntime as ort

        self.model_file = model_file
        self.threads = max(1, threads)
        self._session = self._one_thread_session(ort, model_file)
        self._workers = ThreadPoolExecutor(self.threads, thread_name_prefix="qa-int8") if self.threads > 1 else None
        self._passage_tokenizer = text_tokenizer(model)
        self._question_tokenizer = text_tokenizer(model)
        self.dim = int(model.get_embedding_dimension())
        self._passage_lock = threading.Lock()
        self._question_lock = threading.Lock()  # for the tokenizer only: a session runs calls concurrently

    @staticmethod
    def _one_thread_session(ort: Any, model_file: Path) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1  # one thread a call: no pool of ONNX Runtime's own to spin or wait
        options.log_severity_level = 3
        return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _run(session: Any, encodings: list[Any]) -> np.ndarray:
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        vectors = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.asarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: list[str], batch_size: int) -> np.ndarray:
        """One model call per text, whatever `batch_size` asks: no padding is computed, and one text's
        activations stay in the core's cache (docs/performance.md). The worker threads take the texts in
        turn, each the next one as it is free."""
        with self._passage_lock:
            encodings = self._passage_tokenizer.encode_batch(texts)
        return embed_each(encodings, self.dim, lambda e: self._run(self._session, [e])[0], self._workers, self.threads)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        with self._question_lock:
            encodings = self._question_tokenizer.encode_batch(texts)
        if not encodings:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([self._run(self._session, [encoding]) for encoding in encodings])
