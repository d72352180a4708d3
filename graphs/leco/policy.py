"""LECO's decisions as pure functions: steps, step scores, the cut point, the stop rule, the vote.

No LangGraph and no model here: everything works on literal numbers and plain tokens, so it is
tested on hand-computed examples. See ``/work/shared/notes/methods.md`` section 1 (Yao et al.,
2024, arXiv 2403.19094).

Tokens are anything with ``token``, ``logprob``, ``offset`` (and optionally ``top_logprobs``)
attributes, such as :class:`adapters.types.TokenLogprob`, or plain tuples
``(token, logprob, offset)`` / ``(token, logprob, offset, alternatives)`` where each alternative
is a logprob or a ``(token, logprob)`` pair. ``offset`` is the token's character offset in the
text being split, so step splitting works for any tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphs.answers import answers_equal, extract_answer, normalize_answer
from graphs.leco.scores import (
    ProbMode,
    StepScores,
    Tok,
    average_score,
    divergence_score,
    step_score,
    to_tokens,
    token_probability,
    transition_score,
)

__all__ = [
    "DEFAULT_SKIP_PHRASES",
    "ProbMode",
    "Step",
    "StepScores",
    "Tok",
    "average_score",
    "cut_point",
    "divergence_score",
    "is_candidate",
    "lowest_steps",
    "attempt_answer",
    "looks_like_reasoning",
    "next_step_number",
    "score_steps",
    "should_stop",
    "split_steps",
    "starts_with_label",
    "step_score",
    "to_tokens",
    "token_probability",
    "transition_score",
    "weighted_vote",
]

DEFAULT_SKIP_PHRASES: tuple[str, ...] = ("step by step", "the answer is")
"""Steps containing one of these (case-insensitive) are never cut (the reference's filter)."""

_LABEL = re.compile(r"\s*(?:\*\*)?step\s*\d+\s*(?:\*\*)?\s*[:.)](?:\*\*)?", re.IGNORECASE)
_LABEL_NUMBER = re.compile(r"step\s*(\d+)\s*(?:\*\*)?\s*[:.)]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Step:
    """One newline-delimited line of a solution."""

    index: int
    """Position among the text's lines (0-based)."""
    start: int
    """Offset of the line's first character in the text."""
    end: int
    """Offset just past the line's last character (the newline itself is excluded)."""
    text: str
    """The line, without its newline."""
    label_end: int
    """Offset where the content starts: after a ``Step N:`` label, else ``start``."""
    token_ids: tuple[int, ...]
    """Indices (into the token list) of the tokens whose span lies inside the line."""
    content_ids: tuple[int, ...]
    """The subset of ``token_ids`` that starts at or after ``label_end``."""


def split_steps(text: str, tokens: Sequence[Tok]) -> list[Step]:
    """Split ``text`` at newlines; give each line the tokens whose span lies inside it.

    A token's span is ``[offset, offset + len(token))``; tokens that cross a line end (the
    newline's own token, or a merged ``".\\n"``) belong to no step. Blank lines are steps too
    (with no content): :func:`is_candidate` skips them.
    """
    if not text:
        return []
    steps: list[Step] = []
    start = 0
    lines = text.split("\n")
    spans = [(t.offset, t.offset + len(t.text)) for t in tokens]
    for i, line in enumerate(lines):
        end = start + len(line)
        m = _LABEL.match(line)
        label_end = start + m.end() if m else start
        ids = tuple(
            j for j, (a, b) in enumerate(spans)
            if start <= a < end and b <= end
        )
        content = tuple(j for j in ids if spans[j][0] >= label_end)
        if i == len(lines) - 1 and not line and i > 0:
            break  # text ended with a newline: no trailing empty step
        steps.append(Step(i, start, end, line, label_end, ids, content))
        start = end + 1
    return steps


def is_candidate(step_text: str, n_tokens: int, skip_phrases: Sequence[str] = DEFAULT_SKIP_PHRASES) -> bool:
    """Whether a step may be cut: it has tokens, is not blank, and has no skip phrase."""
    low = step_text.lower()
    return n_tokens > 0 and bool(step_text.strip()) and not any(p.lower() in low for p in skip_phrases)


def score_steps(
    text: str,
    tokens: Sequence[Tok],
    *,
    prob_mode: ProbMode = "topk",
    k: int = 5,
    transition_k: int = 5,
    tau: float = 1 / 3,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    skip_phrases: Sequence[str] = DEFAULT_SKIP_PHRASES,
    min_offset: int = 0,
) -> list[dict[str, Any]]:
    """Split and score ``text``: one JSON-ready dict per step.

    Keys: ``index, start, end, text, n_tokens, tokens`` (``[[token, prob], ...]``), ``avg,
    trans, div, score`` (``None`` for a step without tokens) and ``candidate`` (False for steps
    starting before ``min_offset``, i.e. inside a prefix kept from an earlier attempt).
    """
    probs = [token_probability(t, prob_mode, k) for t in tokens]
    out = []
    for st in split_steps(text, tokens):
        p = [probs[j] for j in st.token_ids]
        row: dict[str, Any] = {
            "index": st.index, "start": st.start, "end": st.end, "text": st.text,
            "n_tokens": len(p), "tokens": [[tokens[j].text, probs[j]] for j in st.token_ids],
            "avg": None, "trans": None, "div": None, "score": None,
        }
        if p:
            s = step_score(p, [probs[j] for j in st.content_ids],
                           transition_k=transition_k, tau=tau, weights=weights)
            row.update(avg=s.avg, trans=s.trans, div=s.div, score=s.score)
        row["candidate"] = st.start >= min_offset and is_candidate(st.text, len(p), skip_phrases)
        out.append(row)
    return out


def lowest_steps(scores: Sequence[float | None], n: int = 2) -> list[int]:
    """Indices of the ``n`` lowest scores, lowest first (``None`` = not a candidate; ties rank
    the earlier step first)."""
    return [i for _, i in sorted((s, i) for i, s in enumerate(scores) if s is not None)[:n]]


def cut_point(scores: Sequence[float | None], offset: int = 0) -> int | None:
    """The step to regenerate from: the earlier of the two lowest-scoring candidates, + ``offset``.

    ``scores[i]`` is the score of step i of the new text (after the prefix already kept), or
    ``None`` for a step that may not be cut; ``offset`` is the number of steps in that prefix.
    ``None`` when there is no candidate.
    """
    low = lowest_steps(scores, 2)
    return min(low) + offset if low else None


def should_stop(answers: Sequence[str | None], rethinks: int, max_rethinks: int) -> str | None:
    """Why to stop now (``"agreement"`` or ``"max_rethinks"``), or ``None`` to rethink again.

    ``answers`` are the answers of every attempt so far, in order; ``rethinks`` how many
    regenerations have run. Two consecutive equal answers (``answers_equal``) agree.
    """
    if len(answers) >= 2 and answers_equal(answers[-1], answers[-2]):
        return "agreement"
    if rethinks >= max_rethinks:
        return "max_rethinks"
    return None


def weighted_vote(
    answers: Sequence[str | None], first_weight: float = 1.5, other_weight: float = 1.0
) -> tuple[str | None, dict[str, float]]:
    """The weighted vote over all answers seen: ``(winner, {answer: weight})``.

    The first answer weighs ``first_weight``, the others ``other_weight``; equal answers
    (``answers_equal``) pool their weight under their first spelling; ``None`` answers do
    not vote; ties go to the answer seen most recently.
    """
    weights: dict[str, float] = {}
    last_seen: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        key = next((k for k in weights if answers_equal(k, a)), None)
        w = first_weight if i == 0 else other_weight
        if key is None:
            weights[a] = w
            key = a
        else:
            weights[key] += w
        last_seen[key] = i
    if not weights:
        return None, {}
    winner = max(weights, key=lambda k: (weights[k], last_seen[k]))
    return winner, weights


def next_step_number(prefix: str) -> int:
    """The number of the step that follows ``prefix``: after its last ``Step N`` label, or the
    count of its non-blank lines plus one when it has no labels."""
    nums = _LABEL_NUMBER.findall(prefix)
    if nums:
        return int(nums[-1]) + 1
    return sum(1 for line in prefix.split("\n") if line.strip()) + 1


def starts_with_label(text: str) -> bool:
    """Whether ``text`` opens with a ``Step N:`` label (after whitespace)."""
    return _LABEL.match(text) is not None


_LINE_LABEL = re.compile(r"^(?:\s*(?:\*\*)?step\s*\d+\s*(?:\*\*)?\s*[:.)](?:\*\*)?)", re.IGNORECASE | re.MULTILINE)


def attempt_answer(text: str) -> str | None:
    """An attempt's answer, of any kind: :func:`graphs.answers.extract_answer` on the text
    without its ``Step N:`` labels (a label's number is never the answer); for a text with no
    "The answer is", no boxed answer and no number, its last non-empty line ("Paris")."""
    bare = _LINE_LABEL.sub("", text or "")
    answer = extract_answer(bare)
    if answer is not None:
        return answer
    lines = [line.strip() for line in bare.splitlines() if line.strip()]
    return normalize_answer(lines[-1]) if lines else None


_REASONING = re.compile(
    r"\d|\b(how (?:many|much|long|far|old)|calculate|compute|solve|prove|total|sum|difference|product|"
    r"percent|average|probability|equation|step by step|reason|why)\b",
    re.IGNORECASE,
)


def looks_like_reasoning(question: str) -> bool:
    """LECO's default for which turns call for step-by-step reasoning: a question with a number
    or a word like "how many", "calculate", "solve", "why" ("capital of France?" does not)."""
    return bool(_REASONING.search(question or ""))
