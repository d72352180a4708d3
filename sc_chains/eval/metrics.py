"""Evaluation metrics (pure: numbers in, numbers out; no model, no LangGraph).

Accuracy with a Wilson 95% interval, the SCoRe two-attempt metrics, S2A's share of the
baseline-to-oracle gap, paired flips between two chains, and cost per problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from graphs.answers import answers_equal, normalize_answer, parse_number

__all__ = [
    "accuracy",
    "check_answer",
    "cost",
    "flips",
    "gap_recovered",
    "two_attempt",
    "wilson_interval",
]

Z95 = 1.959963984540054
"""The two-sided 95% normal quantile."""


def check_answer(pred: str | None, gold: str | None, *, rel_tol: float = 1e-6) -> bool:
    """Whether ``pred`` matches ``gold``: :func:`graphs.answers.answers_equal`, plus

    - numbers equal within ``rel_tol`` (``0.3333333`` vs ``1/3``, float noise);
    - a unicode minus (``"−5"``), thousands separators with spaces (``"1 000"``) and a
      variable before the value (``"x = 5"``);
    - symbolic answers through ``math_verify`` when it is installed.
    """
    if pred is None or gold is None:
        return False
    if answers_equal(pred, gold):
        return True
    a, b = _number(pred), _number(gold)
    if a is not None and b is not None:
        return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-9)
    return _math_verify(pred, gold)


def _number(s: str) -> Fraction | None:
    t = s.replace("\u2212", "-").replace("\u00a0", " ")
    t = normalize_answer(re.sub(r"^\s*[a-zA-Z]\w*\s*=\s*", "", t))
    n = parse_number(t)
    if n is None and t.replace(" ", "").lstrip("-").replace(".", "", 1).isdigit():
        n = parse_number(t.replace(" ", ""))
    return n


def _math_verify(pred: str, gold: str) -> bool:
    try:
        from math_verify import parse, verify  # optional dependency
    except ImportError:
        return False
    try:
        return bool(verify(parse(gold), parse(pred)))
    except Exception:  # noqa: BLE001 - an unparsable answer is simply not equal
        return False


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; ``(0.0, 1.0)`` when ``n == 0``."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def accuracy(correct: Iterable[bool]) -> dict[str, Any]:
    """``{"n", "correct", "accuracy", "ci_low", "ci_high"}`` (accuracy ``None`` when n is 0)."""
    flags = [bool(c) for c in correct]
    n, k = len(flags), sum(flags)
    lo, hi = wilson_interval(k, n)
    return {"n": n, "correct": k, "accuracy": k / n if n else None, "ci_low": lo, "ci_high": hi}


def two_attempt(pairs: Sequence[tuple[bool, bool]]) -> dict[str, float | None]:
    """SCoRe metrics from ``(correct_t1, correct_t2)`` per problem.

    ``accuracy_t1``, ``accuracy_t2``, ``delta`` = t2 - t1, ``delta_i_to_c`` (share of problems
    wrong at t1 and right at t2), ``delta_c_to_i`` (right then wrong). ``None`` when empty.
    """
    n = len(pairs)
    if n == 0:
        return dict.fromkeys(("accuracy_t1", "accuracy_t2", "delta", "delta_i_to_c", "delta_c_to_i"))
    t1 = sum(bool(a) for a, _ in pairs) / n
    t2 = sum(bool(b) for _, b in pairs) / n
    return {
        "accuracy_t1": t1,
        "accuracy_t2": t2,
        "delta": t2 - t1,
        "delta_i_to_c": sum(1 for a, b in pairs if not a and b) / n,
        "delta_c_to_i": sum(1 for a, b in pairs if a and not b) / n,
    }


def flips(before: Mapping[str, bool], after: Mapping[str, bool]) -> dict[str, Any]:
    """Paired flips on the problems both runs have: ``{"n", "i_to_c", "c_to_i"}`` as shares."""
    common = sorted(set(before) & set(after))
    pairs = [(before[k], after[k]) for k in common]
    m = two_attempt(pairs)
    return {"n": len(pairs), "i_to_c": m["delta_i_to_c"], "c_to_i": m["delta_c_to_i"]}


def gap_recovered(chain: float | None, baseline: float | None, oracle: float | None) -> float | None:
    """Share of the baseline-to-oracle gap a chain recovers: ``(chain - base) / (oracle - base)``.

    ``None`` when any value is missing or the oracle does not beat the baseline: with no gap (or
    an oracle below the baseline, as on the sycophancy-style set) there is nothing to recover, and
    the ratio of two negative differences would read as a gain. S2A paper: (80.3 - 62.8) / (82.0 -
    62.8).
    """
    if chain is None or baseline is None or oracle is None or oracle <= baseline:
        return None
    return (chain - baseline) / (oracle - baseline)


_USAGE = ("calls", "prompt_tokens", "completion_tokens")


def cost(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, float | int | None]:
    """Totals and per-problem means of model calls, prompt/completion tokens and wall time.

    Each outcome has ``usage`` (calls, prompt_tokens, completion_tokens) and ``wall_s``.
    """
    n = len(outcomes)
    totals: dict[str, float] = {k: 0 for k in _USAGE}
    totals["total_tokens"] = 0
    totals["wall_s"] = 0.0
    for o in outcomes:
        usage = o.get("usage") or {}
        for k in _USAGE:
            totals[k] += int(usage.get(k, 0))
        totals["total_tokens"] += int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
        totals["wall_s"] += float(o.get("wall_s") or 0.0)
    out: dict[str, float | int | None] = {f"{k}_total": v for k, v in totals.items()}
    for k, v in totals.items():
        out[f"{k}_per_problem"] = v / n if n else None
    return out
