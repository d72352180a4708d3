"""The LECO graph's state: a TypedDict whose list keys append and whose ``usage`` sums."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from graphs.common import add_usage

__all__ = ["LecoInput", "LecoState"]


class LecoInput(TypedDict, total=False):
    """What callers pass: the question (and, for evaluation only, a gold answer)."""

    question: str
    reference: str


class LecoState(TypedDict, total=False):
    """Everything LECO did, JSON-serialisable (any checkpointer works).

    ``attempts[i]``: ``{"index", "path" ("initial" | "prefill" | "chat"), "prefix" (kept text
    before the generated part), "seed" (a ``Step N:`` label the chat path added), "text" (the
    generated text), "response" (the full solution), "answer", "finish_reason", "steps" (see
    :func:`graphs.leco.policy.score_steps`), "usage" (this attempt's tokens)}``.
    ``cuts[i]``: the decision after attempt i that led to a rethink: ``{"attempt", "step",
    "offset", "step_text", "score", "lowest", "prefix"}``.
    """

    question: str
    reference: str
    pending: dict[str, Any] | None
    """The latest generation, not scored yet (tokens as ``[token, logprob, offset, [alts]]``)."""
    attempts: Annotated[list[dict[str, Any]], operator.add]
    cuts: Annotated[list[dict[str, Any]], operator.add]
    candidates: Annotated[list[str | None], operator.add]
    """Each attempt's extracted answer, in order (the vote's input)."""
    prefix: str
    """The trusted prefix the next rethink continues from."""
    regeneration_path: str
    """``"prefill"`` or ``"chat"``: how rethinks continue the prefix."""
    stop_reason: str | None
    """``"agreement"``, ``"max_rethinks"``, ``"token_budget"`` or ``"no_candidate_step"``."""
    vote: dict[str, float]
    """The weighted vote: answer -> weight."""
    tokens_generated: int
    """Completion tokens over all attempts (what the token budget limits)."""
    answer: str | None
    response: str
    usage: Annotated[dict[str, int], add_usage]
