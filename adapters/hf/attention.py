"""Decode-step attention for CPU: one query token against a grouped KV cache, without copies.

Transformers' ``sdpa`` path sends a one-token decode step to PyTorch's CPU flash-attention
kernel, which repacks the whole bf16 KV cache on every call; ``eager`` repeats every key/value
head for each query head it serves (a copy of the cache per layer per step). Both grow with
the context: on Qwen2.5-Coder-0.5B (bf16, one thread, 32 rows, 600-token context) a decoding
step took about 1.05 s with ``sdpa`` and 1.37 s with ``eager``, the model's matmuls being a
third of that (``benchmarks/cpu_decode.py`` measures it on the eval's own request mix).

:func:`decode_attention` handles the one-token case with two batched matmuls over the query
heads grouped by the key/value head they share (a view, no copy), scores and softmax in
float32, and hands every other call (prefill, several query tokens, attention sinks,
soft-capping, position bias) to transformers' own ``sdpa`` function, so prompts are encoded
exactly as before. Registered with transformers as :data:`DECODE_ATTENTION` (masks as for
``sdpa``); :func:`resolve_attention` picks it for CPU loads when ``attn_implementation="auto"``.
"""

from __future__ import annotations

from typing import Any

import torch

from adapters.errors import InvalidRequestError

__all__ = ["DECODE_ATTENTION", "decode_attention", "register", "resolve_attention"]

DECODE_ATTENTION = "sc_decode"
"""The name :func:`decode_attention` is registered under (``attn_implementation=`` value)."""

_FALLBACK_KWARGS = ("position_bias", "softcap", "s_aux", "sinks")


def decode_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Transformers' attention-function signature: ``query`` ``(batch, heads, q, dim)``, ``key``
    and ``value`` ``(batch, kv_heads, keys, dim)``; returns ``(batch, q, heads, dim)``."""
    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if (q_len != 1 or heads % kv_heads or dropout or value.shape[-1] != dim
            or any(kwargs.get(k) is not None for k in _FALLBACK_KWARGS)):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim).float()
    scores = torch.matmul(grouped, key.float().transpose(-1, -2))  # (batch, kv_heads, group, keys)
    scores.mul_(dim**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        mask = attention_mask[:, :, -1:, -key.shape[2]:]  # (batch, 1, 1, keys): shared by every head
        if mask.dtype == torch.bool:
            scores.masked_fill_(~mask, float("-inf"))
        else:
            scores.add_(mask.float())
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, value.float()).to(query.dtype)  # (batch, kv_heads, group, dim)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def register() -> None:
    """Register :func:`decode_attention` (and ``sdpa``'s masks) with transformers; idempotent."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(DECODE_ATTENTION, decode_attention)
    AttentionMaskInterface.register(DECODE_ATTENTION, sdpa_mask)


def resolve_attention(value: Any, device: torch.device) -> str | None:
    """The ``attn_implementation`` to load with: ``"auto"`` is :data:`DECODE_ATTENTION` on CPU
    and transformers' own default (``None``) elsewhere; a name transformers knows passes through.

    Raises :class:`InvalidRequestError` for anything else, before a model loads.
    """
    if value is None or value == "auto":
        if device.type != "cpu":
            return None
        value = DECODE_ATTENTION
    register()
    from transformers import AttentionInterface

    known = sorted({"eager", *AttentionInterface._global_mapping})
    if not isinstance(value, str) or (value not in known and "/" not in value):  # "/": a hub kernel
        raise InvalidRequestError("attn_implementation", value, f"pass 'auto' or one of {', '.join(known)}")
    return value
