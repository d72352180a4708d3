"""The self-consistency graph: the loop of :mod:`graphs.sc.loop` driven by
:func:`graphs.driver.build_loop_graph` (one batched call, checkpointed; a new question on a
thread starts a fresh run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from adapters.specs import resolve_model
from adapters.types import Message
from graphs.driver import build_loop_graph, record_replies
from graphs.sc.config import SC_INSTRUCTION, ScConfig
from graphs.sc.loop import Candidate, sc_loop
from graphs.sc.policy import VoteGroup
from graphs.validate import check_instance, check_question
from graphs.vocab import Cost

__all__ = ["ScInput", "ScState", "create_sc_graph"]


class ScInput(TypedDict, total=False):
    """Input of the self-consistency graph."""

    question: str


class ScState(TypedDict, total=False):
    """State (and output) of the self-consistency graph."""

    question: str
    replies: Annotated[list[Any], record_replies]
    emitted: int
    finished: bool
    answer: str | None
    """The majority answer (``None`` when no sample had one)."""
    response: str
    """The full text of the first sample that gave the majority answer."""
    candidates: list[Candidate]
    votes: list[VoteGroup]
    """Every distinct answer with its count and members, winner first."""
    usage: Cost
    stop_reason: str | None


_OUTPUT = ("answer", "response", "candidates", "votes", "usage", "stop_reason")


def create_sc_graph(model: Any, config: ScConfig | None = None, *, checkpointer: Any = None, **overrides: Any):
    """Build the self-consistency graph.

    Args:
        model: anything :func:`adapters.specs.resolve_model` accepts.
        config: a :class:`ScConfig`; ``overrides`` (``k=``, ``temperature=``, ``max_tokens=``,
            ``seed=``, ``system_prompt=``) replace its fields.
        checkpointer: an optional LangGraph checkpointer.

    Input ``{"question": str}``; output adds ``answer``, ``response``, ``candidates``, ``votes``,
    ``usage`` (calls and tokens) and ``stop_reason`` (``"done"``).
    """
    if config is not None:
        check_instance("config", config, ScConfig, "pass graphs.sc.ScConfig(...) or keyword overrides")
    cfg = ScConfig.from_options(overrides, base=config)
    llm = resolve_model(model)

    def host(state: Mapping[str, Any]) -> list[Message]:
        msgs: list[Message] = [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []
        msgs.append({"role": "user", "content": f"{state['question']}\n\n{SC_INSTRUCTION}"})
        return msgs

    return build_loop_graph(
        name="sc",
        state_schema=ScState,
        input_schema=ScInput,
        model=llm,
        start=lambda s: {"question": check_question(s.get("question"))},
        make_loop=lambda s: sc_loop(cfg),
        host=host,
        finish=lambda s, result: dict(result),
        reset=_OUTPUT,
        checkpointer=checkpointer,
    )
