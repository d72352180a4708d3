"""Load a local Hugging Face causal LM as an :class:`~adapters.hf.model.HFModel`.

:func:`load_pretrained` (a folder or a hub id; loaded weights memoised), and the device and dtype
rules it and :func:`adapters.hf.tiny.tiny_random_model` share (:func:`resolve_device`,
:func:`resolve_dtype`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from adapters.errors import InvalidRequestError, ModelNotFoundError
from adapters.hf.attention import resolve_attention
from adapters.hf.packed import prepack_linears, resolve_prepack

if TYPE_CHECKING:
    from adapters.hf.model import HFModel

__all__ = ["load_pretrained", "resolve_device", "resolve_dtype"]

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}  # fmt: skip


def resolve_device(device: Any = None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidRequestError("device", device, "pass 'cpu', 'cuda', 'cuda:0' or 'auto'") from exc
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise InvalidRequestError(
            "device", device, f"this machine has {torch.cuda.device_count() if torch.cuda.is_available() else 0} "
            "usable CUDA devices; pass device='cpu' or 'auto' (or a cuda:N that exists)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidRequestError("device", device, "MPS is not available here; pass device='cpu' or 'auto'")
    return dev


def resolve_dtype(dtype: Any, device: torch.device) -> torch.dtype:
    """``None``/``"auto"``: fp32 on CPU, bf16 on CUDA (fp16 where bf16 is unsupported)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise InvalidRequestError("dtype", dtype, f"pass a torch.dtype or one of {sorted(_DTYPES)}")


def _looks_like_path(spec: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else that does not exist is a bad path."""
    return spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1


@functools.lru_cache(maxsize=4)
def _load(source: str, device: torch.device, dtype: torch.dtype, attention: str | None,
          prepack: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(source)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # keep stderr for our own output (the CLI, the demo)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=attention)
        model = model.to(device).eval()
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    if prepack:
        prepack_linears(model)
    return model, tokenizer


def load_pretrained(source: str | os.PathLike[str], *, device: Any = None, dtype: Any = None,
                    attn_implementation: Any = "auto", prepack_weights: Any = "auto", **options: Any) -> HFModel:
    """An :class:`HFModel` from a local model folder or a hub id (loaded weights are memoised).

    ``attn_implementation``: ``"auto"`` (the default) decodes with
    :func:`~adapters.hf.attention.decode_attention` on CPU (up to ~2.8x faster decoding steps
    than ``sdpa`` at long contexts) and uses transformers' default elsewhere; any name
    transformers accepts (``"sdpa"``, ``"eager"``, ``"flash_attention_2"``...) is passed on.
    ``prepack_weights``: ``"auto"`` (the default) reorders the linear layers' weights once for
    oneDNN on CPU in float32/bfloat16 (:mod:`adapters.hf.packed`: same outputs, faster
    matmuls); ``False`` keeps ``nn.Linear``; ``True`` requires packing.

    Raises :class:`ModelNotFoundError` when ``source`` is neither an existing folder nor a
    loadable hub id (hub ids need a connection, or a copy in the local Hugging Face cache).
    """
    spec = str(source)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    attention = resolve_attention(attn_implementation, dev)
    prepack = resolve_prepack(prepack_weights, dev, dt)
    path = Path(spec).expanduser()
    fix = (
        "pass an existing folder holding a transformers causal LM (config.json + weights), "
        "a Hugging Face hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct' (needs a "
        "connection or the local HF cache), or one of hf:default, hf:tiny-random, hf:qwen2.5-coder-0.5b"
    )
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(spec, f"the folder has no config.json; {fix}")
        source_id = str(path.resolve())
    elif _looks_like_path(spec):
        raise ModelNotFoundError(spec, f"the path does not exist; {fix}")
    else:
        source_id = spec
    try:
        model, tokenizer = _load(source_id, dev, dt, attention, prepack)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(spec, f"{fix} (loading failed: {exc})") from exc
    from adapters.hf.model import HFModel

    options.setdefault("name", f"hf:{spec}")
    return HFModel(model, tokenizer, **options)
