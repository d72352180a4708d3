"""LLM-as-a-judge: pointwise (additive 5-point rubric, k samples) and pairwise (position swap).

Requests are built and results aggregated by pure helpers; the sync and async entry points
differ only in ``model.batch`` versus ``await model.abatch``. Every call of a method batches all
its requests (k samples x items, or 2 orders x pairs) into one bounded fan-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import Generation, GenerationRequest
from graphs.common import usage_of
from graphs.judge.policy import (
    Preference,
    ScoreStatus,
    expected_score,
    mean_or_none,
    pairwise_winner,
    parse_preference,
    parse_score,
)
from graphs.judge.prompts import pairwise_messages, pointwise_messages

__all__ = ["Judge", "JudgeResult", "JudgeScore", "PairwiseResult"]


@dataclass(frozen=True)
class JudgeScore:
    """One judge sample: the parsed score, or a typed failure (never a silent zero)."""

    score: int | None
    """The sampled ``Score: N`` (``None`` unless ``status == "ok"``)."""
    status: ScoreStatus
    """``"ok"``, ``"parse_error"`` (no ``Score:``) or ``"out_of_range"``."""
    raw: str
    """The judge's full text (justification then score)."""
    expected: float | None = None
    """Expected score from the digit token's ``top_logprobs`` (``None`` without them)."""


@dataclass(frozen=True)
class JudgeResult:
    """Pointwise verdict on one response: k samples and their averages."""

    samples: tuple[JudgeScore, ...]
    """Every judge sample, in seed order."""
    score: float | None
    """Mean sampled score over the samples that parsed; ``None`` if none did."""
    expected: float | None
    """Mean logprob-expected score over the samples that have one (finer than ``score``)."""
    parse_errors: int
    """Samples whose score did not parse or was out of range."""
    usage: dict[str, int] = field(default_factory=dict)
    """Tokens and calls spent on this response."""

    @property
    def best_score(self) -> float | None:
        """``expected`` when available, else ``score``."""
        return self.expected if self.expected is not None else self.score

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "score": self.score,
            "expected": self.expected,
            "parse_errors": self.parse_errors,
            "samples": [vars(s) for s in self.samples],
            "usage": dict(self.usage),
        }


@dataclass(frozen=True)
class PairwiseResult:
    """Pairwise verdict between responses ``a`` and ``b`` (asked as A/B, then B/A)."""

    winner: Preference | None
    """``"A"`` (a wins in both orders), ``"B"``, ``"tie"`` (a tie or inconsistent orders), or
    ``None`` when either order failed to parse."""
    first: Preference | None
    """Verdict with a shown as A."""
    swapped: Preference | None
    """Verdict with b shown as A (in that round's labels)."""
    status: Literal["ok", "parse_error"]
    """``"parse_error"`` when either order gave no ``Winner:``."""
    raw: tuple[str, str]
    """The two judge texts."""
    usage: dict[str, int] = field(default_factory=dict)
    """Tokens and calls spent."""

    @property
    def consistent(self) -> bool:
        """Both orders named the same response (or both said tie)."""
        return self.status == "ok" and (self.winner != "tie" or self.first == self.swapped == "tie")


class Judge:
    """An LLM judge over any model spec.

    Args:
        model: anything :func:`adapters.specs.resolve_model` accepts.
        k: judge samples averaged per response (the paper averages 3).
        temperature: sampling temperature; must be > 0 when ``k > 1``.
        top_p: nucleus mass for sampling.
        seed: sample ``i`` uses ``seed + i`` (reproducible).
        max_tokens: judge reply length.
        top_logprobs: alternatives per token for the expected score (capped at the model's limit;
            0 turns the expected score off).
        max_score: the rubric's top score (5).
        max_concurrency: bound of the batched fan-out.
    """

    def __init__(
        self,
        model: Any,
        *,
        k: int = 3,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
        max_tokens: int = 256,
        top_logprobs: int = 10,
        max_score: int = 5,
        max_concurrency: int = 4,
    ) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidRequestError("k", k, "pass the number of judge samples, an integer >= 1")
        if k > 1 and temperature <= 0:
            raise InvalidRequestError(
                "temperature", temperature, f"averaging k={k} samples needs temperature > 0 (e.g. 0.7), or pass k=1"
            )
        if not isinstance(max_score, int) or not 1 <= max_score <= 9:
            raise InvalidRequestError("max_score", max_score, "pass an integer in 1..9 (one digit)")
        self.model: LogprobModel = resolve_model(model)
        self.k, self.temperature, self.top_p, self.seed = k, temperature, top_p, seed
        self.max_tokens, self.max_score, self.max_concurrency = max_tokens, max_score, max_concurrency
        caps = self.model.capabilities
        self.top_logprobs = min(top_logprobs, caps.max_top_logprobs) if caps.logprobs else 0
        # validate the sampling arguments once, now, rather than on the first call
        self._req([{"role": "user", "content": "x"}], 0)

    def _req(self, messages: Any, i: int) -> GenerationRequest:
        return self.model.request(
            messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed + i,
            top_logprobs=self.top_logprobs,
        )

    # -- pointwise: pure halves ------------------------------------------------------------------
    def score_requests(self, items: Sequence[tuple[str, str]]) -> list[GenerationRequest]:
        """k requests per ``(question, response)``, item-major."""
        return [self._req(pointwise_messages(q, r), i) for q, r in items for i in range(self.k)]

    def read_score(self, gen: Generation) -> JudgeScore:
        """One sample's parsed score (and expected score when logprobs allow)."""
        score, status, pos = parse_score(gen.text, self.max_score)
        exp = expected_score(gen.tokens, pos, self.max_score) if status == "ok" else None
        return JudgeScore(score=score, status=status, raw=gen.text, expected=exp)

    def score_results(self, gens: Sequence[Generation]) -> list[JudgeResult]:
        """Group ``gens`` (item-major, k per item) into one :class:`JudgeResult` per item."""
        out = []
        for start in range(0, len(gens), self.k):
            chunk = list(gens[start : start + self.k])
            samples = tuple(self.read_score(g) for g in chunk)
            out.append(
                JudgeResult(
                    samples=samples,
                    score=mean_or_none([s.score for s in samples]),
                    expected=mean_or_none([s.expected for s in samples]),
                    parse_errors=sum(s.status != "ok" for s in samples),
                    usage=usage_of(chunk),
                )
            )
        return out

    # -- pointwise: sync and async ---------------------------------------------------------------
    def score(self, question: str, response: str) -> JudgeResult:
        """Score one response with the additive rubric (k samples averaged)."""
        return self.score_many([(question, response)])[0]

    def score_many(self, items: Sequence[tuple[str, str]]) -> list[JudgeResult]:
        """Score many ``(question, response)`` pairs in one batched fan-out."""
        gens = self.model.batch(self.score_requests(items), max_concurrency=self.max_concurrency)
        return self.score_results(gens)

    async def ascore(self, question: str, response: str) -> JudgeResult:
        """Async :meth:`score`."""
        return (await self.ascore_many([(question, response)]))[0]

    async def ascore_many(self, items: Sequence[tuple[str, str]]) -> list[JudgeResult]:
        """Async :meth:`score_many`."""
        gens = await self.model.abatch(self.score_requests(items), max_concurrency=self.max_concurrency)
        return self.score_results(gens)

    # -- pairwise ----------------------------------------------------------------------------------
    def compare_requests(self, items: Sequence[tuple[str, str, str]]) -> list[GenerationRequest]:
        """Two requests per ``(question, a, b)``: a shown first, then b shown first."""
        reqs = []
        for q, a, b in items:
            reqs.append(self._req(pairwise_messages(q, a, b), 0))
            reqs.append(self._req(pairwise_messages(q, b, a), 0))
        return reqs

    @staticmethod
    def compare_results(gens: Sequence[Generation]) -> list[PairwiseResult]:
        """One :class:`PairwiseResult` per consecutive (A/B, B/A) pair of generations."""
        out = []
        for i in range(0, len(gens), 2):
            g1, g2 = gens[i], gens[i + 1]
            first, swapped = parse_preference(g1.text), parse_preference(g2.text)
            out.append(
                PairwiseResult(
                    winner=pairwise_winner(first, swapped),
                    first=first,
                    swapped=swapped,
                    status="ok" if first is not None and swapped is not None else "parse_error",
                    raw=(g1.text, g2.text),
                    usage=usage_of([g1, g2]),
                )
            )
        return out

    def compare(self, question: str, a: str, b: str) -> PairwiseResult:
        """Which of ``a`` and ``b`` answers ``question`` better (both orders must agree)."""
        return self.compare_many([(question, a, b)])[0]

    def compare_many(self, items: Sequence[tuple[str, str, str]]) -> list[PairwiseResult]:
        """Batched :meth:`compare`."""
        gens = self.model.batch(self.compare_requests(items), max_concurrency=self.max_concurrency)
        return self.compare_results(gens)

    async def acompare(self, question: str, a: str, b: str) -> PairwiseResult:
        """Async :meth:`compare`."""
        return (await self.acompare_many([(question, a, b)]))[0]

    async def acompare_many(self, items: Sequence[tuple[str, str, str]]) -> list[PairwiseResult]:
        """Async :meth:`compare_many`."""
        gens = await self.model.abatch(self.compare_requests(items), max_concurrency=self.max_concurrency)
        return self.compare_results(gens)

    def __repr__(self) -> str:
        return f"Judge(model={self.model.name!r}, k={self.k}, temperature={self.temperature})"
