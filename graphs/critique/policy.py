"""Pure decisions of the critique-revise loop: confidence, verdicts, stop rules, echoes, reviews.

No LangGraph, no model: every function here is tested on literal values. Stop reasons are the
shared vocabulary of :mod:`graphs.vocab`; edit distance is :func:`graphs.text.edit_distance`
(the normalised word Levenshtein distance, the same meaning in every trace and metric).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.errors import InvalidRequestError
from adapters.types import TokenLogprob
from graphs.answers import answers_equal
from graphs.sc.policy import majority_vote
from graphs.text import edit_distance
from graphs.vocab import (
    APPROVED,
    COLLAPSE,
    CONFIDENT,
    MAX_COMPLETION_TOKENS,
    MAX_TURNS,
    StopReason,
)

__all__ = [
    "REVIEW_DECISIONS",
    "confirmed_final",
    "echo_reason",
    "edit_distance",
    "gate_revises",
    "parse_review",
    "parse_verdict",
    "program_vote",
    "read_verdict",
    "replacement_stands",
    "sequence_confidence",
    "stop_after_critique",
    "stop_after_draft",
]

_WORDS = re.compile(r"\S+")


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


def gate_revises(draft_answer: str | None, sample_answer: str | None) -> bool:
    """The disagreement gate: revise only when a second sample is evidence against the draft.

    A draft without an answer is revised (nothing to lose); a sample without an answer is no
    evidence (keep the draft); otherwise revise exactly when the answers differ
    (:func:`graphs.answers.answers_equal`)."""
    if draft_answer is None:
        return True
    if sample_answer is None:
        return False
    return not answers_equal(draft_answer, sample_answer)


def confirmed_final(answers: Sequence[str | None], sample_answer: str | None, final: int) -> int:
    """Which draft a gated run answers with: a revision must be confirmed by the gate's sample.

    ``answers`` are the drafts' answers in order (``answers[0]`` the first draft), ``final`` the
    loop's last kept draft. The result is the latest revision up to ``final`` whose answer agrees
    with ``sample_answer`` (:func:`graphs.answers.answers_equal`), else the first draft (0): a
    2-of-3 vote of draft, sample and revision in which ties keep the draft. A first draft without
    an answer has nothing to lose, so ``final`` stands."""
    if final <= 0 or answers[0] is None:
        return final
    for i in range(final, 0, -1):
        if answers[i] is not None and sample_answer is not None and answers_equal(answers[i], sample_answer):
            return i
    return 0


def replacement_stands(draft_answer: str | None, replacement_answer: str | None, sample_answer: str | None) -> bool:
    """``resolve="vote"``: whether a critic's replacement (the program's printed answer) beats
    the draft it disagrees with, a sampled second solution breaking the tie.

    The draft stays only when the sample agrees with the draft and not with the replacement (2 of
    3 against it); a sample that agrees with neither, or has no answer, leaves the replacement
    (the program is the external signal). A draft without an answer has nothing to keep.
    Measured: no gain over the program alone at n = 200 (see :mod:`graphs.critique.program`)."""
    if draft_answer is None or sample_answer is None:
        return True
    if replacement_answer is not None and answers_equal(sample_answer, replacement_answer):
        return True
    return not answers_equal(sample_answer, draft_answer)


def program_vote(draft_answer: str | None, program_answers: Sequence[str | None]) -> int | None:
    """A sampled program critic's decision: the index (into ``program_answers``) of the program
    whose printed answer overrules the draft, or ``None`` when the draft stands.

    A majority vote (:func:`graphs.sc.policy.majority_vote`) of the draft's answer, voting first,
    and every program's printed answer (programs that printed none abstain): the draft stands when
    its answer's group wins, ties included (an even split is no evidence against it). Otherwise
    the first program of the winning group overrules it. A draft without an answer does not vote,
    so any printed answer wins; no printed answer at all leaves the draft."""
    vote = majority_vote([draft_answer, *program_answers])
    if vote["winner"] is None or 0 in vote["groups"][0]["members"]:
        return None
    return vote["winner"] - 1


def stop_after_draft(
    *,
    turns: int,
    turn_limit: int,
    distance: float | None,
    collapse_threshold: float,
    confidence: float | None,
    confidence_threshold: float | None,
    completion_tokens: int,
    max_completion_tokens: int | None,
    limit_reason: StopReason = MAX_TURNS,
) -> StopReason | None:
    """Why to stop right after draft number ``turns`` (1-based), or ``None`` to go on.

    In order: ``limit_reason`` (``"max_turns"``, or ``"max_corrections"`` when the caller's
    allowance is what binds: no revision left, ``turns >= turn_limit``); ``collapse`` (this
    draft differs from the last one by a normalised edit distance below
    ``collapse_threshold``); ``confident`` (mean token probability at or above
    ``confidence_threshold``, so a confident draft is not talked out of its answer; an unknown
    confidence never stops); ``max_completion_tokens`` (generated tokens reached the budget).
    """
    if turns >= turn_limit:
        return limit_reason
    if distance is not None and distance < collapse_threshold:
        return COLLAPSE
    if confidence_threshold is not None and confidence is not None and confidence >= confidence_threshold:
        return CONFIDENT
    if max_completion_tokens is not None and completion_tokens >= max_completion_tokens:
        return MAX_COMPLETION_TOKENS
    return None


def stop_after_critique(
    *, approved: bool | None, completion_tokens: int, max_completion_tokens: int | None
) -> StopReason | None:
    """Why to stop after a critique: the critic ``approved``, or the generated tokens reached
    ``max_completion_tokens``."""
    if approved is True:
        return APPROVED
    if max_completion_tokens is not None and completion_tokens >= max_completion_tokens:
        return MAX_COMPLETION_TOKENS
    return None


# -- what a revision must not be ---------------------------------------------------------------
_SENTENCES = re.compile(r"[^.!?\n]+[.!?]?")
_ECHO_MIN_WORDS = 6
_FEEDBACK_HEADER = re.compile(r"^\s*\**\s*feedback\s*:", re.IGNORECASE)


_ALNUM = re.compile(r"[a-z0-9]+")


def _norm(text: str) -> str:
    """Lower-case words (letters and digits) joined by single spaces: punctuation and spacing
    never hide an echo."""
    return " ".join(_ALNUM.findall((text or "").lower()))


def echo_reason(revision: str, prompts: Sequence[str], critique: str | None = None) -> str | None:
    """Why ``revision`` is not an answer but an echo of the loop's own text, or ``None``.

    - ``"empty"``: nothing but whitespace;
    - ``"verdict"``: it states a critic's verdict (``Verdict: incorrect``), the critique format;
    - ``"feedback"``: it starts like a feedback turn (``Feedback:``);
    - ``"prompt"``: it repeats a sentence of six or more words of one of ``prompts`` (the
      loop's instructions, e.g. "Using all the feedback so far, write an improved solution");
    - ``"critique"``: it repeats the critique it was given (a sentence of six or more words of
      it, making up at least half of the revision's words).

    Pure: tested on literals. The loop keeps the previous draft when this says not ``None``.
    """
    text = _norm(revision)
    if not text:
        return "empty"
    if _VERDICT.search(revision or ""):
        return "verdict"
    if _FEEDBACK_HEADER.match(revision or ""):
        return "feedback"
    for prompt in prompts:
        if _shares_sentence(text, prompt):
            return "prompt"
    if critique and _shares_sentence(text, critique):
        crit_words = set(_norm(critique).split())
        words = text.split()
        if sum(w in crit_words for w in words) * 2 >= len(words):
            return "critique"
    return None


def _shares_sentence(normalized_text: str, source: str) -> bool:
    """Whether a sentence of at least six words of ``source`` occurs in the (normalised) text."""
    for sentence in _SENTENCES.findall(source or ""):
        s = _norm(sentence)
        if len(s.split()) >= _ECHO_MIN_WORDS and f" {s} " in f" {normalized_text} ":
            return True
    return False


# -- what a critic or a person returned ----------------------------------------------------------
REVIEW_DECISIONS: tuple[str, ...] = ("approve", "edit", "reject")
"""The decision types of a review, as LangChain's ``HumanInTheLoopMiddleware`` names them."""


def parse_review(value: Any, *, param: str = "resume") -> dict[str, Any]:
    """A person's review decision as ``{"type", "critique"?, "message"?}``.

    Accepts LangChain's HITL response ``{"decisions": [{"type": "approve"}]}``,
    ``{"type": "edit", "edited_action": {"name": ..., "args": {"critique": "..."}}}``,
    ``{"type": "reject", "message": "..."}``, one such decision dict, or the older
    ``{"action": "approve"|"edit"|"reject", "critique": ...}``. Anything else (a bare string,
    ``True``, two decisions, an unknown type, an edit without text) raises
    :class:`InvalidRequestError` naming the value and the expected shape.
    """
    fix = (
        "resume with {'decisions': [{'type': 'approve'}]}, "
        "{'decisions': [{'type': 'edit', 'edited_action': {'name': 'revise', 'args': {'critique': '...'}}}]} "
        "or {'decisions': [{'type': 'reject', 'message': '...'}]}"
    )
    d = value
    if isinstance(d, Mapping) and "decisions" in d:
        decisions = d["decisions"]
        if not isinstance(decisions, Sequence) or isinstance(decisions, str) or len(decisions) != 1:
            raise InvalidRequestError(f"{param}.decisions", decisions, "pass exactly one decision; " + fix)
        d = decisions[0]
    if not isinstance(d, Mapping):
        raise InvalidRequestError(param, value, fix)
    kind = d.get("type", d.get("action"))
    if kind not in REVIEW_DECISIONS:
        raise InvalidRequestError(f"{param}.type", kind, fix)
    out: dict[str, Any] = {"type": kind}
    if kind == "edit":
        action = d.get("edited_action")
        args = action.get("args") if isinstance(action, Mapping) else None
        text = (args or {}).get("critique") if isinstance(args, Mapping) else d.get("critique")
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequestError(f"{param}.critique", text, "an edit needs the new critique text; " + fix)
        out["critique"] = text
    message = d.get("message")
    if kind == "reject" and isinstance(message, str) and message.strip():
        out["message"] = message
    return out


def read_verdict(value: Any) -> tuple[bool, str]:
    """What a verifier function returned, as ``(approved, message)``.

    Accepted: a ``bool``; ``(bool, message)``; a HITL response (``{"decisions": [...]}``, read
    with :func:`parse_review`: approve is ``True``, reject and edit are ``False`` with the
    person's text as feedback). Anything else (the string ``"no"``, ``None``, a number, a dict
    of another shape) raises :class:`InvalidRequestError`: only an explicit ``True`` approves.
    """
    fix = "a verifier returns True/False, (ok, feedback) or a review {'decisions': [{'type': 'approve'|'reject'|'edit'}]}"
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        msg = value[1]
        if msg is not None and not isinstance(msg, str):
            raise InvalidRequestError("verifier result", value, "the second item must be the feedback text; " + fix)
        return value[0], msg or ""
    if isinstance(value, Mapping) and ("decisions" in value or "type" in value):
        d = parse_review(value, param="verifier result")
        return d["type"] == "approve", d.get("critique") or d.get("message") or ""
    raise InvalidRequestError("verifier result", value, fix)
