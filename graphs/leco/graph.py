"""LECO as a LangGraph graph: a thin driver of :func:`graphs.leco.loop.leco_loop`.

``start -> step*``: one model call per step (see :mod:`graphs.driver`); the custom stream events
are ``leco.draft``, ``leco.cut``, ``leco.rethink`` and ``leco.done``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from adapters.specs import resolve_model
from graphs.driver import build_loop_graph
from graphs.streaming import stream_text
from graphs.leco.config import LecoConfig
from graphs.leco.loop import LecoResult, leco_loop
from graphs.leco.prompts import chat_messages
from graphs.leco.state import LecoInput, LecoState
from graphs.validate import start_input
from graphs.vocab import NO_LOGPROBS

__all__ = ["create_leco_graph", "regeneration_path"]

_OUTPUT_KEYS = ("attempts", "cuts", "candidates", "stop_reason", "status", "vote", "tokens_generated",
                "answer", "response", "usage", "regeneration_path")


def regeneration_path(model: LogprobModel, config: LecoConfig) -> str:
    """``"prefill"`` or ``"chat"``: how rethinks will continue the prefix with this model."""
    if config.regeneration == "chat":
        return "chat"
    if model.capabilities.prefill:
        return "prefill"
    if config.regeneration == "prefill":
        raise InvalidRequestError(
            "regeneration", "prefill",
            f"{model.name} cannot continue an assistant text; use regeneration='auto' or 'chat'",
        )
    return "chat"


def create_leco_graph(
    model: Any,
    config: LecoConfig | None = None,
    *,
    checkpointer: Any = None,
    stream: str = "final",
    **overrides: Any,
) -> CompiledStateGraph:
    """Build the LECO graph (input ``{"question"}``; output ``answer``, ``response``, ``usage``,
    ``attempts``, ``cuts``, ``candidates``, ``vote``, ``status``, ``stop_reason``,
    ``regeneration_path``, ``tokens_generated``).

    ``model``: anything :func:`adapters.specs.resolve_model` accepts. ``overrides``: fields of
    :class:`LecoConfig` applied on top of ``config``. Raises
    :class:`~adapters.errors.LogprobsUnavailableError` if the model gives no logprobs. With a
    checkpointer, each new question on a thread is a fresh run; earlier runs stay in the history.

    ``stream``: what reaches ``stream_mode="messages"``. LECO's answer is the vote over all
    attempts, so no call is known to be final while it runs: ``"final"`` (default) streams the
    chosen response piece by piece once the vote picked it (tagged ``sc_chains:leco:answer``);
    ``"all"`` streams every attempt as it is generated; ``"none"`` nothing (follow the ``leco.*``
    custom events).
    """
    cfg = LecoConfig.from_options(overrides, base=config)
    model = resolve_model(model)
    model.require_logprobs()
    if cfg.k > model.capabilities.max_top_logprobs:
        raise InvalidRequestError(
            "k", cfg.k, f"{model.name} returns at most {model.capabilities.max_top_logprobs} alternatives"
        )
    path = regeneration_path(model, cfg)

    def finish(state: Mapping[str, Any], result: LecoResult) -> dict[str, Any]:
        if result["stop_reason"] == NO_LOGPROBS and not result["attempts"]:
            raise LogprobsUnavailableError(model.name, model.logprobs_hint)
        if stream == "final":  # the answer is the vote's pick: it streams once chosen
            stream_text(result["response"], graph="leco")
        return {
            **{k: result[k] for k in ("attempts", "cuts", "candidates", "stop_reason", "status", "vote",  # type: ignore[literal-required]
                                      "answer", "response")},
            "usage": result["cost"], "tokens_generated": result["cost"]["completion_tokens"],
            "regeneration_path": path,
        }

    return build_loop_graph(
        name="leco", state_schema=LecoState, input_schema=LecoInput, model=model,
        start=start_input,
        make_loop=lambda s: leco_loop(cfg, path=path),  # type: ignore[arg-type]
        host=lambda s: chat_messages(s["question"], cfg.system_prompt, s.get("conversation") or (), cfg.user_template),
        finish=finish, reset=_OUTPUT_KEYS, checkpointer=checkpointer, stream=stream,
    )
