"""A check on a parsed S2A rewrite: it may drop opinions and distractors, never the user's
instructions, and it may not add facts. Pure; the S2A loop applies it (graph and middleware).

A rewrite that fails is not used: the model sees the original input (status
``fallback_check``, the reason in the trace and in the ``s2a.rewrite`` event).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from graphs.s2a.parse import removed_sentences, split_sentences

__all__ = ["INSTRUCTION_VERBS", "added_numbers", "check_rewrite", "dropped_instructions", "instructions"]

INSTRUCTION_VERBS = frozenset("""
    use answer give show write explain respond reply list call return format round express provide
    include keep be do don't never always only compute calculate solve think state output cite
    translate summarize summarise check avoid start end begin add mention describe make put
""".split())
"""First words of a sentence that make it an instruction to the assistant (after "please")."""

_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_DIRECTIVE = re.compile(r"\b(you must|make sure|do not|don't|be sure to|remember to)\b", re.IGNORECASE)


def instructions(text: str) -> list[str]:
    """The sentences of ``text`` that instruct the assistant ("Use the calculator tool.")."""
    out = []
    for sentence in split_sentences(text):
        words = re.findall(r"[\w']+", sentence.lower())
        if words and words[0] == "please":
            words = words[1:]
        if (words and words[0] in INSTRUCTION_VERBS and not sentence.rstrip().endswith("?")) or _DIRECTIVE.search(sentence):
            out.append(sentence)
    return out


def dropped_instructions(original: str, seen: str, *, min_overlap: float = 0.5,
                         removed: Sequence[str] | None = None) -> list[str]:
    """The instructions of ``original`` that the rewritten text ``seen`` left out (``removed``:
    :func:`~graphs.s2a.parse.removed_sentences` of the two, when the caller has it already)."""
    gone = set(removed_sentences(original, seen, min_overlap=min_overlap) if removed is None else removed)
    return [s for s in instructions(original) if s in gone]


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip("0").rstrip(".") if "." in n else n.replace(",", "") for n in _NUMBER.findall(text)}


def added_numbers(original: str, seen: str) -> list[str]:
    """Numbers in the rewritten text that the original does not contain (new facts, or a
    rewrite that started solving the problem)."""
    return sorted(_numbers(seen) - _numbers(original), key=lambda n: (len(n), n))


def check_rewrite(original: str, seen: str, *, min_overlap: float = 0.5,
                  removed: Sequence[str] | None = None) -> str | None:
    """Why the rewritten text ``seen`` may not replace ``original`` (``None``: it may;
    ``removed``: see :func:`dropped_instructions`)."""
    dropped = dropped_instructions(original, seen, min_overlap=min_overlap, removed=removed)
    if dropped:
        return f"the rewrite drops the instruction {dropped[0]!r}"
    added = added_numbers(original, seen)
    if added:
        return f"the rewrite adds facts not in the input (numbers {', '.join(added[:5])})"
    return None
