"""System 2 Attention as a LangGraph state machine: rewrite -> parse -> answer.

``rewrite`` asks the model to regenerate the user's text without the parts that should not
steer the answer (an opinion, an irrelevant sentence); ``parse`` reads the labelled sections
(pure, with an explicit recorded fallback) and composes the answer prompt; ``answer`` is a plain
model call or any compiled graph that follows the chain contract (``{"question"}`` in;
``answer``/``response``/``usage`` out), e.g. the LECO graph.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import Generation, GenerationRequest
from graphs.answers import extract_answer
from graphs.common import add_usage, emit, model_node, usage_of
from graphs.s2a.config import S2AConfig
from graphs.s2a.parse import parse_rewrite, removed_sentences
from graphs.s2a.prompts import build_answer_prompt

__all__ = ["S2AInput", "S2AState", "create_s2a_graph"]

_CONTRACT_KEYS = {"question", "reference", "answer", "response", "usage"}


class S2AInput(TypedDict, total=False):
    """What the graph takes: the user's full text, and optionally a gold answer."""

    question: str
    reference: str


class S2AState(TypedDict, total=False):
    """The S2A trace; every value is JSON-serialisable."""

    question: str  # the original user input, unchanged
    reference: str  # optional gold answer (passed on to an answer subgraph)
    rewrite: str  # the raw rewrite text
    rewrite_finish_reason: str  # "stop" or "length"
    context: str  # the parsed context (single variant: the whole rewritten text)
    query: str  # the parsed question
    parse_status: str  # "ok" | "fallback_..."
    parse_reason: str  # why, in words
    removed: list[str]  # sentences of the original the rewrite dropped
    answer_prompt: str  # what the answer step was given
    answer: str | None
    response: str
    answer_trace: dict[str, Any]  # the answer subgraph's own trace keys
    stop_reason: str  # "done" | "token_budget"
    usage: Annotated[dict[str, int], add_usage]


def _budget_left(state: S2AState, cfg: S2AConfig) -> int | None:
    if cfg.token_budget is None:
        return None
    return cfg.token_budget - int((state.get("usage") or {}).get("completion_tokens", 0))


def _rewrite_node(model: Any, cfg: S2AConfig) -> RunnableLambda:
    def prepare(state: S2AState) -> GenerationRequest:
        question = state.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequestError("question", question, 'invoke with {"question": "<the user\'s text>"}')
        max_tokens = cfg.rewrite_max_tokens
        if cfg.token_budget is not None:
            max_tokens = min(max_tokens, cfg.token_budget)
        return GenerationRequest.build(
            cfg.prompt.render(question), max_tokens=max_tokens, temperature=cfg.temperature
        )

    def apply(state: S2AState, gen: Generation) -> dict[str, Any]:
        emit("s2a_rewrite", text=gen.text, finish_reason=gen.finish_reason)
        return {"rewrite": gen.text, "rewrite_finish_reason": gen.finish_reason, "usage": usage_of(gen)}

    return model_node(model, prepare, apply, name="rewrite")


def _parse_node(cfg: S2AConfig, *, for_subgraph: bool) -> Any:
    prompt = cfg.prompt

    def parse(state: S2AState) -> dict[str, Any]:
        original = state["question"]
        parsed = parse_rewrite(
            state.get("rewrite", ""),
            original,
            context_label=prompt.context_label,
            question_label=prompt.question_label,
        )
        seen = "\n".join(p for p in (parsed.context, parsed.query) if p)
        removed = removed_sentences(original, seen, min_overlap=cfg.min_kept_overlap)
        answer_prompt = build_answer_prompt(
            context=parsed.context,
            query=parsed.query,
            original=original if cfg.variant == "keep_original" else None,
            instruction=cfg.instruction,
            answer_format="" if for_subgraph else cfg.answer_format,
        )
        emit(
            "s2a_parse",
            status=parsed.status,
            reason=parsed.reason,
            context=parsed.context,
            query=parsed.query,
            removed=removed,
        )
        return {
            "context": parsed.context,
            "query": parsed.query,
            "parse_status": parsed.status,
            "parse_reason": parsed.reason,
            "removed": removed,
            "answer_prompt": answer_prompt,
        }

    return parse


def _skipped() -> dict[str, Any]:
    emit("s2a_answer", source="skipped", answer=None, response="")
    return {"answer": None, "response": "", "stop_reason": "token_budget"}


def _model_answer_node(model: Any, cfg: S2AConfig) -> RunnableLambda:
    def prepare(state: S2AState) -> GenerationRequest | None:
        left = _budget_left(state, cfg)
        if left is not None and left <= 0:
            return None
        max_tokens = cfg.answer_max_tokens if left is None else min(cfg.answer_max_tokens, left)
        return GenerationRequest.build(
            state["answer_prompt"], max_tokens=max_tokens, temperature=cfg.temperature
        )

    def apply(state: S2AState, gen: Generation | None) -> dict[str, Any]:
        if gen is None:
            return _skipped()
        answer = extract_answer(gen.text)
        emit("s2a_answer", source="model", answer=answer, response=gen.text)
        return {"answer": answer, "response": gen.text, "stop_reason": "done", "usage": usage_of(gen)}

    return model_node(model, prepare, apply, name="answer")


def _graph_answer_node(graph: Runnable, cfg: S2AConfig) -> RunnableLambda:
    """Run a contract-following graph on the composed prompt; merge its usage and trace."""

    def prepare(state: S2AState) -> dict[str, Any] | None:
        left = _budget_left(state, cfg)
        if left is not None and left <= 0:
            return None
        sub: dict[str, Any] = {"question": state["answer_prompt"]}
        if "reference" in state:
            sub["reference"] = state["reference"]
        return sub

    def apply(out: dict[str, Any]) -> dict[str, Any]:
        response = out.get("response") or ""
        answer = out.get("answer", extract_answer(response))
        trace = {k: v for k, v in out.items() if k not in _CONTRACT_KEYS}
        emit("s2a_answer", source="graph", answer=answer, response=response)
        return {
            "answer": answer,
            "response": response,
            "answer_trace": trace,
            "stop_reason": "done",
            "usage": dict(out.get("usage") or {}),
        }

    def run(state: S2AState, config: RunnableConfig) -> dict[str, Any]:
        sub = prepare(state)
        return _skipped() if sub is None else apply(graph.invoke(sub, config))

    async def arun(state: S2AState, config: RunnableConfig) -> dict[str, Any]:
        sub = prepare(state)
        return _skipped() if sub is None else apply(await graph.ainvoke(sub, config))

    return RunnableLambda(run, afunc=arun, name="answer")


def create_s2a_graph(
    model: Any,
    config: S2AConfig | None = None,
    *,
    checkpointer: Any = None,
    answer_graph: Runnable | None = None,
    **overrides: Any,
) -> CompiledStateGraph:
    """Build the S2A graph: rewrite -> parse -> answer.

    Args:
        model: anything :func:`adapters.specs.resolve_model` accepts; makes the rewrite (and the
            plain answer call).
        config: an :class:`S2AConfig` (default: opinion removal, split variant).
        checkpointer: a LangGraph checkpointer (e.g. ``InMemorySaver()``); ``None`` for none.
        answer_graph: a compiled graph following the chain contract to use as the answer step
            instead of a plain model call (e.g. ``create_leco_graph(model)``). It gets
            ``{"question": <composed prompt>}`` (plus ``reference`` when given); its usage is
            added to this graph's, its other output keys land in ``answer_trace``.
        **overrides: :class:`S2AConfig` fields to override.

    Invoke with ``{"question": "<the user's full text>"}``.
    """
    cfg = (config or S2AConfig()).with_overrides(**overrides)
    llm = resolve_model(model)
    if answer_graph is not None and not (hasattr(answer_graph, "invoke") and hasattr(answer_graph, "ainvoke")):
        raise InvalidRequestError(
            "answer_graph", answer_graph, "pass a compiled graph (or Runnable) taking {'question': str}"
        )
    builder = StateGraph(S2AState, input_schema=S2AInput)
    builder.add_node("rewrite", _rewrite_node(llm, cfg))
    builder.add_node("parse", _parse_node(cfg, for_subgraph=answer_graph is not None))
    if answer_graph is None:
        builder.add_node("answer", _model_answer_node(llm, cfg))
    else:
        builder.add_node("answer", _graph_answer_node(answer_graph, cfg))
    builder.add_edge(START, "rewrite")
    builder.add_edge("rewrite", "parse")
    builder.add_edge("parse", "answer")
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer, name="s2a")
