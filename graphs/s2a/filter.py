"""S2A ``filter`` variant: score each context sentence's relevance with the model's own token
probabilities and drop the low-scoring ones (pure functions; the model call is the caller's).

Small models do not write S2A's two-section rewrite (Qwen2.5-0.5B: 100/100 fallbacks in the
committed eval), but they can answer a yes/no question about one sentence. Per problem:

1. :func:`split_problem`: the problem's sentences (:func:`graphs.s2a.parse.split_sentences`);
   the **question** is the last sentence ending in ``?`` (else the last sentence); every other
   sentence is **context**.
2. :func:`relevance_messages`: one request per context sentence, asking "Is this sentence needed
   to answer the question?". The whole problem comes first and the sentence last, so the
   requests share their prefix (a prefix KV cache reuses it when they run one by one).
   :func:`relevance_loop` yields them as one :class:`~graphs.loop.Batch`: the local adapter
   decodes them as rows of one batch, a server gets them as concurrent requests.
   Greedy, ``max_tokens=1``, with top logprobs (:data:`RELEVANCE_TOP_LOGPROBS`).
3. :func:`relevance_score`: ``P(yes) / (P(yes) + P(no))`` from the first generated token's top
   alternatives, where ``P(yes)`` sums the alternatives that read ``yes`` after stripping spaces
   and case (``"Yes"``, ``" yes"``, ``"YES"``), likewise ``no``. An answer absent from the top
   list counts as 0. When neither appears the score is ``None`` (unknown).
4. :func:`filter_sentences`: keep the question always (and any other sentence ending in ``?``:
   scored and recorded, never dropped); keep a context sentence whose score is unknown (no
   evidence, no drop); otherwise :func:`drop_decisions` decides, by ``rule``:
   ``"lowest"`` (default) drops at most the one clearly lowest-scoring sentence (below the mean of
   the others by more than ``margin``, default 0.02); ``"threshold"`` drops every score below
   ``threshold``.
   Every score is recorded. The filtered problem is the kept sentences in their original order,
   joined by spaces.

Deliberately simple: no rule keeps numbers (GSM-IC distractors carry numbers too).
``benchmarks/results/s2a_filter.txt`` shows why ``"lowest"`` is the default: with
Qwen2.5-Coder-0.5B every score sits near 0.4 to 0.5, so a threshold of 0.5 drops 94% of the real
sentences, while the distractor is the lowest of its problem 55% of the time ("lowest", margin
0.02: 45% of distractors dropped at 8% false drops, bf16). It assumes at most one distractor
per problem and drops nothing when no sentence stands out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from adapters.errors import InvalidRequestError
from adapters.types import Generation, Message
from graphs.loop import MAX_BATCH, Batch, Emit, Loop, ModelCall
from graphs.s2a.parse import split_sentences
from graphs.vocab import Cost, cost_of, zero_cost

__all__ = [
    "RELEVANCE_INSTRUCTION",
    "RELEVANCE_TOP_LOGPROBS",
    "RULES",
    "Rule",
    "FilterResult",
    "MAX_SENTENCES",
    "drop_decisions",
    "SentenceScore",
    "filter_sentences",
    "relevance_loop",
    "relevance_messages",
    "relevance_score",
    "split_problem",
]

RELEVANCE_INSTRUCTION = "Is this sentence needed to answer the question? Answer with Yes or No only."
"""The per-sentence question (after the problem, the question and the sentence)."""
RELEVANCE_TOP_LOGPROBS = 20
"""Alternatives to request for the first token (enough to see both ``Yes`` and ``No``)."""
Rule = Literal["threshold", "lowest"]
RULES: tuple[str, ...] = ("threshold", "lowest")
"""How scores become drops (see :func:`drop_decisions`)."""
MAX_SENTENCES = MAX_BATCH
"""The most context sentences the filter scores (one model call each, all in one
:class:`~graphs.loop.Batch`, so at most :data:`graphs.loop.MAX_BATCH`); a longer text is not
filtered (the S2A loop records ``fallback_too_long`` and keeps every sentence)."""


def split_problem(problem: str) -> tuple[list[str], str]:
    """``(context sentences, question)``; see the module docstring. Raises on a blank problem."""
    sents, q = _split(problem)
    return [s for i, s in enumerate(sents) if i != q], sents[q]


def _split(problem: str) -> tuple[list[str], int]:
    if not isinstance(problem, str) or not problem.strip():
        raise InvalidRequestError("problem", problem, "pass the problem text (a non-empty string)")
    sents = split_sentences(problem)
    q = max((i for i, s in enumerate(sents) if _is_question(s)), default=len(sents) - 1)
    return sents, q


def _is_question(sentence: str) -> bool:
    return sentence.rstrip("\"'”’)] ").endswith("?")


def relevance_messages(
    problem: str, question: str, sentence: str, system: str | None = None,
    instruction: str = RELEVANCE_INSTRUCTION,
) -> list[Message]:
    """The relevance request for one sentence (shared prefix first, the sentence last).

    ``instruction`` must be a yes/no question (the score reads ``Yes``/``No`` tokens)."""
    msgs: list[Message] = [{"role": "system", "content": system}] if system else []
    msgs.append({
        "role": "user",
        "content": f"Problem: {problem.strip()}\nQuestion: {question.strip()}\n\n"
                   f"Sentence: \"{sentence.strip()}\"\n{instruction}",
    })
    return msgs


def relevance_score(reply: Generation) -> tuple[float, float, float | None]:
    """``(P(yes), P(no), score)`` from the reply's first token (see the module docstring)."""
    if not reply.tokens:
        return 0.0, 0.0, None
    first = reply.tokens[0]
    alts = list(first.top_logprobs) or []
    pairs = [(a.token, a.logprob) for a in alts] or [(first.token, first.logprob)]
    p_yes = sum(math.exp(lp) for t, lp in pairs if t.strip().lower() == "yes")
    p_no = sum(math.exp(lp) for t, lp in pairs if t.strip().lower() == "no")
    total = p_yes + p_no
    return p_yes, p_no, (p_yes / total if total > 0 else None)


class SentenceScore(TypedDict):
    """One context sentence, its relevance score and the decision."""

    index: int
    """Position among the problem's sentences."""
    text: str
    p_yes: float | None
    """``P(yes)`` of the relevance question (``None`` with ``filter_signal="question"``)."""
    p_no: float | None
    score: float | None
    """The relevance score in [0, 1] (``"yes-no"``), or the sentence's gain in nats
    (``"question"``, :mod:`graphs.s2a.likelihood`); ``None``: unknown, kept."""
    kept: bool


@dataclass(frozen=True)
class FilterResult:
    """The filtered problem and every score behind it."""

    problem: str
    """The kept sentences (context and question) in their original order."""
    question: str
    scores: list[SentenceScore]
    dropped: list[str]
    cost: Cost = field(default_factory=zero_cost)
    """What the relevance calls cost (their replies' usage, summed)."""


def _unit(name: str, value: object) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise InvalidRequestError(name, value, "pass a number in [0, 1]")


def drop_decisions(
    scores: Sequence[float | None], *, rule: Rule = "lowest", threshold: float = 0.5, margin: float = 0.02
) -> list[bool]:
    """Which context sentences to drop (``True``), from their scores; an unknown score is kept.

    - ``"threshold"``: drop every score below ``threshold``.
    - ``"lowest"``: drop at most one sentence: the single lowest score, when at least two are
      known and it is below the mean of the other known scores by more than ``margin``. Relative
      to the problem, so it works when a model's yes/no probabilities are all low or all high;
      a tie for the lowest drops nothing.
    """
    if rule not in RULES:
        raise InvalidRequestError("rule", rule, f"use one of {', '.join(RULES)}")
    _unit("threshold", threshold)
    _unit("margin", margin)
    if rule == "threshold":
        return [s is not None and s < threshold for s in scores]
    known = sorted((s, i) for i, s in enumerate(scores) if s is not None)
    drop = [False] * len(scores)
    if len(known) >= 2 and known[0][0] < known[1][0]:
        rest = [s for s, _ in known[1:]]
        if known[0][0] < sum(rest) / len(rest) - margin:
            drop[known[0][1]] = True
    return drop


def filter_sentences(
    problem: str, replies: Sequence[Generation], *, rule: Rule = "lowest", threshold: float = 0.5,
    margin: float = 0.02,
) -> FilterResult:
    """Apply the relevance replies (one per context sentence, in order) to ``problem``
    (:func:`drop_decisions` decides)."""
    sents, q_index = _split(problem)
    positions = [i for i in range(len(sents)) if i != q_index]
    if len(replies) != len(positions):
        raise InvalidRequestError(
            "replies", len(replies), f"pass one reply per context sentence ({len(positions)}), in order"
        )
    read = [relevance_score(r) for r in replies]
    asks = [_is_question(sents[pos]) for pos in positions]  # another question sentence: scored, never dropped
    drops = drop_decisions([None if q else r[2] for r, q in zip(read, asks)], rule=rule, threshold=threshold,
                           margin=margin)
    scores: list[SentenceScore] = [
        {"index": pos, "text": sents[pos], "p_yes": p_yes, "p_no": p_no, "score": score, "kept": not drop}
        for pos, (p_yes, p_no, score), drop in zip(positions, read, drops)
    ]
    keep = {s["index"] for s in scores if s["kept"]} | {q_index}
    return FilterResult(
        problem=" ".join(s for i, s in enumerate(sents) if i in keep),
        question=sents[q_index],
        scores=scores,
        dropped=[s["text"] for s in scores if not s["kept"]],
        cost=cost_of(list(replies)),
    )


def relevance_loop(
    problem: str, *, rule: Rule = "lowest", threshold: float = 0.5, margin: float = 0.02,
    system: str | None = None, instruction: str = RELEVANCE_INSTRUCTION, target: str = "model", **event: Any,
) -> Loop[FilterResult]:
    """The filter as a :mod:`graphs.loop` generator: one :class:`~graphs.loop.Batch` of side
    calls, one per context sentence (greedy, one token, top logprobs; ``target``: which model of
    the driver answers), then :func:`filter_sentences`. The drivers send the batch at once (the
    local adapter decodes the rows together; servers get concurrent requests); run one by one,
    the calls share the problem's prefix in a prefix KV cache. Either way the record is the same.
    Emits ``s2a.filter`` with the scores (and the ``event`` fields). At most
    :data:`MAX_SENTENCES` calls: a longer text raises (callers check :func:`split_problem` first)."""
    context, question = split_problem(problem)
    if len(context) > MAX_SENTENCES:
        raise InvalidRequestError("problem", f"{len(context)} context sentences",
                                  f"the filter scores at most {MAX_SENTENCES}; shorten the text")
    calls = tuple(
        ModelCall("relevance", messages=tuple(relevance_messages(problem, question, sentence, system, instruction)),
                  max_tokens=1, temperature=0.0, top_logprobs=RELEVANCE_TOP_LOGPROBS, logprobs=True, target=target)
        for sentence in context
    )
    replies = (yield Batch(calls)) if calls else []
    result = filter_sentences(problem, replies, rule=rule, threshold=threshold, margin=margin)
    yield Emit("s2a.filter", {**event, "signal": "yes-no", "scores": result.scores, "dropped": result.dropped})
    return result
