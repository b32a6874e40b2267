"""The ways this CPU can run the dense model, behind one interface, and the start-up choice among them.

Paths: torch-fp32 (the reference, always there), torch-bf16 (bf16 products; packed oneDNN layers for
questions, with their own fallbacks), openvino-int8 (OpenVINO, int8 products with activations quantized
per token and channel group; CPUs with VNNI) and onnx-int8 (ONNX Runtime, int8 weights, one activation
scale per tensor; any CPU). `choose_path` tries
the candidates for the precision asked for (qa_app.embedding.cpu orders them by the CPU's flags) with
a short self-test on a few probe texts: the first candidate that runs and whose vectors agree with fp32's
is kept. Anything else falls back to fp32, with one log line saying why.

The choice depends on the CPU's flags and the model only, never on a timing: on a busy machine a speed
test picks different paths in different processes (two workers of one server embedding questions with
different paths), and from one start to the next. The probe's time is still measured and reported.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa_app.embedding.cpu import candidate_paths, check_precision, cpu_info
from qa_app.embedding.torch_path import TorchPath

log = logging.getLogger(__name__)

# Probe texts: a question, and passages of the lengths a load embeds (the speed check is about passages).
PROBE_TEXTS = [
    "how do I cache the results of an expensive function?",
    "functools.lru_cache(maxsize=128, typed=False): a decorator that wraps a function with a memoizing "
    "callable that saves up to the maxsize most recent calls. It can save time when an expensive or I/O "
    "bound function is periodically called with the same arguments. Since a dictionary is used to cache "
    "results, the positional and keyword arguments to the function must be hashable.",
    "Vitamin D deficiency is associated with an increased risk of multiple sclerosis, and low serum levels "
    "of 25-hydroxyvitamin D predict a higher relapse rate in patients with early disease. Supplementation "
    "trials have so far given mixed results, and the dose that would matter remains unknown.",
    "The with statement wraps the execution of a block with methods defined by a context manager, so that "
    "common try, except and finally usage patterns can be kept in one place and reused; the manager's exit "
    "method runs even when the block raises an exception, which makes it the usual way to close files.",
]
# Agreement with fp32 on the probe texts, per precision: (lowest mean cosine, lowest single cosine).
AGREEMENT = {"bf16": (0.999, 0.998), "int8": (0.99, 0.98)}


class EmbeddingPath(Protocol):
    """One way of running the model. Both verbs return unit-length float32 vectors, a row per text."""

    name: str  # torch-fp32, torch-bf16, openvino-int8, onnx-int8
    precision: str  # fp32, bf16, int8: what the fingerprint records

    def encode_passages(self, texts: list[str], batch_size: int) -> np.ndarray: ...

    def encode_questions(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Probe:
    """What the self-test measured of one path: seconds per probe run, agreement, the verdict."""

    path: str
    seconds: float | None = None
    mean_cosine: float | None = None
    min_cosine: float | None = None
    verdict: str = ""


@dataclass(frozen=True)
class Selection:
    """Which path runs and why: for logs and /healthz."""

    requested: str
    path: str
    precision: str
    cpu: str
    cpu_class: str
    reason: str
    probes: tuple[Probe, ...] = field(default_factory=tuple)
    seconds: float = 0.0  # the whole choice, the int8 model's first export included

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timed(encode: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, float]:
    """The probe's vectors and the seconds they took (for the record: the choice does not use them)."""
    started = time.perf_counter()
    vectors = encode(PROBE_TEXTS)
    return vectors, time.perf_counter() - started


def _build(name: str, model: Any, folder: str | None, cache_dir: Path, threads: int) -> EmbeddingPath:
    if name == "torch-bf16":
        return TorchPath(copy.deepcopy(model), "bf16")  # its own copy: bf16 changes the weights' dtype
    from qa_app.embedding import onnx_int8

    try:
        if name == "openvino-int8":
            from qa_app.embedding import openvino_int8

            return openvino_int8.OpenVinoInt8Path(model, openvino_int8.prepare(model, folder, cache_dir), threads)
        if name == "onnx-int8":
            return onnx_int8.OnnxInt8Path(model, onnx_int8.prepare(model, folder, cache_dir), threads)
    except onnx_int8.Int8Unavailable:
        raise
    except Exception as exc:  # the exporter or the runtime refused this model or machine
        raise onnx_int8.Int8Unavailable(f"{type(exc).__name__}: {exc}") from None
    raise ValueError(f"no path named {name!r}")


def choose_path(model: Any, precision: str, *, folder: str | None = None, cache_dir: Path | None = None,
                threads: int | None = None, only: str | None = None) -> tuple[EmbeddingPath, Selection]:
    """The path to run `model` with for `precision` (auto, fp32, bf16, int8), and why it was chosen.
    `model` is a SentenceTransformer in fp32; the torch-fp32 path keeps it. `only` names the one path to
    try (the benchmark compares the int8 paths side by side), still falling back to fp32."""
    import torch

    from qa_app.embedding.onnx_int8 import default_cache_dir

    started = time.perf_counter()
    check_precision(precision)
    cpu = cpu_info()
    fp32 = TorchPath(model, "fp32")
    tried = (only,) if only else candidate_paths(precision)

    def chosen(path: EmbeddingPath, reason: str, probes: list[Probe]) -> tuple[EmbeddingPath, Selection]:
        selection = Selection(precision, path.name, path.precision, cpu.model, cpu.cpu_class, reason, tuple(probes),
                              round(time.perf_counter() - started, 3))
        log.info("embedding path %s (%s; %s; %.2f s)", path.name, reason, cpu.cpu_class, selection.seconds)
        return path, selection

    if not tried:
        return chosen(fp32, f"{precision} asked for", [])
    reference, fp32_seconds = _timed(lambda texts: fp32.encode_passages(texts, len(texts)))
    probes = [Probe(fp32.name, round(fp32_seconds, 4), 1.0, 1.0, "reference")]
    reasons: list[str] = []
    for name in tried:
        try:
            path = _build(name, model, folder, cache_dir or default_cache_dir(),
                          threads or torch.get_num_threads())
            encode = path.encode_passages
            vectors, seconds = _timed(lambda texts: encode(texts, len(texts)))
        except Exception as exc:  # a path that cannot run here is skipped, never fatal
            probes.append(Probe(name, verdict=f"unavailable: {exc}"))
            reasons.append(f"{name} unavailable")
            log.warning("embedding path %s unavailable: %s", name, exc)
            continue
        cosines = np.sum(vectors * reference, axis=1)
        mean, low = float(cosines.mean()), float(cosines.min())
        need_mean, need_min = AGREEMENT[path.precision]
        if mean < need_mean or low < need_min:
            verdict = f"disagrees with fp32 (cosine mean {mean:.4f}, min {low:.4f})"
        else:
            verdict = "chosen"
        probes.append(Probe(name, round(seconds, 4), round(mean, 5), round(low, 5), verdict))
        if verdict == "chosen":
            return chosen(path, f"{precision} on {cpu.cpu_class}: cosine to fp32 {mean:.4f}", probes)
        reasons.append(f"{name} {verdict}")
        log.warning("embedding path %s not used: %s", name, verdict)
    return chosen(fp32, "fallback: " + "; ".join(reasons), probes)
