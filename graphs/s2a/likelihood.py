"""S2A ``filter`` with ``filter_signal="question"``: keep a context sentence only if the question
needs it, judged by the question's own likelihood (pure functions plus one loop).

A sentence the question builds on (its people, things and quantities) makes the question's
words likelier; an irrelevant sentence does not, and often makes them less likely. Per problem
(:func:`graphs.s2a.filter.split_problem` splits it into context sentences and the question):

1. :func:`question_pairs`: ``1 + k`` texts to score (no generation): the question after the whole
   context, and the question after the context without sentence ``i``, for each of the ``k``
   context sentences (raw text, :meth:`adapters.base.LogprobModel.score_texts`; one
   :class:`~graphs.loop.Score` request).
2. :func:`question_gains`: each sentence's **gain**, ``log P(question | context) - log P(question |
   context without the sentence)`` in nats: how much the sentence helps the model expect the
   question. Leave-one-out, so a sentence is judged with the others present.
3. :func:`drop_by_gain`: a sentence whose gain is below ``gain_below`` (default 0: the question
   is likelier without it) is a candidate; rule ``"lowest"`` (default) drops the lowest
   candidate only, ``"threshold"`` every candidate. Another question sentence is never dropped.

Measured with Qwen2.5-Coder-0.5B on 200 GSM-IC-style problems (``benchmarks/results/s2a_question_filter.txt``):
the added sentence has the lowest gain of its problem in 88.5% (AUROC 0.93; the yes/no relevance
score: 0.57 to 0.65), the default rule drops it in 84.5% and drops 4.3% of the real sentences;
on the clean problems it drops a sentence in 33.5% (``gain_below=-2``: 11.5%, the distractor
then in 65%).
It needs a model that scores text (a local ``hf:`` model; :class:`~adapters.errors.ScoringUnavailableError`
otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.errors import InvalidRequestError
from adapters.types import Generation
from graphs.loop import Emit, Loop, Score
from graphs.s2a.filter import MAX_SENTENCES, FilterResult, Rule, RULES, SentenceScore, _is_question, _split
from graphs.vocab import cost_of

__all__ = ["MAX_GAIN", "drop_by_gain", "question_gains", "question_loop", "question_pairs", "total_logprob"]

MAX_GAIN = 100.0
"""Largest ``|gain_below|`` accepted (nats)."""


def question_pairs(context: Sequence[str], question: str) -> tuple[tuple[str, str], ...]:
    """The texts to score: ``(whole context, question)``, then ``(context without i, question)``
    for each context sentence ``i`` (sentences joined by spaces; a prefix ends with a space)."""
    def prefix(sents: Sequence[str]) -> str:
        return " ".join(s.strip() for s in sents) + " " if sents else ""

    q = question.strip()
    return ((prefix(context), q), *((prefix([s for j, s in enumerate(context) if j != i]), q)
                                    for i in range(len(context))))


def total_logprob(reply: Generation) -> float:
    """``log P(continuation | prefix)``: the sum of a scored reply's token logprobs."""
    return float(sum(t.logprob for t in reply.tokens or ()))


def question_gains(replies: Sequence[Generation]) -> list[float]:
    """Each context sentence's gain (nats) from the :func:`question_pairs` replies, in order."""
    if len(replies) < 1:
        raise InvalidRequestError("replies", len(replies), "pass the whole-context reply first, then one per sentence")
    whole = total_logprob(replies[0])
    return [whole - total_logprob(r) for r in replies[1:]]


def drop_by_gain(gains: Sequence[float | None], *, rule: Rule = "lowest", gain_below: float = 0.0) -> list[bool]:
    """Which sentences to drop (``True``): gain below ``gain_below``; ``"lowest"``: only the
    single lowest such gain (a tie for the lowest drops nothing); ``None`` (not scored) is kept."""
    if rule not in RULES:
        raise InvalidRequestError("rule", rule, f"use one of {', '.join(RULES)}")
    check_gain(gain_below)
    drop = [g is not None and g < gain_below for g in gains]
    if rule == "threshold" or sum(drop) == 0:
        return drop
    low = sorted((g, i) for i, g in enumerate(gains) if g is not None and g < gain_below)
    keep_one = len(low) == 1 or low[0][0] < low[1][0]
    return [keep_one and i == low[0][1] for i in range(len(gains))]


def check_gain(value: Any) -> None:
    """Raise unless ``value`` is a number in ``[-MAX_GAIN, MAX_GAIN]`` (nats)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not -MAX_GAIN <= value <= MAX_GAIN:
        raise InvalidRequestError("filter_gain_below", value, f"pass nats between {-MAX_GAIN:g} and {MAX_GAIN:g}, e.g. 0.0")


def question_loop(problem: str, *, rule: Rule = "lowest", gain_below: float = 0.0, target: str = "model",
                  **event: Any) -> Loop[FilterResult]:
    """The question-likelihood filter as a :mod:`graphs.loop` generator: one :class:`Score`
    request (``1 + k`` pairs) to ``target``, then the decisions. Emits ``s2a.filter`` with every
    sentence's gain (as its ``score``). At most :data:`~graphs.s2a.filter.MAX_SENTENCES` - 1
    context sentences (callers check first); none: nothing is scored or dropped."""
    sents, q_index = _split(problem)
    positions = [i for i in range(len(sents)) if i != q_index]
    if len(positions) + 1 > MAX_SENTENCES:
        raise InvalidRequestError("problem", f"{len(positions)} context sentences",
                                  f"the question filter scores at most {MAX_SENTENCES - 1}; shorten the text")
    replies = (yield Score("relevance", question_pairs([sents[i] for i in positions], sents[q_index]), target)) \
        if positions else []
    gains = question_gains(replies) if positions else []
    asks = [_is_question(sents[pos]) for pos in positions]
    drops = drop_by_gain([None if a else g for g, a in zip(gains, asks)], rule=rule, gain_below=gain_below)
    scores: list[SentenceScore] = [
        {"index": pos, "text": sents[pos], "p_yes": None, "p_no": None, "score": gain, "kept": not drop}
        for pos, gain, drop in zip(positions, gains, drops)
    ]
    keep = {s["index"] for s in scores if s["kept"]} | {q_index}
    result = FilterResult(problem=" ".join(s for i, s in enumerate(sents) if i in keep), question=sents[q_index],
                          scores=scores, dropped=[s["text"] for s in scores if not s["kept"]],
                          cost=cost_of(list(replies)))
    yield Emit("s2a.filter", {**event, "signal": "question", "scores": result.scores, "dropped": result.dropped})
    return result
