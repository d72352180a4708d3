"""Pure decisions of the critique-revise loop: edit distance, confidence, verdicts, stop rules.

No LangGraph, no model: every function here is tested on literal values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from adapters.types import TokenLogprob

__all__ = [
    "STOP_REASONS",
    "StopReason",
    "edit_distance",
    "merge_turns",
    "normalized_edit_distance",
    "parse_verdict",
    "sequence_confidence",
    "stop_after_critique",
    "stop_after_draft",
]

StopReason = Literal["approved", "max_turns", "collapse", "confident", "budget", "rejected"]
STOP_REASONS: tuple[str, ...] = ("approved", "max_turns", "collapse", "confident", "budget", "rejected")
"""Every reason the loop can stop for (recorded in the state's ``stop_reason``)."""

_WORDS = re.compile(r"\S+")


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two sequences."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def normalized_edit_distance(a: str, b: str, *, unit: Literal["word", "char"] = "word") -> float:
    """Edit distance divided by the longer length, in [0, 1]; 0 for two empty texts.

    ``unit="word"`` compares whitespace-separated words (cheap on long drafts), ``"char"``
    characters.
    """
    sa: Sequence[str] = _WORDS.findall(a) if unit == "word" else a
    sb: Sequence[str] = _WORDS.findall(b) if unit == "word" else b
    longest = max(len(sa), len(sb))
    return 0.0 if longest == 0 else edit_distance(sa, sb) / longest


def sequence_confidence(tokens: Sequence[TokenLogprob] | None) -> float | None:
    """Mean token probability ``mean(exp(logprob))`` of a draft; ``None`` without tokens."""
    if not tokens:
        return None
    return sum(math.exp(t.logprob) for t in tokens) / len(tokens)


_VERDICT = re.compile(r"verdict\s*[:\-]\s*\**\s*(correct|incorrect|wrong|right)", re.IGNORECASE)
_CORRECT_PHRASES = ("it is correct", "the answer is correct", "the solution is correct")


def parse_verdict(text: str) -> bool | None:
    """Whether a critique approves the draft: the last ``Verdict: correct|incorrect``.

    Falls back to Self-Refine's stop phrase ("it is correct", without "not"). ``None`` when the
    critique states no verdict (the loop then keeps revising).
    """
    hits = _VERDICT.findall(text or "")
    if hits:
        return hits[-1].lower() in ("correct", "right")
    low = (text or "").lower()
    for phrase in _CORRECT_PHRASES:
        i = low.rfind(phrase)
        if i >= 0 and "not" not in low[max(0, i - 12) : i].split():
            return True
    return None


def stop_after_draft(
    *,
    turns: int,
    max_turns: int,
    distance: float | None,
    collapse_threshold: float,
    confidence: float | None,
    confidence_threshold: float | None,
    tokens_used: int,
    token_budget: int | None,
) -> StopReason | None:
    """Why to stop right after draft number ``turns`` (1-based), or ``None`` to go on.

    In order: ``max_turns`` (no revision left); ``collapse`` (this draft differs from the last
    one by a normalised edit distance below ``collapse_threshold``); ``confident`` (the
    confidence gate: mean token probability at or above ``confidence_threshold``, so a confident
    draft is not talked out of its answer; an unknown confidence never stops); ``budget``
    (tokens used reached ``token_budget``).
    """
    if turns >= max_turns:
        return "max_turns"
    if distance is not None and distance < collapse_threshold:
        return "collapse"
    if confidence_threshold is not None and confidence is not None and confidence >= confidence_threshold:
        return "confident"
    if token_budget is not None and tokens_used >= token_budget:
        return "budget"
    return None


def stop_after_critique(
    *, approved: bool | None, tokens_used: int, token_budget: int | None
) -> StopReason | None:
    """Why to stop after a critique: the critic ``approved``, or the token budget is spent."""
    if approved is True:
        return "approved"
    if token_budget is not None and tokens_used >= token_budget:
        return "budget"
    return None


def merge_turns(
    left: Sequence[Mapping[str, Any]] | None, right: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """State reducer for ``turns``: upsert by ``"index"`` (a critique fills in its draft's turn)."""
    out = [dict(t) for t in left or ()]
    pos = {t["index"]: i for i, t in enumerate(out)}
    for t in right or ():
        i = pos.get(t["index"])
        if i is None:
            pos[t["index"]] = len(out)
            out.append(dict(t))
        else:
            out[i] = {**out[i], **t}
    return out
