"""Linear layers with weights reordered once for oneDNN, for CPU inference.

``torch.nn.functional.linear`` on CPU reorders the weight matrix into the GEMM library's
blocked layout on every call. With the few rows a decoding step has (one token per running
request) that reorder costs about as much as the multiplication itself. :func:`prepack_linears`
replaces each ``nn.Linear`` of a loaded model by a :class:`PackedLinear` that holds the weight
already reordered (``torch.ops.mkldnn._reorder_linear_weight``, the op PyTorch's own CPU
compiler uses for frozen weights) and multiplies with ``torch.ops.mkldnn._linear_pointwise``.
Measured on this project's 2-core CPU, one thread, a 4864x896 layer: 1.4-1.7x faster in bf16
(the results are bit-identical to ``F.linear``) and 2.1-2.5x in fp32 (equal to float rounding);
``benchmarks/cpu_decode.py`` gives the end-to-end figure.

Inference only: the packed weight is not a parameter (no gradient, not in ``state_dict``), so
a model is packed after it is loaded, moved and cast, and never trained or saved afterwards.
"""

from __future__ import annotations

from typing import Any

import torch

from adapters.errors import InvalidRequestError

__all__ = ["PREPACK_MODES", "PackedLinear", "can_prepack", "prepack_linears", "resolve_prepack"]

PREPACK_MODES = ("auto", True, False)
"""Values of ``prepack_weights=``: ``"auto"`` packs where :func:`can_prepack` says it works."""

_ROWS_HINT = 16  # the batch size oneDNN tunes the layout for; any row count works


class PackedLinear(torch.nn.Module):
    """``nn.Linear`` for inference with a pre-reordered weight (CPU, float32 or bfloat16)."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self.dtype = weight.dtype
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, _ROWS_HINT)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}, packed"


def can_prepack(device: torch.device, dtype: torch.dtype) -> bool:
    """True on CPU in float32, or in bfloat16 where oneDNN supports it on this CPU."""
    if device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16):
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    return dtype == torch.float32 or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_prepack(value: Any, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether to pack a model loaded on ``device`` in ``dtype``: ``"auto"`` where
    :func:`can_prepack`, ``True`` requires it, ``False`` never.

    Raises :class:`InvalidRequestError`, before any model loads, for a value outside
    :data:`PREPACK_MODES`, or ``True`` where packing cannot work (not on CPU, float16, no oneDNN).
    """
    if not isinstance(value, (str, bool)) or value not in PREPACK_MODES:
        raise InvalidRequestError("prepack_weights", value, "pass 'auto', True or False")
    if value is True and not can_prepack(device, dtype):
        raise InvalidRequestError("prepack_weights", value, f"packing needs a CPU model in float32 or bfloat16 "
                                  f"with oneDNN (got {device.type}, {dtype}); pass 'auto' or False")
    return bool(value) and can_prepack(device, dtype)


def prepack_linears(model: torch.nn.Module) -> int:
    """Replace every ``nn.Linear`` in ``model`` by a :class:`PackedLinear`; returns how many.

    Tied weights (an output layer sharing the input embeddings) get their own packed copy; the
    embedding keeps the original."""
    targets = [(name, mod) for name, mod in model.named_modules() if type(mod) is torch.nn.Linear]
    for name, mod in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, PackedLinear(mod))
    return len(targets)
