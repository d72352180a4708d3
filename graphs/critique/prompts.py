"""The prompts of the critique-revise modes, and the message lists built from them.

RCI's two prompts and SCoRe's correction instruction are quoted from the papers
(see ``/work/shared/notes/methods.md`` section 3); Self-Refine's feedback prompt asks for an
explicit verdict so that its stop rule ("the feedback says it is correct") is parseable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.types import Message
from graphs.common import with_system

__all__ = [
    "ANSWER_INSTRUCTION",
    "RCI_IMPROVE",
    "RCI_REVIEW",
    "SCORE_INSTRUCTION",
    "SELF_REFINE_FEEDBACK",
    "SELF_REFINE_REFINE",
    "critique_extra",
    "critique_messages",
    "draft_messages",
    "feedback_text",
    "revise_extra",
    "revise_messages",
]

ANSWER_INSTRUCTION = "Solve the problem step by step, then end with \"The answer is X.\""
"""Appended to the question for the first draft (so answers are extractable)."""

SELF_REFINE_FEEDBACK = (
    "Review the answer above step by step and point out every error in its reasoning or "
    "arithmetic. Then end with exactly one line: \"Verdict: correct\" if the final answer is "
    "correct, or \"Verdict: incorrect\" if it is not."
)
"""Self-Refine's feedback request."""

SELF_REFINE_REFINE = (
    "Using all the feedback so far, write an improved solution that fixes the problems. "
    "End with \"The answer is X.\""
)
"""Self-Refine's refine request (sent after the history of drafts and feedback)."""

RCI_REVIEW = "Review your previous answer and find problems with your answer."
"""RCI's critique prompt (Kim et al., 2023)."""

RCI_IMPROVE = "Based on the problems you found, improve your answer."
"""RCI's improve prompt (Kim et al., 2023)."""

SCORE_INSTRUCTION = (
    "There might be an error in the solution above because of lack of understanding of the "
    "question. Please correct the error, if any, and rewrite the solution."
)
"""SCoRe's second-attempt instruction; it does not reveal whether attempt 1 was correct."""


def _first_user(question: str, system: str | None, history: Sequence[Mapping[str, str]] = ()) -> list[Message]:
    msgs: list[Message] = with_system(history, system or "")  # type: ignore[assignment]
    msgs.append({"role": "user", "content": f"{question}\n\n{ANSWER_INSTRUCTION}"})
    return msgs


def draft_messages(
    question: str, system: str | None = None, history: Sequence[Mapping[str, str]] = ()
) -> list[Message]:
    """The first draft's prompt (the graph's host conversation): the caller's ``history`` (its
    system prompt joined to ``system``, earlier turns), then the question."""
    return _first_user(question, system, history)


def critique_extra(mode: str, draft: str, feedback_prompt: str = SELF_REFINE_FEEDBACK) -> tuple[Message, ...]:
    """What a model critique appends to the host conversation: the draft, then the ask
    (RCI's review prompt, or the self-refine feedback prompt)."""
    ask = RCI_REVIEW if mode == "rci" else feedback_prompt
    return ({"role": "assistant", "content": draft}, {"role": "user", "content": ask})


def critique_messages(
    mode: str, question: str, draft: str, system: str | None = None
) -> list[Message]:
    """The critique request on the latest draft (``self-refine`` or ``rci``)."""
    return [*_first_user(question, system), *critique_extra(mode, draft)]


def feedback_text(critique: str | None, refine_prompt: str = SELF_REFINE_REFINE) -> str:
    """Self-refine's revision request after one draft: its feedback, then the refine prompt."""
    return f"Feedback:\n{critique}\n\n{refine_prompt}"


def revise_extra(
    mode: str, turns: Sequence[Mapping[str, Any]], refine_prompt: str = SELF_REFINE_REFINE
) -> tuple[Message, ...]:
    """What a revision appends to the host conversation after ``turns`` (each with ``text``
    and ``critique``).

    - ``self-refine``: the whole history, each draft followed by its feedback and the refine
      request.
    - ``rci``: the latest draft, the review prompt, the critique, then the improve prompt.
    - ``score``: the first attempt, then the correction instruction (the turn's ``critique``,
      which is :data:`SCORE_INSTRUCTION` unless a person edited it).
    """
    last = turns[-1]
    if mode == "self-refine":
        out: list[Message] = []
        for t in turns:
            out.append({"role": "assistant", "content": t["text"]})
            out.append({"role": "user", "content": feedback_text(t["critique"], refine_prompt)})
        return tuple(out)
    if mode == "rci":
        return (
            {"role": "assistant", "content": last["text"]},
            {"role": "user", "content": RCI_REVIEW},
            {"role": "assistant", "content": last["critique"]},
            {"role": "user", "content": RCI_IMPROVE},
        )
    return (
        {"role": "assistant", "content": last["text"]},
        {"role": "user", "content": last["critique"] or SCORE_INSTRUCTION},
    )


def revise_messages(
    mode: str, question: str, turns: Sequence[Mapping[str, Any]], system: str | None = None
) -> list[Message]:
    """The whole revision request after ``turns`` (see :func:`revise_extra`)."""
    return [*_first_user(question, system), *revise_extra(mode, turns)]
