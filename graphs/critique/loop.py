"""The critique-revise loop, written once: draft -> critique -> stop? -> [review] -> revise -> ...

:func:`critique_loop` is a sans-I/O generator (see :mod:`graphs.loop`): it yields
:class:`~graphs.loop.ModelCall` (the draft and revisions go to ``target="model"``, appended to
the host conversation; model critiques to ``target="critic"``), :class:`~graphs.loop.Emit`
(``critique.draft``, ``critique.gate``, ``critique.critique``, ``critique.review``,
``critique.revise``, ``critique.replace``, ``critique.confirm``, ``critique.done``) and :class:`~graphs.loop.Review` (a person approves, edits or rejects the
critique before a revision). It returns a :class:`CritiqueResult`. The LangGraph graph
(:mod:`graphs.critique.graph`) and ``CritiqueReviseMiddleware`` are thin drivers of it, so a
scripted model gives the same drafts, critiques, stop reasons and costs through either.

Bounds: at most ``1 + MAX_REVISIONS`` drafts per run whatever the arguments (the allowance is
cut to :data:`~graphs.critique.config.MAX_REVISIONS`); ``max_completion_tokens`` counts what
every call of the run generated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from adapters.errors import InvalidRequestError
from adapters.types import Generation
from graphs.answers import extract_answer
from graphs.critique.config import MAX_REVISIONS, CritiqueConfig
from graphs.critique.critics import Critic, Critique
from graphs.critique.policy import (
    confirmed_final,
    echo_reason,
    edit_distance,
    gate_revises,
    parse_review,
    replacement_stands,
    sequence_confidence,
    stop_after_critique,
    stop_after_draft,
)
from graphs.critique.prompts import (
    ANSWER_INSTRUCTION,
    RCI_IMPROVE,
    RCI_REVIEW,
    SCORE_INSTRUCTION,
    revise_extra,
)
from graphs.loop import TOOL_CALLS, Emit, Loop, ModelCall, Review
from graphs.vocab import (
    AGREEMENT,
    ECHO,
    MAX_CORRECTIONS,
    MAX_TURNS,
    REJECTED,
    REPLACED,
    TOOL_CALL,
    Allowance,
    Cost,
    StopReason,
    Turn,
    add_cost,
    cost_of,
    zero_cost,
)

__all__ = ["CritiqueResult", "critique_loop", "review_request"]


class CritiqueResult(TypedDict):
    """What one run of the loop produced (the graph's output keys; the middleware's trace)."""

    mode: str
    turns: list[Turn]
    """Every draft, in order; a revision rejected as an echo is kept with its ``echo`` reason."""
    final: int
    """Index in ``turns`` of the answer (the last draft that is not an echo)."""
    response: str
    answer: str | None
    stop_reason: StopReason
    usage: Cost
    """Every call of the run: drafts, critiques, revisions."""
    attempt1_response: str
    attempt1_answer: str | None
    attempt2_response: str
    """The final response (SCoRe's attempt 2 when the run revised once)."""
    attempt2_answer: str | None
    edit_distance: float
    """:func:`graphs.text.edit_distance` between the first and the final response."""
    gate: dict[str, Any] | None
    """The disagreement gate's check of the first draft (``None``: no gate ran):
    ``{"draft_answer", "sample_answer", "revise", "sample", "confirmed"}`` (``sample``: the second
    solution's text; ``confirmed``: whether the revision stood, see ``gate_confirm``; ``None``
    when no revision was made)."""


def _turn(index: int, gen: Generation, previous: Turn | None) -> Turn:
    text = gen.text.strip()
    return {
        "index": index,
        "text": text,
        "answer": extract_answer(text),
        "confidence": sequence_confidence(gen.tokens),
        "edit_distance": None if previous is None else edit_distance(previous["text"], text),
        "finish_reason": gen.finish_reason,
        "critique": None,
        "approved": None,
        "critique_score": None,
        "usage": cost_of(gen),
    }


class _Run:
    """The mutable record of one run (the generator's locals, kept small and testable)."""

    def __init__(self, cfg: CritiqueConfig, allowance: Allowance | None) -> None:
        self.cfg = cfg
        self.turns: list[Turn] = []
        self.final = 0
        self.usage: Cost = zero_cost()
        allowed = None if allowance is None else allowance.get("corrections")
        revisions = min(cfg.revisions, MAX_REVISIONS if allowed is None else max(0, allowed), MAX_REVISIONS)
        self.turn_limit = 1 + revisions
        self.limit_reason: StopReason = MAX_CORRECTIONS if allowed is not None and allowed <= cfg.revisions else MAX_TURNS
        tokens = None if allowance is None else allowance.get("completion_tokens")
        budgets = [b for b in (cfg.max_completion_tokens, tokens) if b is not None]
        self.max_completion_tokens = min(budgets) if budgets else None
        self.gate: dict[str, Any] | None = None

    def spend(self, reply: Any) -> Cost:
        cost = cost_of(reply) if reply is not None else zero_cost()
        self.usage = add_cost(self.usage, cost)
        return cost

    def add_draft(self, gen: Generation) -> StopReason | None:
        """Record a draft and apply the draft stop rules."""
        turn = _turn(len(self.turns), gen, self.turns[self.final] if self.turns else None)
        self.turns.append(turn)
        self.final = turn["index"]
        return stop_after_draft(
            turns=len(self.turns), turn_limit=self.turn_limit, limit_reason=self.limit_reason,
            distance=turn["edit_distance"], collapse_threshold=self.cfg.collapse_threshold,
            confidence=turn["confidence"], confidence_threshold=self.cfg.confidence_threshold,
            completion_tokens=self.usage["completion_tokens"], max_completion_tokens=self.max_completion_tokens,
        )

    def add_critique(self, c: Critique, cost: Cost) -> StopReason | None:
        last = self.turns[self.final]
        last.update(critique=c.text, approved=c.approved, critique_score=c.score)
        last["usage"] = add_cost(last["usage"], cost)
        return stop_after_critique(
            approved=c.approved, completion_tokens=self.usage["completion_tokens"],
            max_completion_tokens=self.max_completion_tokens,
        )

    def result(self, stop: StopReason) -> CritiqueResult:
        first, final = self.turns[0], self.turns[self.final]
        return {
            "mode": self.cfg.mode, "turns": self.turns, "final": self.final,
            "response": final["text"], "answer": final["answer"], "stop_reason": stop,
            "usage": self.usage,
            "attempt1_response": first["text"], "attempt1_answer": first["answer"],
            "attempt2_response": final["text"], "attempt2_answer": final["answer"],
            "edit_distance": edit_distance(first["text"], final["text"]), "gate": self.gate,
        }


def review_request(question: str, turn: Mapping[str, Any]) -> dict[str, Any]:
    """The pause payload before a revision: LangChain's HITL request shape
    (``action_requests`` / ``review_configs``) plus the plain ``draft`` and ``critique``."""
    return {
        "action_requests": [{
            "name": "critique.revise",
            "args": {"draft": turn["text"], "critique": turn["critique"]},
            "description": "Revise the draft with this critique? approve, edit the critique, or reject (keep the draft).",
        }],
        "review_configs": [{"action_name": "critique.revise", "allowed_decisions": ["approve", "edit", "reject"]}],
        "question": question, "index": turn["index"], "draft": turn["text"], "critique": turn["critique"],
    }


def _echo_prompts(cfg: CritiqueConfig) -> tuple[str, ...]:
    return (cfg.feedback_prompt, cfg.refine_prompt, RCI_REVIEW, RCI_IMPROVE, SCORE_INSTRUCTION, ANSWER_INSTRUCTION)


def _critique(run: _Run, critic: Critic, question: str, reference: str | None) -> Loop[StopReason | None]:
    draft = run.turns[run.final]
    call = critic.ask(question, draft["text"], reference)
    reply = (yield call) if call is not None else None
    cost = run.spend(reply)
    c = critic.read(question, draft["text"], reference, reply)
    stop = run.add_critique(c, cost)
    yield Emit("critique.critique", {"index": draft["index"], "critique": c.text, "approved": c.approved,
                                     "score": c.score, "stop_reason": stop})
    if stop is None and c.approved is False and c.replacement is not None:
        if c.vote:
            stop = yield from _vote(run, extract_answer(c.replacement))
        if stop is None:
            stop = yield from _replace(run, c.replacement)
    return stop


def _vote(run: _Run, replacement_answer: str | None) -> Loop[StopReason | None]:
    """``resolve="vote"``: the gate's sample (drawn now unless the gate already ran) breaks the
    tie between the draft and the critic's replacement (:func:`replacement_stands`); a sample
    that sides with the draft keeps it (``"agreement"``)."""
    if run.gate is None:
        yield from _gate(run)
    assert run.gate is not None
    draft = run.turns[run.final]
    stands = replacement_stands(draft["answer"], replacement_answer, run.gate["sample_answer"])
    run.gate["confirmed"] = stands
    yield Emit("critique.confirm", {"index": len(run.turns) if stands else draft["index"], "revision": len(run.turns),
                                    "confirmed": stands, "sample_answer": run.gate["sample_answer"]})
    return None if stands else AGREEMENT


def _replace(run: _Run, text: str) -> Loop[StopReason]:
    """The critic's own corrected response becomes the next draft (no model call) and ends the run."""
    turn = _turn(len(run.turns), Generation(text=text, tokens=None, finish_reason="stop"), run.turns[run.final])
    turn["replaced"] = True
    turn["usage"] = zero_cost()
    run.turns.append(turn)
    run.final = turn["index"]
    yield Emit("critique.replace", {"index": turn["index"], "text": turn["text"], "answer": turn["answer"],
                                    "stop_reason": REPLACED})
    return REPLACED


MAX_BAD_DECISIONS = 5
"""A malformed review decision is never read as approval: the pause is asked again with an
``error`` key, at most this many times; then :class:`InvalidRequestError` is raised."""


def _decide(question: str, turn: Mapping[str, Any]) -> Loop[dict[str, Any]]:
    payload = review_request(question, turn)
    for _ in range(MAX_BAD_DECISIONS):
        value = yield Review(payload)
        try:
            return parse_review(value)
        except InvalidRequestError as err:
            payload = {**review_request(question, turn), "error": str(err)}
    return parse_review((yield Review(payload)))  # the last chance raises


def _review(run: _Run, question: str) -> Loop[StopReason | None]:
    turn = run.turns[run.final]
    decision = yield from _decide(question, turn)
    turn["review"] = decision["type"]
    if decision["type"] == "edit":
        turn["critique"] = decision["critique"]
    yield Emit("critique.review", {"index": turn["index"], "decision": decision["type"],
                                   "critique": turn["critique"]})
    return REJECTED if decision["type"] == "reject" else None


def _gate(run: _Run) -> Loop[StopReason | None]:
    """The disagreement gate: one more sampled solution (from the critic's model) decides
    whether the draft is in doubt; agreement keeps it (see :func:`gate_revises`)."""
    cfg, draft = run.cfg, run.turns[run.final]
    reply = yield ModelCall("gate", target="critic", max_tokens=cfg.max_tokens, temperature=cfg.gate_temperature,
                            seed=None if cfg.seed is None else cfg.seed + MAX_REVISIONS + 1, sampled=True)
    run.spend(reply)
    text = "" if reply.finish_reason == TOOL_CALLS else reply.text.strip()
    sample = extract_answer(text) if text else None
    revise = gate_revises(draft["answer"], sample)
    run.gate = {"draft_answer": draft["answer"], "sample_answer": sample, "revise": revise, "sample": text,
                "confirmed": None}
    stop: StopReason | None = None if revise else AGREEMENT
    yield Emit("critique.gate", {"index": draft["index"], "draft_answer": draft["answer"], "sample_answer": sample,
                                 "revise": revise, "stop_reason": stop})
    return stop


def _confirm(run: _Run) -> Loop[None]:
    """After a gated run revised: keep a revision only if the gate's sample confirms its answer
    (:func:`confirmed_final`); otherwise the first draft is the answer again."""
    assert run.gate is not None
    revision = run.final
    run.final = confirmed_final([t["answer"] for t in run.turns], run.gate["sample_answer"], revision)
    run.gate["confirmed"] = run.final == revision
    yield Emit("critique.confirm", {"index": run.final, "revision": revision, "confirmed": run.gate["confirmed"],
                                    "sample_answer": run.gate["sample_answer"]})


def _revise(run: _Run) -> Loop[StopReason | None]:
    cfg = run.cfg
    reply = yield ModelCall(
        "revise", extra=revise_extra(cfg.mode, run.turns[: run.final + 1], cfg.refine_prompt),
        max_tokens=cfg.max_tokens, temperature=cfg.temperature,
        seed=None if cfg.seed is None else cfg.seed + len(run.turns), final=True,
    )
    run.spend(reply)
    if reply.finish_reason == TOOL_CALLS:
        return TOOL_CALL
    previous = run.turns[run.final]
    echo = echo_reason(reply.text, _echo_prompts(cfg), previous["critique"])
    if echo is not None:  # not an answer: keep the previous draft, record what came back
        turn = _turn(len(run.turns), reply, previous)
        turn["echo"] = echo
        run.turns.append(turn)
        stop: StopReason | None = ECHO
    else:
        stop = run.add_draft(reply)
    t = run.turns[-1]
    yield Emit("critique.revise", {"index": t["index"], "text": t["text"], "answer": t["answer"],
                                   "edit_distance": t["edit_distance"], "echo": echo, "stop_reason": stop})
    return stop


def critique_loop(
    question: str,
    config: CritiqueConfig,
    critic: Critic,
    *,
    reference: str | None = None,
    allowance: Allowance | None = None,
    review: bool | None = None,
    gate: bool = False,
) -> Loop[CritiqueResult | None]:
    """Run critique-revise once (see the module docstring). ``allowance``: what the caller still
    allows (the middleware's per-request budget); ``review``: pause before each revision
    (default: ``config.interrupt_before_revise``); ``gate``: run the disagreement gate on the
    first draft (drivers pass :func:`graphs.critique.critics.uses_gate`). Returns ``None`` when the first draft is a
    tool call (nothing to critique: the driver hands it to the agent)."""
    run = _Run(config, allowance)
    review = config.interrupt_before_revise if review is None else review
    gen = yield ModelCall("draft", max_tokens=config.max_tokens, temperature=config.temperature,
                          seed=config.seed, final=True)
    run.spend(gen)
    if gen.finish_reason == TOOL_CALLS:
        return None
    stop = run.add_draft(gen)
    t = run.turns[0]
    yield Emit("critique.draft", {"index": 0, "text": t["text"], "answer": t["answer"],
                                  "confidence": t["confidence"], "stop_reason": stop})
    if stop is None and gate:
        stop = yield from _gate(run)
    while stop is None:
        stop = yield from _critique(run, critic, question, reference)
        if stop is None and review:
            stop = yield from _review(run, question)
        if stop is None:
            stop = yield from _revise(run)
    if run.gate is not None and run.gate["confirmed"] is None and config.gate_confirm and run.final > 0 \
            and stop != TOOL_CALL:
        yield from _confirm(run)
    result = run.result(stop)
    yield Emit("critique.done", {"stop_reason": stop, "turns": len(run.turns), "answer": result["answer"],
                                 "usage": dict(run.usage)})
    return result
