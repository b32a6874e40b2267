"""Which arithmetic this CPU runs the model in best."""

from __future__ import annotations

PRECISIONS = ("auto", "bf16", "fp32")


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
