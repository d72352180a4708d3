"""System 2 Attention as a LangGraph graph: a thin driver of :func:`graphs.s2a.loop.s2a_loop`.

The loop rewrites the user's text without the parts that should not steer the answer (an
opinion, an irrelevant sentence), parses the labelled sections (pure, with an explicit recorded
fallback), composes the answer prompt and answers it. The answer step is that model call, or any
compiled graph that follows the chain contract (``{"question"}`` in; ``answer``/``response``/
``usage`` out), e.g. the LECO graph, run as an ``after`` node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph.state import CompiledStateGraph

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from graphs.answers import extract_answer
from graphs.common import emit, with_system
from graphs.driver import build_loop_graph
from graphs.s2a.config import S2AConfig
from graphs.s2a.loop import RELEVANCE_TARGET, S2AResult, s2a_loop
from graphs.validate import start_input
from graphs.vocab import DONE, MAX_COMPLETION_TOKENS, Cost, add_cost

__all__ = ["S2AInput", "S2AState", "create_s2a_graph"]

_CONTRACT_KEYS = {"question", "reference", "answer", "response", "usage"}
_OUTPUT_KEYS = ("rewrite", "rewrite_finish_reason", "context", "query", "parse_status", "parse_reason",
                "removed", "sentence_scores", "answer_prompt", "answer", "response", "answer_trace", "stop_reason", "usage")


class S2AInput(TypedDict, total=False):
    """What the graph takes: the user's full text, optionally the conversation before it
    (``history``: system prompt and earlier turns) and a gold answer."""

    question: str
    history: list[dict[str, str]]
    reference: str


class S2AState(TypedDict, total=False):
    """The S2A trace of the latest run; every value is JSON-serialisable."""

    question: str  # the original user input, unchanged
    history: list[dict[str, str]] | None  # input: the conversation before the question (cleared at start)
    conversation: list[dict[str, str]]  # this run's conversation before the question
    reference: str  # optional gold answer (passed on to an answer subgraph)
    replies: Annotated[list[Any], lambda a, b: [] if b is None else [*(a or []), *b]]
    emitted: int
    finished: bool
    rewrite: str  # the raw rewrite text
    rewrite_finish_reason: str  # "stop" or "length"
    context: str  # the parsed context (single variant: the whole rewritten text)
    query: str  # the parsed question
    parse_status: str  # "ok" | "fallback_..."
    parse_reason: str  # why, in words
    removed: list[str]  # sentences of the original the rewrite (or the filter) dropped
    sentence_scores: list[dict[str, Any]]  # mode="filter": each context sentence's relevance score, kept or not
    answer_prompt: str  # what the answer step was given
    answer: str | None
    response: str
    answer_trace: dict[str, Any]  # the answer subgraph's own trace keys
    stop_reason: str  # "done" | "max_completion_tokens"
    usage: Cost


def _finish(state: Mapping[str, Any], result: S2AResult) -> dict[str, Any]:
    r = result["rewrite"]
    return {
        "rewrite": r["raw"], "rewrite_finish_reason": r["finish_reason"], "context": r["context"],
        "query": r["query"], "parse_status": r["status"], "parse_reason": r["reason"], "removed": r["removed"],
        "sentence_scores": r["scores"],
        "answer_prompt": r["prompt"], "answer": result["answer"], "response": result["response"],
        "stop_reason": result["stop_reason"], "usage": result["cost"],
    }


def _answer_graph_node(graph: Runnable, cfg: S2AConfig) -> RunnableLambda:
    """Run a contract-following graph on the composed prompt; merge its usage and trace."""

    def prepare(state: Mapping[str, Any]) -> dict[str, Any] | None:
        budget = cfg.max_completion_tokens
        if budget is not None and budget - int(state["usage"]["completion_tokens"]) <= 0:
            emit("s2a.answer", source="skipped", answer=None, response="")
            return None
        sub: dict[str, Any] = {"question": state["answer_prompt"]}
        if state.get("conversation"):
            sub["history"] = state["conversation"]
        return {**sub, "reference": state["reference"]} if "reference" in state else sub

    def apply(state: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        response = out.get("response") or ""
        answer = out.get("answer", extract_answer(response))
        emit("s2a.answer", source="graph", answer=answer, response=response)
        return {"answer": answer, "response": response, "stop_reason": DONE,
                "answer_trace": {k: v for k, v in out.items() if k not in _CONTRACT_KEYS},
                "usage": add_cost(state["usage"], out.get("usage"))}

    def run(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        sub = prepare(state)
        return {"stop_reason": MAX_COMPLETION_TOKENS} if sub is None else apply(state, graph.invoke(sub, config))

    async def arun(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        sub = prepare(state)
        return {"stop_reason": MAX_COMPLETION_TOKENS} if sub is None else apply(state, await graph.ainvoke(sub, config))

    return RunnableLambda(run, afunc=arun, name="answer")


def create_s2a_graph(
    model: Any,
    config: S2AConfig | None = None,
    *,
    checkpointer: Any = None,
    answer_graph: Runnable | None = None,
    stream: str = "final",
    **overrides: Any,
) -> CompiledStateGraph:
    """Build the S2A graph: rewrite, parse, answer (``mode="filter"``: score each context
    sentence, drop the lowest, answer).

    Args:
        model: anything :func:`adapters.specs.resolve_model` accepts; makes the rewrite (and the
            plain answer call).
        config: an :class:`S2AConfig` (default: opinion removal, split variant, zero-shot
            rewrite; ``few_shot=True`` for worked examples, ``mode="filter"`` for the filter).
        checkpointer: a LangGraph checkpointer (e.g. ``InMemorySaver()``); ``None`` for none.
            Each new question on a thread is a fresh run.
        answer_graph: a compiled graph following the chain contract to use as the answer step
            instead of a plain model call (e.g. ``create_leco_graph(model)``). It gets
            ``{"question": <composed prompt>}`` (plus ``reference`` when given); its usage is
            added to this graph's, its other output keys land in ``answer_trace``.
        stream: which model calls reach ``stream_mode="messages"``: ``"final"`` (default: the
            answer call, token by token), ``"all"`` (the rewrite too) or ``"none"``.
        **overrides: :class:`S2AConfig` fields to override.

    Invoke with ``{"question": "<the user's full text>"}``.
    """
    cfg = S2AConfig.from_options(overrides, base=config)
    if answer_graph is not None and not (hasattr(answer_graph, "invoke") and hasattr(answer_graph, "ainvoke")):
        raise InvalidRequestError(
            "answer_graph", answer_graph, "pass a compiled graph (or Runnable) taking {'question': str}"
        )
    plain = answer_graph is None
    model_ = resolve_model(model)
    return build_loop_graph(
        name="s2a", state_schema=S2AState, input_schema=S2AInput, model=model_,
        start=start_input,
        make_loop=lambda s: s2a_loop(s["question"], cfg, answer=plain),
        host=lambda s: with_system(s.get("conversation") or (), ""), finish=_finish, reset=_OUTPUT_KEYS, checkpointer=checkpointer,
        models={RELEVANCE_TARGET: model_},
        after=None if plain else _answer_graph_node(answer_graph, cfg), stream=stream,
    )
