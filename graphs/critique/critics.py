"""Pluggable critics: the same model, another model, a verifier function, a judge, a fixed text.

A critic is two pure halves, like a graph node (see :func:`graphs.common.model_node`):
``prepare(question, draft, reference)`` returns the request(s) to send to ``critic.model`` (or
``None`` for no call) and ``read(question, draft, reference, result)`` turns the result into a
:class:`Critique`. The graph runs both around one model call, sync or async.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import GenerationRequest
from graphs.answers import answers_equal, extract_answer
from graphs.critique.config import CritiqueConfig
from graphs.critique.policy import parse_verdict
from graphs.critique.prompts import SCORE_INSTRUCTION, critique_messages
from graphs.judge.judge import Judge

__all__ = [
    "Critic",
    "Critique",
    "InstructionCritic",
    "JudgeCritic",
    "ModelCritic",
    "VerifierCritic",
    "Verifier",
    "answer_match_verifier",
    "make_critic",
]

Verifier = Callable[[str, str, "str | None"], "bool | tuple[bool, str]"]
"""``verifier(question, response, reference) -> ok`` or ``(ok, message)``."""


@dataclass(frozen=True)
class Critique:
    """What a critic said about one draft."""

    text: str
    """The feedback shown to the reviser."""
    approved: bool | None
    """``True``: stop, the draft is accepted; ``False``: revise; ``None``: no verdict (revise)."""
    score: float | None = None
    """A judge's score, when the critic is a judge."""


@runtime_checkable
class Critic(Protocol):
    """The critic interface (see the module docstring)."""

    model: LogprobModel | None

    def prepare(self, question: str, draft: str, reference: str | None) -> Any: ...

    def read(self, question: str, draft: str, reference: str | None, result: Any) -> Critique: ...


class ModelCritic:
    """A model critiques the draft with the mode's prompt (Self-Refine feedback or RCI review).

    In ``self-refine`` mode approval is parsed from ``Verdict: correct|incorrect``; in ``rci``
    mode the review has no verdict (RCI never stops itself).
    """

    def __init__(self, model: Any, config: CritiqueConfig) -> None:
        self.model = resolve_model(model)
        self.config = config

    def prepare(self, question: str, draft: str, reference: str | None) -> GenerationRequest:
        c = self.config
        return self.model.request(
            critique_messages(c.mode, question, draft, c.system_prompt),
            max_tokens=c.critique_max_tokens,
            temperature=c.temperature,
            seed=c.seed,
        )

    def read(self, question: str, draft: str, reference: str | None, result: Any) -> Critique:
        text = result.text.strip()
        approved = parse_verdict(text) if self.config.mode == "self-refine" else None
        return Critique(text=text, approved=approved)


class VerifierCritic:
    """A function checks the draft (exact answer match, unit tests...); no model call."""

    model = None

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def prepare(self, question: str, draft: str, reference: str | None) -> None:
        return None

    def read(self, question: str, draft: str, reference: str | None, result: Any) -> Critique:
        out = self.verifier(question, draft, reference)
        ok, msg = out if isinstance(out, tuple) else (bool(out), "")
        if not msg:
            msg = "The answer passed the check." if ok else (
                "The answer failed the check. Find the error and fix it."
            )
        return Critique(text=msg, approved=bool(ok))


def answer_match_verifier(question: str, response: str, reference: str | None) -> tuple[bool, str]:
    """Verifier: the response's final answer equals the reference's (``graphs.answers``).

    The message says whether it matched, never the reference answer itself.
    """
    if reference is None:
        raise InvalidRequestError(
            "reference", None, "answer_match_verifier needs the gold answer: invoke with {'question': ..., 'reference': ...}"
        )
    got, gold = extract_answer(response), extract_answer(reference)
    if answers_equal(got, gold):
        return True, "The final answer is correct."
    if got is None:
        return False, "The response states no final answer. Solve it and end with \"The answer is X.\""
    return False, f"The final answer ({got}) is not correct. Find the error and fix it."


class JudgeCritic:
    """A :class:`~graphs.judge.Judge` scores the draft; approve when the score >= ``threshold``."""

    def __init__(self, judge: Judge, threshold: float) -> None:
        self.judge = judge
        self.model = judge.model
        self.threshold = threshold

    def prepare(self, question: str, draft: str, reference: str | None) -> list[GenerationRequest]:
        return self.judge.score_requests([(question, draft)])

    def read(self, question: str, draft: str, reference: str | None, result: Any) -> Critique:
        res = self.judge.score_results(list(result))[0]
        score = res.best_score
        parsed = next((s.raw for s in res.samples if s.status == "ok"), res.samples[0].raw)
        approved = None if score is None else score >= self.threshold
        return Critique(text=parsed.strip(), approved=approved, score=score)


class InstructionCritic:
    """A fixed instruction, no call and no verdict (SCoRe's correction instruction)."""

    model = None

    def __init__(self, text: str = SCORE_INSTRUCTION) -> None:
        self.text = text

    def prepare(self, question: str, draft: str, reference: str | None) -> None:
        return None

    def read(self, question: str, draft: str, reference: str | None, result: Any) -> Critique:
        return Critique(text=self.text, approved=None)


def make_critic(critic: Any, model: LogprobModel, config: CritiqueConfig) -> Critic:
    """The critic for ``critic``: ``None``/``"self"`` (the drafting model), a :class:`Critic`,
    a :class:`~graphs.judge.Judge`, a model spec or :class:`LogprobModel` (another model), or a
    verifier function."""
    if config.mode == "score":
        if critic not in (None, "self"):
            raise InvalidRequestError(
                "critic", critic, "score mode uses SCoRe's fixed instruction; pass a critic only in self-refine or rci mode"
            )
        return InstructionCritic()
    if critic is None or critic == "self":
        return ModelCritic(model, config)
    if isinstance(critic, Judge):
        return JudgeCritic(critic, config.judge_threshold)
    if isinstance(critic, Critic):
        return critic
    if isinstance(critic, (str, LogprobModel)) or hasattr(critic, "invoke"):
        return ModelCritic(critic, config)
    if callable(critic):
        return VerifierCritic(critic)
    raise InvalidRequestError(
        "critic", critic, "pass None (same model), a model spec, a LogprobModel, a Judge, or a verifier function"
    )
