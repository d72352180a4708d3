"""Pieces every graph shares: usage accounting, model-calling nodes written once for sync and async.

A model-calling node is two pure halves: ``prepare(state) -> request(s)`` and
``apply(state, generation(s)) -> partial state``. :func:`model_node` joins them around
``model.generate`` (sync) and ``model.agenerate`` (async), so no node has a copy-pasted twin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableLambda

from adapters.base import LogprobModel
from adapters.types import Generation, GenerationRequest

__all__ = ["add_usage", "emit", "model_node", "usage_of"]

_USAGE_KEYS = ("calls", "prompt_tokens", "completion_tokens", "cached_tokens")


def usage_of(generations: Generation | Sequence[Generation]) -> dict[str, int]:
    """A usage dict (calls, prompt/completion/cached tokens) for one or many generations."""
    gens = [generations] if isinstance(generations, Generation) else list(generations)
    return {
        "calls": len(gens),
        "prompt_tokens": sum(g.usage.prompt_tokens for g in gens),
        "completion_tokens": sum(g.usage.completion_tokens for g in gens),
        "cached_tokens": sum(g.usage.cached_tokens for g in gens),
    }


def add_usage(left: Mapping[str, int] | None, right: Mapping[str, int] | None) -> dict[str, int]:
    """Reducer for a ``usage`` state key: sums each counter."""
    left, right = left or {}, right or {}
    return {k: int(left.get(k, 0)) + int(right.get(k, 0)) for k in _USAGE_KEYS}


Prepared = GenerationRequest | Sequence[GenerationRequest] | None


def model_node(
    model: LogprobModel,
    prepare: Callable[[Any], Prepared],
    apply: Callable[[Any, Any], dict[str, Any]],
    *,
    name: str,
    max_concurrency: int = 4,
) -> RunnableLambda:
    """A graph node that calls ``model`` between ``prepare`` and ``apply``, sync and async.

    ``prepare(state)`` returns one request, a list of requests (run as a batch), or ``None``
    (no call; ``apply`` gets ``None``). ``apply(state, result)`` returns the partial update.
    """

    def run_sync(state: Any) -> dict[str, Any]:
        req = prepare(state)
        if req is None:
            return apply(state, None)
        if isinstance(req, GenerationRequest):
            return apply(state, model.generate(req))
        return apply(state, model.batch(list(req), max_concurrency=max_concurrency))

    async def run_async(state: Any) -> dict[str, Any]:
        req = prepare(state)
        if req is None:
            return apply(state, None)
        if isinstance(req, GenerationRequest):
            return apply(state, await model.agenerate(req))
        return apply(state, await model.abatch(list(req), max_concurrency=max_concurrency))

    return RunnableLambda(run_sync, afunc=run_async, name=name)


def emit(event: str, **payload: Any) -> None:
    """Send a custom stream event (``stream_mode="custom"``); a no-op outside a graph run."""
    try:
        from langgraph.config import get_stream_writer

        writer = get_stream_writer()
    except Exception:  # outside a runnable context there is no writer
        return
    writer({"event": event, **payload})
