"""What this CPU has for the model's matrix products, and which paths are worth trying on it, best first.

The flags come from the operating system (/proc/cpuinfo on Linux), not from private torch probes, and
ONEDNN_MAX_CPU_ISA is honoured. They order the candidates; the start-up self-test (qa_app.embedding.paths)
only checks that a candidate runs and agrees with fp32, so the choice is the same in every process.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16", "int8")
# Flags that matter to the model's arithmetic, in the order they are shown.
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                     "amx_int8", "asimddp", "i8mm", "bf16", "sve")


@dataclass(frozen=True)
class CpuInfo:
    model: str
    machine: str
    flags: frozenset[str]

    @property
    def bf16_matrix_units(self) -> bool:
        """AMX, or AVX-512 BF16 (dot products of bf16 pairs): bf16 products run in hardware, unless
        oneDNN is told not to use them (ONEDNN_MAX_CPU_ISA below AVX512_CORE_BF16), when torch emulates them."""
        return bool({"amx_bf16", "avx512_bf16"} & self.flags) and not _onednn_capped_below_bf16()

    @property
    def amx(self) -> bool:
        """AMX's bf16 tiles, which oneDNN may use (not under ONEDNN_MAX_CPU_ISA below AVX512_CORE_AMX)."""
        return "amx_bf16" in self.flags and self.bf16_matrix_units and _onednn_cap() not in _ISAS_WITHOUT_AMX

    @property
    def vnni(self) -> bool:
        """x86 int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX) that oneDNN may use: not when
        ONEDNN_MAX_CPU_ISA caps it below them, nor when it caps it at AVX2_VNNI on a CPU without AVX-VNNI
        (one with AVX-512 VNNI only: oneDNN then runs plain AVX2). OpenVINO's dynamic quantization needs them."""
        if _onednn_cap() == "AVX2_VNNI":
            return "avx_vnni" in self.flags
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & self.flags) and not _onednn_capped_below_vnni()

    @property
    def cpu_class(self) -> str:
        """A short name for the kind of CPU: amx, avx512-bf16, avx512-vnni, avx2-vnni, avx512, avx2, neon or
        baseline; under ONEDNN_MAX_CPU_ISA, the class oneDNN is allowed to run as."""
        if self.bf16_matrix_units:
            return "amx" if self.amx else "avx512-bf16"
        cap = _onednn_cap()
        if self.vnni:
            return "avx512-vnni" if "avx512_vnni" in self.flags and cap != "AVX2_VNNI" else "avx2-vnni"
        if "avx512f" in self.flags and cap not in _ISAS_BELOW_AVX512:
            return "avx512"
        if "avx2" in self.flags and cap not in _ISAS_BELOW_AVX2:
            return "avx2"
        if self.machine in ("aarch64", "arm64"):
            return "neon"
        return "baseline"

    def shown_flags(self) -> list[str]:
        return [f for f in FLAGS_OF_INTEREST if f in self.flags]


# oneDNN's ISA names that lack bf16 products (https://oneapi-src.github.io/oneDNN/dev_guide_cpu_dispatcher_control.html).
_ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


_ISAS_WITHOUT_AMX = _ISAS_WITHOUT_BF16 | {"AVX512_CORE_BF16", "AVX2_VNNI_2", "AVX512_CORE_FP16"}
_ISAS_WITHOUT_VNNI = {"SSE41", "AVX", "AVX2", "AVX512_CORE"}
_ISAS_BELOW_AVX2 = {"SSE41", "AVX"}
_ISAS_BELOW_AVX512 = _ISAS_BELOW_AVX2 | {"AVX2", "AVX2_VNNI"}


def _onednn_cap() -> str:
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()


def _onednn_capped_below_bf16() -> bool:
    return _onednn_cap() in _ISAS_WITHOUT_BF16


def _onednn_capped_below_vnni() -> bool:
    return _onednn_cap() in _ISAS_WITHOUT_VNNI


@functools.cache
def cpu_info() -> CpuInfo:
    """This CPU's model name and feature flags (empty flags where the system does not say)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "cpu model", "hardware") and value.strip():
                model = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    except OSError:
        pass
    return CpuInfo(model, platform.machine().lower(), frozenset(flags))


def native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AMX or AVX-512 BF16)."""
    return cpu_info().bf16_matrix_units


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def candidates(precision: str, cpu: CpuInfo | None = None) -> tuple[str, ...]:
    """The precisions to try for `precision`, best first; fp32 is the fallback and is not listed.

    auto: bf16 first where the CPU has AMX, whose bf16 tiles outrun its int8 paths; int8 first
    elsewhere (ONNX Runtime's kernels use VNNI or dot products where the CPU has them, and AVX2 or NEON
    elsewhere, still faster than fp32), then bf16 where AVX-512 BF16 multiplies it in hardware: on such
    a CPU without AMX (AMD Zen 4) OpenVINO's int8 embedded passages 1.6x as fast as bf16 and questions
    faster too, within the quality gate (docs/performance.md)."""
    check_precision(precision)
    if precision == "fp32":
        return ()
    if precision != "auto":
        return (precision,)
    cpu = cpu or cpu_info()
    if not cpu.bf16_matrix_units:
        return ("int8",)
    return ("bf16", "int8") if cpu.amx else ("int8", "bf16")


def candidate_paths(precision: str, cpu: CpuInfo | None = None) -> tuple[str, ...]:
    """The paths to try for `precision`, best first (torch-fp32 is the fallback and is not listed):
    int8 runs on OpenVINO where the CPU has VNNI (finer activation scales: the quality gate holds), and
    on ONNX Runtime everywhere else, or where OpenVINO cannot run."""
    cpu = cpu or cpu_info()
    names: list[str] = []
    for candidate in candidates(precision, cpu):
        if candidate == "bf16":
            names.append("torch-bf16")
        else:
            names += ["openvino-int8", "onnx-int8"] if cpu.vnni else ["onnx-int8"]
    return tuple(names)


def resolve_precision(precision: str) -> str:
    """The precision tried first for `precision` on this CPU (the self-test may still fall back)."""
    return (candidates(precision) or ("fp32",))[0]
