"""The critique-revise graph: draft -> critique -> (stop?) -> [review] -> revise -> critique ...

Nodes: ``draft`` (first draft or revision, one model call, then the pure draft stop rules),
``critique`` (the pluggable critic, then the pure critique stop rules), ``review`` (optional
human in the loop) and ``finish`` (attempt-1/attempt-2 summary). Every state value is
JSON-serialisable, so any checkpointer works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import Generation, GenerationRequest
from graphs.answers import extract_answer
from graphs.common import add_usage, emit, model_node, usage_of
from graphs.critique.config import CritiqueConfig
from graphs.critique.critics import make_critic
from graphs.critique.policy import (
    merge_turns,
    normalized_edit_distance,
    sequence_confidence,
    stop_after_critique,
    stop_after_draft,
)
from graphs.critique.prompts import draft_messages, revise_messages

__all__ = ["CritiqueState", "create_critique_graph"]

REVIEW_ACTIONS = ("approve", "edit", "reject")


class CritiqueState(TypedDict, total=False):
    """State of the critique-revise graph."""

    question: str
    reference: str | None
    turns: Annotated[list[dict[str, Any]], merge_turns]
    """One dict per draft: index, text, answer, confidence, edit_distance, draft_tokens,
    critique, approved, critique_score, critique_tokens (and review, when a person saw it)."""
    response: str
    answer: str | None
    usage: Annotated[dict[str, int], add_usage]
    stop_reason: str | None
    mode: str
    attempt1_response: str
    attempt1_answer: str | None
    attempt2_response: str
    attempt2_answer: str | None
    edit_distance: float | None
    """Normalised word edit distance between the first and the final draft."""


def _tokens(usage: Mapping[str, int] | None) -> int:
    u = usage or {}
    return int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0))


def create_critique_graph(
    model: Any,
    config: CritiqueConfig | None = None,
    *,
    critic: Any = None,
    checkpointer: Any = None,
    **overrides: Any,
):
    """Build the critique-revise graph (Self-Refine, RCI or SCoRe two-attempt).

    Args:
        model: the drafting model (anything :func:`adapters.specs.resolve_model` accepts).
        config: a :class:`CritiqueConfig`; ``overrides`` replace its fields.
        critic: ``None`` (the same model critiques), another model spec / ``LogprobModel``, a
            :class:`~graphs.judge.Judge`, or a verifier ``f(question, response, reference)``
            returning ``bool`` or ``(bool, message)`` (e.g. :func:`answer_match_verifier`).
        checkpointer: a LangGraph checkpointer (required with ``interrupt_before_revise``).

    Input ``{"question": str, "reference"?: str}``; output adds ``answer``, ``response``,
    ``turns``, ``usage``, ``stop_reason`` and the attempt-1/attempt-2 keys. Streams custom
    events ``critique.draft``, ``critique.critique`` and ``critique.stop``.
    """
    cfg = config or CritiqueConfig()
    unknown = sorted(set(overrides) - {f.name for f in fields(CritiqueConfig)})
    if unknown:
        raise InvalidRequestError("overrides", unknown, "pass CritiqueConfig fields, e.g. mode='score'")
    if overrides:
        cfg = replace(cfg, **overrides)
    if cfg.interrupt_before_revise and checkpointer is None:
        raise InvalidRequestError(
            "checkpointer", None, "interrupt_before_revise=True needs a checkpointer, e.g. InMemorySaver()"
        )
    llm = resolve_model(model)
    critic_impl = make_critic(critic, llm, cfg)

    def prepare_draft(state: CritiqueState) -> GenerationRequest:
        question = state.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequestError("question", question, "invoke with {'question': 'your question'}")
        turns = state.get("turns") or []
        msgs = (
            revise_messages(cfg.mode, question, turns, cfg.system_prompt)
            if turns
            else draft_messages(question, cfg.system_prompt)
        )
        seed = None if cfg.seed is None else cfg.seed + len(turns)
        return llm.request(msgs, max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=seed)

    def apply_draft(state: CritiqueState, gen: Generation) -> dict[str, Any]:
        turns = state.get("turns") or []
        text = gen.text.strip()
        distance = normalized_edit_distance(turns[-1]["text"], text) if turns else None
        usage = usage_of(gen)
        confidence = sequence_confidence(gen.tokens)
        turn = {
            "index": len(turns),
            "text": text,
            "answer": extract_answer(text),
            "confidence": confidence,
            "edit_distance": distance,
            "finish_reason": gen.finish_reason,
            "draft_tokens": _tokens(usage),
            "critique": None,
            "approved": None,
            "critique_score": None,
            "critique_tokens": 0,
        }
        stop = stop_after_draft(
            turns=len(turns) + 1,
            max_turns=cfg.turn_limit,
            distance=distance,
            collapse_threshold=cfg.collapse_threshold,
            confidence=confidence,
            confidence_threshold=cfg.confidence_threshold,
            tokens_used=_tokens(state.get("usage")) + _tokens(usage),
            token_budget=cfg.token_budget,
        )
        emit("critique.draft", index=turn["index"], text=text, answer=turn["answer"],
             confidence=confidence, edit_distance=distance, stop_reason=stop)
        return {"turns": [turn], "response": text, "answer": turn["answer"], "usage": usage,
                "stop_reason": stop, "mode": cfg.mode}

    def prepare_critique(state: CritiqueState) -> Any:
        return critic_impl.prepare(state["question"], state["turns"][-1]["text"], state.get("reference"))

    def apply_critique(state: CritiqueState, result: Any) -> dict[str, Any]:
        last = state["turns"][-1]
        c = critic_impl.read(state["question"], last["text"], state.get("reference"), result)
        usage = usage_of(result) if result is not None else {}
        stop = stop_after_critique(
            approved=c.approved,
            tokens_used=_tokens(state.get("usage")) + _tokens(usage),
            token_budget=cfg.token_budget,
        )
        emit("critique.critique", index=last["index"], critique=c.text, approved=c.approved,
             score=c.score, stop_reason=stop)
        update = {"index": last["index"], "critique": c.text, "approved": c.approved,
                  "critique_score": c.score, "critique_tokens": _tokens(usage)}
        return {"turns": [update], "usage": usage, "stop_reason": stop}

    def review(state: CritiqueState) -> dict[str, Any]:
        last = state["turns"][-1]
        decision = interrupt(
            {"question": state["question"], "index": last["index"], "draft": last["text"],
             "critique": last["critique"], "actions": list(REVIEW_ACTIONS)}
        )
        action = decision.get("action") if isinstance(decision, Mapping) else decision
        if action not in REVIEW_ACTIONS:
            raise InvalidRequestError(
                "resume.action", action, f"resume with Command(resume={{'action': one of {list(REVIEW_ACTIONS)}}})"
            )
        update: dict[str, Any] = {"index": last["index"], "review": action}
        if action == "edit":
            text = decision.get("critique")
            if not isinstance(text, str) or not text.strip():
                raise InvalidRequestError(
                    "resume.critique", text, "an edit needs the new critique: {'action': 'edit', 'critique': '...'}"
                )
            update["critique"] = text
        return {"turns": [update], "stop_reason": "rejected" if action == "reject" else None}

    def finish(state: CritiqueState) -> dict[str, Any]:
        turns = state["turns"]
        first, final = turns[0], turns[-1]
        emit("critique.stop", stop_reason=state.get("stop_reason"), turns=len(turns), answer=final["answer"])
        return {
            "attempt1_response": first["text"],
            "attempt1_answer": first["answer"],
            "attempt2_response": final["text"],
            "attempt2_answer": final["answer"],
            "edit_distance": normalized_edit_distance(first["text"], final["text"]),
        }

    def after(next_node: str):
        return lambda state: "finish" if state.get("stop_reason") else next_node

    revise_via = "review" if cfg.interrupt_before_revise else "draft"
    g = StateGraph(CritiqueState)
    g.add_node("draft", model_node(llm, prepare_draft, apply_draft, name="draft"))
    g.add_node(
        "critique",
        model_node(critic_impl.model or llm, prepare_critique, apply_critique, name="critique"),
    )
    g.add_node("finish", finish)
    g.add_edge(START, "draft")
    g.add_conditional_edges("draft", after("critique"), ["critique", "finish"])
    g.add_conditional_edges("critique", after(revise_via), [revise_via, "finish"])
    if cfg.interrupt_before_revise:
        g.add_node("review", review)
        g.add_conditional_edges("review", after("draft"), ["draft", "finish"])
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer, name=f"critique-{cfg.mode}")
