"""One vocabulary for every correction method: stop reasons, event names, budgets, records.

Every method (LECO, S2A, critique-revise) and every driver of it (the LangGraph graph, the
``create_agent`` middleware, the LCEL Runnables) uses these names with these meanings.

- **Stop reasons** (:data:`StopReason`): why a loop ended; one constant per reason, the same
  string in every method. A reason a method cannot produce is simply never produced by it.
- **Event names**: ``<method>.<event>`` (:func:`event_name`), sent as custom stream events
  (``stream_mode="custom"``) with a ``{"event": name, **payload}`` dict.
- **Budgets** are named by what they count: ``max_completion_tokens`` counts generated tokens
  only (never prompt tokens), in every method; ``max_corrections`` counts corrections (LECO
  rethinks, critique revisions) per request; ``max_rethinks`` counts LECO regenerations per run.
- **Records** (:class:`Cost`, :class:`Attempt`, :class:`Cut`, :class:`StepScore`,
  :class:`Turn`, :class:`RewriteRecord`) are TypedDicts: JSON-serialisable, so any LangGraph
  checkpointer stores them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypedDict

__all__ = [
    "AGREEMENT",
    "COST_KEYS",
    "APPROVED",
    "COLLAPSE",
    "CONFIDENT",
    "DONE",
    "ECHO",
    "EVENTS",
    "MAX_COMPLETION_TOKENS",
    "MAX_CORRECTIONS",
    "MAX_RETHINKS",
    "MAX_TURNS",
    "METHODS",
    "NO_CANDIDATE_STEP",
    "NO_LOGPROBS",
    "REJECTED",
    "REPLACED",
    "STOP_REASONS",
    "TOOL_CALL",
    "Allowance",
    "Attempt",
    "Cost",
    "Cut",
    "RewriteRecord",
    "StepScore",
    "StopReason",
    "Turn",
    "add_cost",
    "cost_of",
    "event_name",
    "zero_cost",
]

# -- stop reasons -------------------------------------------------------------------------------
StopReason = Literal[
    "agreement",
    "max_rethinks",
    "max_corrections",
    "max_turns",
    "max_completion_tokens",
    "no_candidate_step",
    "no_logprobs",
    "tool_call",
    "approved",
    "rejected",
    "collapse",
    "confident",
    "echo",
    "replaced",
    "done",
]
AGREEMENT: StopReason = "agreement"
"""LECO: two consecutive attempts gave the same answer. Critique: the disagreement gate's second
sample agreed with the draft (or gave no answer), so the draft is kept; with the program critic's
``resolve="vote"``, the sample sided with the draft against the program."""
MAX_RETHINKS: StopReason = "max_rethinks"
"""LECO: ``max_rethinks`` regenerations ran in this run."""
MAX_CORRECTIONS: StopReason = "max_corrections"
"""The request's ``max_corrections`` (rethinks, revisions) is spent (middleware budgets)."""
MAX_TURNS: StopReason = "max_turns"
"""Critique: the most drafts a run may make were made."""
MAX_COMPLETION_TOKENS: StopReason = "max_completion_tokens"
"""The ``max_completion_tokens`` budget (generated tokens only) is spent."""
NO_CANDIDATE_STEP: StopReason = "no_candidate_step"
"""LECO: no step of the latest attempt may be cut (all blank, skipped or inside the prefix)."""
NO_LOGPROBS: StopReason = "no_logprobs"
"""A reply came back without the token logprobs the method needs."""
TOOL_CALL: StopReason = "tool_call"
"""Middleware: the model answered a correction call with a tool call; the agent runs it."""
APPROVED: StopReason = "approved"
"""Critique: the critic (or a person) approved the draft."""
REJECTED: StopReason = "rejected"
"""Critique: a person rejected the draft in review."""
COLLAPSE: StopReason = "collapse"
"""Critique: a revision barely changed the draft (edit distance under the threshold)."""
CONFIDENT: StopReason = "confident"
"""Critique: the draft's token confidence is over the threshold."""
ECHO: StopReason = "echo"
"""Critique: a revision echoed the prompt or the critique instead of answering."""
REPLACED: StopReason = "replaced"
"""Critique: the critic supplied the corrected answer itself (the program critic's printed
result, ``resolve="program"``); no revision call was made."""
DONE: StopReason = "done"
"""A single-pass method (S2A) ran to the end."""

STOP_REASONS: tuple[str, ...] = StopReason.__args__  # type: ignore[attr-defined]
"""Every stop reason, in one tuple."""

# -- event names --------------------------------------------------------------------------------
METHODS: tuple[str, ...] = ("leco", "s2a", "critique", "sc")

EVENTS: dict[str, tuple[str, ...]] = {
    "leco": ("draft", "cut", "rethink", "done", "passthrough"),
    "s2a": ("rewrite", "skipped", "answer", "done", "filter"),
    "critique": ("draft", "gate", "critique", "review", "revise", "replace", "confirm", "done"),
    "sc": ("samples", "done"),
}
"""The custom events each method sends (as ``<method>.<event>``)."""


def event_name(method: str, event: str) -> str:
    """``"<method>.<event>"``; raises ``ValueError`` for a name not in :data:`EVENTS`."""
    if event not in EVENTS.get(method, ()):
        raise ValueError(f"unknown event {method}.{event}; add it to graphs.vocab.EVENTS")
    return f"{method}.{event}"


# -- records ------------------------------------------------------------------------------------
class Cost(TypedDict):
    """What some model calls spent (the same keys in every trace)."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


COST_KEYS: tuple[str, ...] = ("calls", "prompt_tokens", "completion_tokens", "cached_tokens")


def zero_cost() -> Cost:
    """A cost record of nothing spent."""
    return {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}


def add_cost(left: Mapping[str, int] | None, right: Mapping[str, int] | None) -> Cost:
    """The sum of two cost records (either may be ``None`` or partial)."""
    a, b = left or {}, right or {}
    return {k: int(a.get(k, 0)) + int(b.get(k, 0)) for k in COST_KEYS}  # type: ignore[return-value]


def cost_of(generations: Any) -> Cost:
    """The cost of one ``adapters.types.Generation`` or an iterable of them."""
    gens: Iterable[Any] = generations if isinstance(generations, (list, tuple)) else [generations]
    calls = prompt = completion = cached = 0
    for g in gens:
        u = g.usage
        calls, prompt = calls + 1, prompt + int(u.prompt_tokens)
        completion, cached = completion + int(u.completion_tokens), cached + int(u.cached_tokens)
    return {"calls": calls, "prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached}


class Allowance(TypedDict):
    """What the caller still allows a run to spend (``None``: no limit from the caller).

    The middleware passes what is left of the request's budget; a graph passes its config's."""

    corrections: int | None
    completion_tokens: int | None


class StepScore(TypedDict):
    """One scored step of a LECO attempt (see :func:`graphs.leco.policy.score_steps`)."""

    index: int
    start: int
    end: int
    text: str
    n_tokens: int
    tokens: list[list[Any]]
    avg: float | None
    trans: float | None
    div: float | None
    score: float | None
    candidate: bool


class Attempt(TypedDict):
    """One LECO attempt: a full solution and what it cost."""

    index: int
    path: str
    """``"initial"``, ``"prefill"`` or ``"chat"``: how the attempt was generated."""
    prefix: str
    """The text kept from the previous attempt (``""`` for the first)."""
    seed: str
    """A ``Step N:`` label the chat path added before the continuation (or ``""``)."""
    text: str
    """What the model generated in this attempt."""
    response: str
    """The whole solution: ``prefix + seed + text``."""
    answer: str | None
    finish_reason: str
    steps: list[StepScore]
    usage: Cost
    cut: int | None
    """Index (into the run's cuts) of the cut this attempt continues; ``None`` for the first.
    With ``rethink_samples > 1`` several attempts continue the same cut."""


class Cut(TypedDict):
    """A LECO decision to rethink: where attempt ``attempt`` is cut."""

    attempt: int
    step: int
    offset: int
    step_text: str
    score: float | None
    lowest: list[int]
    lowest_scores: list[float | None]
    prefix: str


class Turn(TypedDict, total=False):
    """One critique-revise draft and what the critic said of it."""

    index: int
    text: str
    answer: str | None
    confidence: float | None
    edit_distance: float | None
    """:func:`graphs.text.edit_distance` from the previous draft (``None`` for the first)."""
    finish_reason: str
    critique: str | None
    approved: bool | None
    critique_score: float | None
    review: str
    echo: str
    """Why a revision was rejected as an echo of the prompt or the critique (else absent)."""
    replaced: bool
    """``True`` for the critic's own corrected response (stop reason ``"replaced"``; no model
    call made it, so its ``usage`` is zero); else absent."""
    usage: Cost


class RewriteRecord(TypedDict):
    """One S2A rewrite: the input, the model's rewrite, how it was read, what the model sees."""

    original: str
    raw: str
    """The rewrite call's raw text."""
    finish_reason: str
    context: str
    query: str
    status: str
    """``"ok"`` or ``"fallback_..."`` (see :mod:`graphs.s2a.parse`)."""
    reason: str
    removed: list[str]
    """Sentences of the original the rewrite dropped."""
    prompt: str
    """What the answering model is given (the composed answer prompt)."""
    mode: str
    """``"rewrite"`` or ``"filter"`` (see :data:`graphs.s2a.config.MODES`)."""
    scores: list[dict[str, Any]]
    """``mode="filter"``: every context sentence's relevance score and whether it was kept
    (:class:`graphs.s2a.filter.SentenceScore`); ``[]`` for a rewrite."""
