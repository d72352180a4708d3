"""The LECO graph's state: the run's records (see :class:`graphs.leco.loop.LecoResult`)."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from graphs.driver import record_replies
from graphs.vocab import Attempt, Cost, Cut

__all__ = ["LecoInput", "LecoState"]


class LecoInput(TypedDict, total=False):
    """What callers pass: the question, optionally the conversation before it (``history``:
    system prompt and earlier turns as ``{"role", "content"}`` messages), and for evaluation
    only a gold answer."""

    question: str
    history: list[dict[str, str]]
    reference: str


class LecoState(TypedDict, total=False):
    """Everything the latest LECO run did, JSON-serialisable (any checkpointer works).

    A new question on a thread starts a fresh run: the output keys are reset; earlier runs stay
    in the checkpointer's history (``graph.get_state_history(config)``).
    """

    question: str
    history: list[dict[str, str]] | None
    """The input's conversation before the question (cleared at the start of a run)."""
    conversation: list[dict[str, str]]
    """This run's conversation before the question (the checked ``history``)."""
    reference: str
    replies: Annotated[list[Any], record_replies]
    """The model replies of this run, in order (the driver replays the loop with them)."""
    emitted: int
    finished: bool
    attempts: list[Attempt]
    """Every attempt (see :class:`graphs.vocab.Attempt`)."""
    cuts: list[Cut]
    """The decision after attempt i that led to a rethink (see :class:`graphs.vocab.Cut`)."""
    candidates: list[str | None]
    """Each attempt's extracted answer, in order (the vote's input)."""
    regeneration_path: str
    """``"prefill"`` or ``"chat"``: how rethinks continue the prefix."""
    stop_reason: str | None
    """``"agreement"``, ``"max_rethinks"``, ``"max_completion_tokens"``, ``"no_candidate_step"``
    or ``"no_logprobs"`` (see :mod:`graphs.vocab`)."""
    status: str
    """``"kept"`` (the first answer won) or ``"corrected"``."""
    vote: dict[str, float]
    """The weighted vote: answer -> weight."""
    tokens_generated: int
    """Completion tokens over all attempts (what ``max_completion_tokens`` limits)."""
    answer: str | None
    response: str
    usage: Cost
