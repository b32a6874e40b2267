"""The model in int8 through OpenVINO, for CPUs with int8 dot products (VNNI) but no bf16 units.

The model is exported as for the ONNX Runtime path (qa_app.embedding.onnx_int8: transformer, mean
pooling and normalisation in one graph), then every MatMul weight is stored as int8, symmetric, one
scale per output channel (a DequantizeLinear before the MatMul). OpenVINO's CPU plugin turns each of
these into an int8 product and quantizes its input as it runs, per token and per group of
`GROUP_SIZE` input channels (its dynamic quantization), as ONNX Runtime's block recipe does
(qa_app.embedding.onnx_int8; one scale for a whole activation tensor let outlier tokens and channels cost
resolution everywhere: cosine to fp32 0.997, SciFact dev nDCG@10 -0.007). Here the cosine is ~0.999 and
the quality gate holds on both dev sets (docs/research/precision), and on VNNI CPUs it runs faster than
ONNX Runtime's. The file is made once and cached like the ONNX Runtime one.

OpenVINO's dynamic quantization needs VNNI (AVX-512 VNNI or AVX-VNNI): on plain AVX2 its int8 kernels
are not there (the plugin refuses the primitive), so the chooser tries this path only where the CPU has
them (qa_app.embedding.cpu), and OpenVINO, being oneDNN inside, honours ONEDNN_MAX_CPU_ISA.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from qa_app.embedding.onnx_int8 import (
    Int8Unavailable,
    check_exportable,
    embed_each,
    made_once,
    model_key,
    rewrite_weight_matmuls,
    text_tokenizer,
)

GROUP_SIZE = 32  # input channels that share one activation scale (per token)
RECIPE = ("minilm-ov-int8-v2: opset 17, eager attention, mean pooling + L2 in the graph, every MatMul weight int8 symmetric per "
          f"output channel, activations quantized by OpenVINO per token in groups of {GROUP_SIZE}")
MODEL_FILE = "model.int8-weights.onnx"


def prepare(model: Any, folder: str | None, cache_dir: Path) -> Path:
    """The int8-weight model file for `model`, exported now unless it is in the cache."""
    check_exportable(model)
    try:
        import onnx  # noqa: F401
        import openvino  # noqa: F401  (fail before the export if it is missing)
    except ImportError as exc:
        raise Int8Unavailable(f"the OpenVINO int8 path needs openvino and onnx: {exc}") from None
    target = cache_dir / "openvino" / model_key(model, folder, RECIPE, ("openvino", "onnx", "torch", "transformers")) \
        / MODEL_FILE
    if target.exists():
        return target
    return made_once(model, target, int8_weights, "OpenVINO int8 model")


def int8_weights(source: Path, target: Path) -> int:
    """`source` with each MatMul's float weight W [in, out] stored as int8 and one scale per output
    column: MatMul(x, DequantizeLinear(Wq, scale, axis=1)). Returns how many were converted."""
    from onnx import helper, numpy_helper

    def rewrite(node: Any, name: str, w: np.ndarray) -> tuple[list[Any], list[Any]]:
        scale = np.abs(w).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        quantized = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        dequantize = helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale"], [name], axis=1,
                                      name=f"{node.name}_dequantize")
        return [dequantize, node], [numpy_helper.from_array(quantized, f"{name}_int8"),
                                    numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale")]

    return rewrite_weight_matmuls(source, target, rewrite)


class OpenVinoInt8Path:
    """Every text runs alone, as on the ONNX Runtime path (no padding; a text's vector never depends on
    others), with one thread per inference request: passages are shared out over `threads` worker
    threads, each with its own request of the passages' compiled model (a stream per thread), and each
    question thread has its own request of the questions' model, so questions run side by side and
    beside a load. Two texts at once on one thread each ran 8-15% faster than one text at a time on two
    threads, with the same vectors (under the AVX2-VNNI cap, docs/performance.md)."""

    version = f"each text alone; {RECIPE}"  # what the benchmark's vector cache keys on besides the model

    name = "openvino-int8"
    precision = "int8"

    def __init__(self, model: Any, model_file: Path, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        graph = core.read_model(str(model_file))
        self.model_file = model_file
        self.threads = max(1, threads)
        # Two compiled models of the same configuration, each with its own streams: questions asked
        # during a load run beside its passages instead of waiting for one of the load's streams.
        self._passages = core.compile_model(graph, "CPU", _config(self.threads, streams=self.threads))
        self._questions = core.compile_model(graph, "CPU", _config(self.threads, streams=self.threads))
        self._workers = ThreadPoolExecutor(self.threads, thread_name_prefix="qa-int8") if self.threads > 1 else None
        self._requests = threading.local()  # each thread's inference request of either model
        self._passage_tokenizer = text_tokenizer(model)
        self._question_tokenizer = text_tokenizer(model)
        self.dim = int(model.get_embedding_dimension())
        self._passage_lock = threading.Lock()
        self._question_lock = threading.Lock()  # for the tokenizer only: each thread has its own request

    @staticmethod
    def _run(request: Any, encoding: Any) -> np.ndarray:
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        return np.array(request.infer({"input_ids": ids, "attention_mask": mask})[0], dtype=np.float32)

    def _request(self, compiled: Any, kind: str) -> Any:
        """This thread's inference request of `compiled` (made on its first text)."""
        request = getattr(self._requests, kind, None)
        if request is None:
            request = compiled.create_infer_request()
            setattr(self._requests, kind, request)
        return request

    def encode_passages(self, texts: list[str], batch_size: int) -> np.ndarray:
        """One model call per text, whatever `batch_size` asks (see the class docstring)."""
        with self._passage_lock:
            encodings = self._passage_tokenizer.encode_batch(texts)
        return embed_each(encodings, self.dim, lambda e: self._run(self._request(self._passages, "passages"), e)[0],
                          self._workers, self.threads)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        with self._question_lock:
            encodings = self._question_tokenizer.encode_batch(texts)
        if not encodings:
            return np.zeros((0, self.dim), dtype=np.float32)
        request = self._request(self._questions, "questions")
        return np.concatenate([self._run(request, encoding) for encoding in encodings])


def _config(threads: int, streams: int) -> dict[str, Any]:
    """fp32 arithmetic around the int8 products (not bf16, which OpenVINO would pick on a CPU that has
    it: then this path would not be what an AVX-VNNI laptop runs); threads not pinned to cores, which
    the same machine shares with Milvus and the event loop."""
    return {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": GROUP_SIZE,
            "INFERENCE_NUM_THREADS": max(1, threads), "NUM_STREAMS": max(1, streams), "ENABLE_CPU_PINNING": False}
