"""Pieces every graph shares: usage accounting, model-calling nodes written once for sync and async.

A model-calling node is two pure halves: ``prepare(state) -> request(s)`` and
``apply(state, generation(s)) -> partial state``. :func:`model_node` joins them around
``model.generate`` (sync) and ``model.agenerate`` (async), so no node has a copy-pasted twin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableLambda
from langgraph.config import get_stream_writer

from adapters.base import LogprobModel
from adapters.types import GenerationRequest
from graphs.vocab import add_cost, cost_of

__all__ = ["add_usage", "emit", "model_node", "usage_of", "with_system"]

usage_of = cost_of
"""A usage dict (calls, prompt/completion/cached tokens) for one or many generations: the
:class:`graphs.vocab.Cost` record (one implementation, :func:`graphs.vocab.cost_of`)."""

add_usage = add_cost
"""Reducer for a ``usage`` state key: sums each counter (:func:`graphs.vocab.add_cost`)."""


def with_system(history: Sequence[Mapping[str, str]], system_prompt: str) -> list[dict[str, str]]:
    """The conversation a chain sends before its question: the caller's ``history`` (system
    prompt, earlier turns) with the method's ``system_prompt`` joined to the caller's system
    message (one system message first, as chat templates want)."""
    own = [m["content"] for m in history if m["role"] == "system"]
    system = "\n\n".join(p for p in (*own, system_prompt) if p and p.strip())
    rest = [dict(m) for m in history if m["role"] != "system"]
    return ([{"role": "system", "content": system}] if system else []) + rest


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
        writer = get_stream_writer()
    except Exception:  # outside a runnable context there is no writer
        return
    writer({"event": event, **payload})
