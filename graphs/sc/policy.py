"""The pure vote of self-consistency: group equal answers, count, pick the winner.

No LangGraph, no model; tested on literals.

Grouping: answers are compared with :func:`graphs.answers.answers_equal` (numbers exactly, after
normalisation: ``"18"``, ``"18.0"`` and ``"$18"`` are one answer); a group is named by the
normalised form of its first member. Candidates without an extractable answer (``None``) do not
vote. Each vote weighs 1 unless ``weights`` are given (LECO-style weighted votes reuse this).

Ties (equal total weight) go to the group whose first member came **earliest** (the lowest
sample index): deterministic, independent of dict or set order, and under sampled decoding no
worse than any other fixed rule. The response shown is that first member's full text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from adapters.errors import InvalidRequestError
from graphs.answers import answers_equal, normalize_answer

__all__ = ["Vote", "VoteGroup", "majority_vote"]


class VoteGroup(TypedDict):
    """One distinct answer and who voted for it."""

    answer: str
    """The normalised answer (of the group's first member)."""
    weight: float
    """Total weight of its votes (the count when unweighted)."""
    members: list[int]
    """Indices of the candidates that gave it, ascending."""


class Vote(TypedDict):
    """The outcome of a vote."""

    answer: str | None
    """The winning answer; ``None`` when no candidate had an answer."""
    winner: int | None
    """Index of the candidate whose text is the response (the winning group's first member)."""
    groups: list[VoteGroup]
    """Every group, winner first, then by weight (descending) and first member (ascending)."""
    abstained: list[int]
    """Candidates without an extractable answer."""


def majority_vote(answers: Sequence[str | None], weights: Sequence[float] | None = None) -> Vote:
    """Vote over ``answers`` (one per candidate, in sample order); see the module docstring."""
    if weights is not None and len(weights) != len(answers):
        raise InvalidRequestError("weights", list(weights), f"pass one weight per answer ({len(answers)})")
    groups: list[VoteGroup] = []
    abstained: list[int] = []
    for i, a in enumerate(answers):
        if a is None or not str(a).strip():
            abstained.append(i)
            continue
        w = 1.0 if weights is None else float(weights[i])
        g = next((g for g in groups if answers_equal(g["answer"], a)), None)
        if g is None:
            groups.append({"answer": normalize_answer(a), "weight": w, "members": [i]})
        else:
            g["weight"] += w
            g["members"].append(i)
    groups.sort(key=lambda g: (-g["weight"], g["members"][0]))
    if not groups:
        return {"answer": None, "winner": None, "groups": [], "abstained": abstained}
    return {"answer": groups[0]["answer"], "winner": groups[0]["members"][0], "groups": groups, "abstained": abstained}
