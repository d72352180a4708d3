"""The correction loops as LCEL Runnables: ``prompt | leco_chain(model) | StrOutputParser()``.

Each chain is ``coerce | graph | shape``, a plain :class:`~langchain_core.runnables.RunnableSequence`,
so ``invoke``, ``ainvoke``, ``batch``, ``abatch``, ``stream``, ``astream_events`` and every
``RunnableConfig`` field (callbacks, tags, ``max_concurrency``) work as for any LCEL chain.

Input: what a chat model takes (a string, a prompt value, a message, a list of messages or of
``("human", "...")`` tuples / ``{"role", "content"}`` dicts: the last human turn is the question,
everything before it, system prompt included, is the ``history`` the chain's calls see), or a
dict with ``"question"`` (and optionally ``"history"``, ``"reference"``).
Output (``output=``): ``"message"`` (default) an ``AIMessage`` whose content is the final
response, with ``usage_metadata`` summed over every model call and the answer and trace summary
in ``response_metadata["sc_chains"]``; ``"answer"`` the extracted answer string; ``"state"`` the
graph's whole final state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from adapters.errors import InvalidRequestError
from adapters.types import normalize_messages

__all__ = ["as_chain", "critique_chain", "leco_chain", "s2a_chain"]

Output = Literal["message", "answer", "state"]
_OUTPUTS = ("message", "answer", "state")
_TRACE_KEYS = ("stop_reason", "parse_status", "removed", "attempt1_answer", "regeneration_path", "cuts")


def to_question(value: Any) -> Any:
    """The graph input ``{"question": ...}`` from any LCEL-style input (a LangGraph
    ``Command``, e.g. ``Command(resume=...)`` after a review pause, passes through unchanged)."""
    from langgraph.types import Command

    if isinstance(value, Command):
        return value
    if isinstance(value, Mapping):
        if "question" not in value:
            raise InvalidRequestError("input", dict(value), "pass a dict with a 'question' key, a string or messages")
        return dict(value)
    if isinstance(value, str):
        return {"question": value}
    messages = _as_messages(value)
    last = max((i for i, m in enumerate(messages) if m.type == "human"), default=len(messages) - 1)
    question: dict[str, Any] = {"question": messages[last].text}
    if last:
        question["history"] = [dict(m) for m in normalize_messages(messages[:last])]
    return question


def _as_messages(value: Any) -> list[BaseMessage]:
    """LangChain messages from a prompt value, a message, or a list of messages / tuples / dicts."""
    from langchain_core.messages import convert_to_messages

    if isinstance(value, PromptValue):
        value = value.to_messages()
    if isinstance(value, BaseMessage):
        value = [value]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and value:
        try:
            return convert_to_messages(value)
        except (ValueError, TypeError, NotImplementedError):
            pass
    raise InvalidRequestError(
        "input", value, "pass a string, a prompt value, messages (or (role, text) tuples), or {'question': ...}"
    )


def _shape(output: Output):
    def shape(state: Mapping[str, Any]) -> Any:
        if output == "state" or "__interrupt__" in state:  # paused for review: the state says why
            return dict(state)
        if output == "answer":
            return state.get("answer")
        usage = state.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        meta = {k: state[k] for k in _TRACE_KEYS if k in state}
        return AIMessage(
            content=state.get("response") or "",
            response_metadata={"sc_chains": {"answer": state.get("answer"), "usage": dict(usage), **meta}},
            usage_metadata={
                "input_tokens": prompt,
                "output_tokens": completion,
                "total_tokens": prompt + completion,
                "input_token_details": {"cache_read": int(usage.get("cached_tokens", 0))},
            },
        )

    return shape


def _whole(graph: Runnable) -> Runnable:
    """The graph as one step that yields its final state (a loop's drafts never leave as output;
    they stay visible to callbacks, ``astream_events`` and the graph's custom stream events)."""

    def run(state: dict[str, Any], config: RunnableConfig) -> Any:
        return graph.invoke(state, config)

    async def arun(state: dict[str, Any], config: RunnableConfig) -> Any:
        return await graph.ainvoke(state, config)

    return RunnableLambda(run, afunc=arun, name=getattr(graph, "name", None) or "graph")


def as_chain(graph: Runnable, *, output: Output = "message", name: str | None = None) -> Runnable:
    """Wrap a compiled correction graph (input ``{"question"}``) for LCEL."""
    if output not in _OUTPUTS:
        raise InvalidRequestError("output", output, f"use one of {list(_OUTPUTS)}")
    chain = (
        RunnableLambda(to_question, name="to_question")
        | _whole(graph)
        | RunnableLambda(_shape(output), name=f"to_{output}")
    )
    return chain.with_config(run_name=name or getattr(graph, "name", None) or "sc_chain")


def leco_chain(model: Any, *, output: Output = "message", **config: Any) -> Runnable:
    """LECO as an LCEL Runnable; ``config``: :class:`~graphs.leco.LecoConfig` fields."""
    from graphs.leco import create_leco_graph

    return as_chain(create_leco_graph(model, **config), output=output, name="leco")


def s2a_chain(model: Any, *, output: Output = "message", **config: Any) -> Runnable:
    """S2A as an LCEL Runnable; ``config``: :class:`~graphs.s2a.S2AConfig` fields and ``answer_graph=``."""
    from graphs.s2a import create_s2a_graph

    return as_chain(create_s2a_graph(model, **config), output=output, name="s2a")


def critique_chain(model: Any, *, output: Output = "message", **config: Any) -> Runnable:
    """Critique-revise as an LCEL Runnable; ``config``: ``mode=``, ``critic=`` and CritiqueConfig fields."""
    from graphs.critique import create_critique_graph

    return as_chain(create_critique_graph(model, **config), output=output, name="critique")
