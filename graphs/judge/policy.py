"""Pure parts of LLM-as-a-judge: score parsing, expected score from logprobs, aggregation.

No LangGraph, no model: every function is tested on literal text and literal logprobs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

from adapters.types import TokenLogprob

__all__ = [
    "Preference",
    "ScoreStatus",
    "expected_score",
    "mean_or_none",
    "pairwise_winner",
    "parse_preference",
    "parse_score",
]

ScoreStatus = Literal["ok", "parse_error", "out_of_range"]
Preference = Literal["A", "B", "tie"]

_SCORE = re.compile(r"score\s*(?:\*\*)?\s*[:=]\s*(?:\*\*)?\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_WINNER = re.compile(r"winner\s*(?:\*\*)?\s*[:=]\s*(?:\*\*)?\s*\[*\s*(A|B|tie)\b", re.IGNORECASE)


def parse_score(text: str, max_score: int = 5) -> tuple[int | None, ScoreStatus, int]:
    """The last ``Score: N`` in ``text`` as ``(score, status, digit_position)``.

    ``status`` is ``"ok"`` for an integer in ``0..max_score``, ``"out_of_range"`` for another
    number (``score`` is then ``None``), ``"parse_error"`` when there is no ``Score:``.
    ``digit_position`` is the character index of the score's first digit (``-1`` if none): the
    position :func:`expected_score` reads the distribution at.
    """
    hits = list(_SCORE.finditer(text or ""))
    if not hits:
        return None, "parse_error", -1
    m = hits[-1]
    raw = m.group(1)
    pos = m.start(1)
    value = float(raw)
    if value.is_integer() and 0 <= value <= max_score and not raw.startswith("-"):
        return int(value), "ok", pos
    return None, "out_of_range", pos


def _digit_of(alt: str, prefix: str, max_score: int) -> int | None:
    rest = alt.strip()
    if prefix and not rest.startswith(prefix):
        return None
    rest = rest[len(prefix) :] if prefix else rest
    if len(rest) == 1 and rest.isdigit() and int(rest) <= max_score:
        return int(rest)
    return None


def expected_score(
    tokens: Sequence[TokenLogprob] | None, digit_position: int, max_score: int = 5
) -> float | None:
    """Expected score ``sum_d p(d) * d`` at the score digit, from that token's ``top_logprobs``.

    The token whose span holds ``digit_position`` is found by offset; its alternatives that are
    a digit ``0..max_score`` (after stripping spaces and the token's own text before the digit,
    e.g. ``" 4"`` or ``":4"``) are renormalised over the digits. ``None`` when the token is not
    found, has no ``top_logprobs``, or none of them is a digit.
    """
    if not tokens or digit_position < 0:
        return None
    tok = next(
        (t for t in tokens if t.offset <= digit_position < t.offset + max(1, len(t.token))), None
    )
    if tok is None or not tok.top_logprobs:
        return None
    prefix = tok.token[: digit_position - tok.offset].strip()
    mass: dict[int, float] = {}
    for alt in tok.top_logprobs:
        d = _digit_of(alt.token, prefix, max_score)
        if d is not None:
            mass[d] = mass.get(d, 0.0) + math.exp(alt.logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return sum(d * p for d, p in mass.items()) / total


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not ``None``; ``None`` if there are none."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def parse_preference(text: str) -> Preference | None:
    """The last ``Winner: A|B|tie`` in ``text``; ``None`` when there is none."""
    hits = _WINNER.findall(text or "")
    if not hits:
        return None
    v = hits[-1]
    return "tie" if v.lower() == "tie" else v.upper()  # type: ignore[return-value]


def pairwise_winner(first: Preference | None, swapped: Preference | None) -> Preference | None:
    """Combine the A/B verdict with the swapped B/A verdict into a winner between (a, b).

    In the first round ``a`` is shown as A; in the swapped round ``a`` is shown as B. A winner
    needs both rounds to agree (``"A"`` then ``"B"`` means ``a``); any disagreement (position
    bias) or a tie in either round is a ``"tie"``. ``None`` if either round did not parse.
    """
    if first is None or swapped is None:
        return None
    if first == "A" and swapped == "B":
        return "A"
    if first == "B" and swapped == "A":
        return "B"
    return "tie"
