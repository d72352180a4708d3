"""Pluggable critics: the same model, another model, a verifier function, a judge, a fixed text.

A critic is two pure halves around at most one model call, so every driver (the graph, the
middleware) runs it the same way: ``ask(question, draft, reference)`` returns the
:class:`~graphs.loop.ModelCall` to make (``target="critic"``; ``None`` for no call), and
``read(question, draft, reference, reply)`` turns the reply (an
:class:`~adapters.types.Generation`, a list of them for a judge, or ``None``) into a
:class:`Critique`. ``model`` is the model a graph routes ``target="critic"`` to (``None``: the
drafting model).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from graphs.answers import answers_equal, extract_answer
from graphs.critique.config import CritiqueConfig
from graphs.critique.policy import parse_verdict, read_verdict
from graphs.critique.prompts import SCORE_INSTRUCTION, critique_extra
from graphs.judge.judge import Judge
from graphs.judge.prompts import pointwise_messages
from graphs.loop import ModelCall

__all__ = [
    "Critic",
    "Critique",
    "InstructionCritic",
    "JudgeCritic",
    "ModelCritic",
    "Verifier",
    "VerifierCritic",
    "answer_match_verifier",
    "make_critic",
    "uses_gate",
]

Verifier = Callable[[str, str, "str | None"], Any]
"""``verifier(question, response, reference) -> ok`` or ``(ok, feedback)`` (see
:func:`graphs.critique.policy.read_verdict` for what counts as approval)."""


@dataclass(frozen=True)
class Critique:
    """What a critic said about one draft."""

    text: str
    """The feedback shown to the reviser."""
    approved: bool | None
    """``True``: stop, the draft is accepted; ``False``: revise; ``None``: no verdict (revise)."""
    score: float | None = None
    """A judge's score, when the critic is a judge."""
    replacement: str | None = None
    """A corrected response the critic vouches for (the program critic's printed result with
    ``resolve="program"``): on a disapproval the loop takes it as the next draft without a
    revision call and stops (``"replaced"``)."""
    vote: bool = False
    """With a ``replacement`` (``resolve="vote"``): first draw the gate's sampled second solution;
    if it sides with the draft (:func:`~graphs.critique.policy.replacement_stands`) the draft
    stays (``"agreement"``), otherwise the replacement is taken as above."""


@runtime_checkable
class Critic(Protocol):
    """The critic interface (see the module docstring)."""

    model: Any

    def ask(self, question: str, draft: str, reference: str | None) -> ModelCall | None: ...

    def read(self, question: str, draft: str, reference: str | None, reply: Any) -> Critique: ...


class ModelCritic:
    """A model critiques the draft with the mode's prompt (Self-Refine feedback or RCI review),
    appended to the host conversation.

    In ``self-refine`` mode approval is parsed from ``Verdict: correct|incorrect``; in ``rci``
    mode the review has no verdict (RCI never stops itself). ``model=None``: the drafting model
    (the agent's own model in the middleware).
    """

    def __init__(self, model: Any, config: CritiqueConfig) -> None:
        self.model = model
        self.config = config

    def ask(self, question: str, draft: str, reference: str | None) -> ModelCall:
        c = self.config
        return ModelCall(
            "critique", target="critic", extra=critique_extra(c.mode, draft, c.feedback_prompt),
            max_tokens=c.critique_max_tokens, temperature=c.temperature, seed=c.seed,
        )

    def read(self, question: str, draft: str, reference: str | None, reply: Any) -> Critique:
        text = reply.text.strip()
        approved = parse_verdict(text) if self.config.mode == "self-refine" else None
        return Critique(text=text, approved=approved)


class VerifierCritic:
    """A function checks the draft (exact answer match, unit tests...); no model call.

    Its signature is checked here (three positional arguments), and what it returns is checked
    at each call: only ``True`` (or ``(True, feedback)``, or a review that approves) approves;
    a string such as ``"no"`` raises :class:`InvalidRequestError`.
    """

    model = None

    def __init__(self, verifier: Verifier) -> None:
        _check_signature(verifier)
        self.verifier = verifier

    def ask(self, question: str, draft: str, reference: str | None) -> None:
        return None

    def read(self, question: str, draft: str, reference: str | None, reply: Any) -> Critique:
        ok, msg = read_verdict(self.verifier(question, draft, reference))
        if not msg:
            msg = "The answer passed the check." if ok else "The answer failed the check. Find the error and fix it."
        return Critique(text=msg, approved=ok)


def _check_signature(verifier: Any) -> None:
    try:
        inspect.signature(verifier).bind("question", "response", "reference")
    except TypeError as e:
        raise InvalidRequestError(
            "critic", verifier, f"a verifier is called as f(question, response, reference); yours does not accept that ({e})"
        ) from None
    except ValueError:  # builtins without a signature: checked at the call
        pass


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
    """A :class:`~graphs.judge.Judge` scores the draft (``k`` samples); approve when the score
    is at least ``threshold``."""

    def __init__(self, judge: Judge, threshold: float) -> None:
        self.judge = judge
        self.model = judge.model
        self.threshold = threshold

    def ask(self, question: str, draft: str, reference: str | None) -> ModelCall:
        j = self.judge
        return ModelCall(
            "critique", target="critic", messages=tuple(pointwise_messages(question, draft)),
            max_tokens=j.max_tokens, temperature=j.temperature, seed=j.seed,
            top_logprobs=j.top_logprobs, n=j.k,
        )

    def read(self, question: str, draft: str, reference: str | None, reply: Any) -> Critique:
        gens = reply if isinstance(reply, list) else [reply]
        res = self.judge.score_results(gens)[0]
        score = res.best_score
        parsed = next((s.raw for s in res.samples if s.status == "ok"), res.samples[0].raw)
        approved = None if score is None else score >= self.threshold
        return Critique(text=parsed.strip(), approved=approved, score=score)


class InstructionCritic:
    """A fixed instruction, no call and no verdict (SCoRe's correction instruction)."""

    model = None

    def __init__(self, text: str = SCORE_INSTRUCTION) -> None:
        self.text = text

    def ask(self, question: str, draft: str, reference: str | None) -> None:
        return None

    def read(self, question: str, draft: str, reference: str | None, reply: Any) -> Critique:
        return Critique(text=self.text, approved=None)


def make_critic(critic: Any, config: CritiqueConfig, *, chat: Callable[[Any], Any] | None = None) -> Critic:
    """The critic for ``critic``: ``None``/``"self"`` (the drafting model; ``None`` is gated,
    see :func:`uses_gate`), a :class:`Critic`,
    a :class:`~graphs.judge.Judge`, a model spec or :class:`LogprobModel` (another model), or a
    verifier function. ``chat``: how a driver turns a chat model into its critic model (the
    middleware keeps LangChain chat models as they are; graphs resolve to a ``LogprobModel``)."""
    if config.mode == "score":
        if critic not in (None, "self"):
            raise InvalidRequestError(
                "critic", critic, "score mode uses SCoRe's fixed instruction; pass a critic only in self-refine or rci mode"
            )
        return InstructionCritic()
    if critic is None or (isinstance(critic, str) and critic == "self"):
        return ModelCritic(None, config)
    if isinstance(critic, str) and critic == "program":
        from graphs.critique.program import ProgramCritic

        return ProgramCritic(max_tokens=config.critique_max_tokens,  # a critique call's budget, as the others
                             samples=config.program_samples, seed=config.seed)
    if isinstance(critic, Judge):
        return JudgeCritic(critic, config.judge_threshold)
    if isinstance(critic, Critic):
        return critic
    if isinstance(critic, (str, LogprobModel)) or hasattr(critic, "invoke"):
        return ModelCritic((chat or resolve_model)(critic), config)
    if callable(critic):
        return VerifierCritic(critic)
    raise InvalidRequestError(
        "critic", critic, "pass None (same model, gated), 'self', 'program', a model spec, a LogprobModel, a chat model, a Judge, or a verifier function"
    )


def uses_gate(critic: Any, config: CritiqueConfig) -> bool:
    """Whether the disagreement gate runs (see :attr:`CritiqueConfig.gate`): always with
    ``gate="disagreement"``, never with ``"off"``; with ``"auto"`` only for the default critic
    (``critic=None``: intrinsic critique by the drafting model, no external signal)."""
    if config.gate == "auto":
        return critic is None
    return config.gate == "disagreement"
