"""Final-answer extraction and comparison (pure: no LangGraph, no model).

Shared by LECO's stop rule, the critique verifiers, data generation and evaluation.

Order of preference when extracting: ``\\boxed{...}``, then "The answer is X" (last one), then
"#### X" (GSM8K), then the last number in the text.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction

__all__ = ["answers_equal", "extract_answer", "normalize_answer", "parse_number"]

_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*(.+)", re.IGNORECASE)
_HASHES = re.compile(r"####\s*(.+)")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")


def extract_answer(text: str) -> str | None:
    """The final answer in ``text`` as a normalised string, or ``None`` if there is none."""
    if not text:
        return None
    text = text.replace("\u2212", "-")  # Unicode minus sign
    m = list(_BOXED.finditer(text))
    if m:
        return normalize_answer(m[-1].group(1))
    for pattern in (_ANSWER_IS, _HASHES):
        hits = list(pattern.finditer(text))
        if hits:
            tail = hits[-1].group(1).strip()
            nums = _NUMBER.findall(tail.split("\n")[0])
            if nums:
                return normalize_answer(nums[0])
            first_line = tail.split("\n")[0].strip().rstrip(".")
            if first_line:
                return normalize_answer(first_line)
    nums = _NUMBER.findall(text)
    if nums:
        return normalize_answer(nums[-1])
    return None


@functools.lru_cache(maxsize=4096)  # pure; LECO's vote and stop rule compare the same strings often
def parse_number(s: str) -> Fraction | None:
    """``"1,234.50"`` -> 1234.5, ``"$3"`` -> 3, ``"3/4"`` -> 3/4, ``"50%"`` -> 50; else ``None``."""
    t = s.strip().replace("\u2212", "-").replace(",", "").replace("$", "").replace(" ", "").rstrip(".%")
    t = re.sub(r"^\\?\(|\\?\)$", "", t)
    frac = re.fullmatch(r"(-?\d+)/(\d+)", t)
    try:
        if frac:
            den = int(frac.group(2))
            return Fraction(int(frac.group(1)), den) if den else None
        frac_tex = re.fullmatch(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", t)
        if frac_tex:
            den = int(frac_tex.group(2))
            return Fraction(int(frac_tex.group(1)), den) if den else None
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


@functools.lru_cache(maxsize=4096)
def normalize_answer(s: str) -> str:
    """Canonical answer text: numbers as ``"18"``, ``"2.5"``, ``"3/4"``; other text lowercased."""
    s = s.strip()
    n = parse_number(s)
    if n is None:
        m = re.fullmatch(r"(-?\$?\d[\d,]*(?:\.\d+)?)\s*[a-zA-Z%]+\.?", s)  # "18 dollars", "5 cm"
        if m:
            n = parse_number(m.group(1))
    if n is not None:
        if n.denominator == 1:
            return str(n.numerator)
        as_float = float(n)
        if Fraction(repr(as_float)) == n:
            return repr(as_float)
        return f"{n.numerator}/{n.denominator}"
    return re.sub(r"\s+", " ", s).strip().rstrip(".").lower()


def answers_equal(a: str | None, b: str | None) -> bool:
    """Whether two answers are the same after normalisation (numbers compared exactly)."""
    if a is None or b is None:
        return False
    na, nb = parse_number(normalize_answer(a)), parse_number(normalize_answer(b))
    if na is not None and nb is not None:
        return na == nb
    return normalize_answer(a) == normalize_answer(b)
