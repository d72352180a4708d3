"""Text distances shared by every trace and metric: ``edit_distance`` means one thing everywhere.

:func:`edit_distance` is the *normalised word* Levenshtein distance in [0, 1] (0: same words,
1: nothing in common). The critique trace, the eval report and datagen all use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

__all__ = ["edit_distance", "levenshtein"]

_WORDS = re.compile(r"\S+")


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
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


def edit_distance(a: str, b: str, *, unit: Literal["word", "char"] = "word") -> float:
    """Levenshtein distance divided by the longer length, in [0, 1]; 0 for two empty texts.

    ``unit="word"`` (the default everywhere) compares whitespace-separated words; ``"char"``
    characters.
    """
    sa: Sequence[str] = _WORDS.findall(a) if unit == "word" else a
    sb: Sequence[str] = _WORDS.findall(b) if unit == "word" else b
    longest = max(len(sa), len(sb))
    return 0.0 if longest == 0 else levenshtein(sa, sb) / longest
