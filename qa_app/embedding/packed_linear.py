"""bf16 linear layers whose weights are laid out once for oneDNN, for the question path.

torch multiplies by a plain bf16 weight by first copying it into the blocked layout of oneDNN's AMX
kernel, on every call. For a batch of a few short questions the copy is a large part of the model's
time (docs/performance.md has the figures). A packed layer runs the same kernel without the copy,
so its outputs are the same.

`torch.ops.mkldnn._reorder_linear_weight` and `_linear_pointwise` are the ops torch's own compiler
uses for this. They are private: where they are missing or fail, `packed_copy` returns None and the
caller keeps the plain model.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import torch

log = logging.getLogger(__name__)

BATCH_HINT = 32  # rows the layout is tuned for: a few questions of a dozen tokens


def _script_linear() -> Any:
    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        no_post_op_arguments = torch.jit.annotate(list[int | float | complex | None], [])
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", no_post_op_arguments, "")

    # Scripted, so a trace records one call: the tracer cannot record the op's Scalar?[] argument itself.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, not gone, in torch 2.13
        return torch.jit.script(linear)


class PackedLinear(torch.nn.Module):
    def __init__(self, linear: torch.nn.Linear, function: Any) -> None:
        super().__init__()
        self.function = function
        self.bias = linear.bias
        weight = linear.weight.detach().to(torch.bfloat16)
        self.register_buffer("weight", torch.ops.mkldnn._reorder_linear_weight(weight, BATCH_HINT), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x.to(torch.bfloat16).contiguous(), self.weight, self.bias)


def packed_copy(model: torch.nn.Module) -> torch.nn.Module | None:
    """A copy of `model` whose linear layers are packed bf16 ones, sharing every other tensor with
    `model` (None where this build of torch cannot pack)."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        function = _script_linear()
        shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
        clone = copy.deepcopy(model, shared)
        for parent in list(clone.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Linear):
                    setattr(parent, name, PackedLinear(child, function))
        return clone.eval()
    except Exception as exc:  # private ops: any failure means the plain model
        log.info("linear layers stay unpacked: %s", exc)
        return None
