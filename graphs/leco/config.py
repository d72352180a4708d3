"""LECO's configuration: one frozen, validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.errors import InvalidRequestError
from graphs.validate import Options, check_choice, check_int, check_number, check_str, finite
from graphs.leco.policy import DEFAULT_SKIP_PHRASES
from graphs.leco.prompts import SYSTEM_PROMPT, USER_TEMPLATE

__all__ = ["MAX_RETHINKS_LIMIT", "MAX_RETHINK_SAMPLES", "LecoConfig"]

MAX_RETHINK_SAMPLES = 16
"""Hard ceiling on ``rethink_samples`` (continuations per cut, one batch)."""

MAX_RETHINKS_LIMIT = 7
"""Hard ceiling on ``max_rethinks`` that no argument lifts (each rethink is one graph step, so
the graph stays far inside LangGraph's default recursion limit of 25)."""


@dataclass(frozen=True)
class LecoConfig(Options):
    """How LECO scores steps, when it rethinks, and what it may spend."""

    k: int = 5
    """Alternatives per token (``top_logprobs``) and the k of top-k renormalisation."""
    prob_mode: Literal["true", "topk"] = "topk"
    """Token probability: ``"topk"`` (the reference: softmax over the top-k logprobs, comparable
    across adapters) or ``"true"`` (``exp(logprob)`` from the full distribution)."""
    transition_k: int = 5
    """K: the transition score averages the first K tokens after the ``Step N:`` label
    (reference: 5 for open models, 1 for the API path; the paper's text says 3)."""
    tau: float = 1 / 3
    """Exponent of the divergence score ``ln(KL^tau + 1)`` (the reference fixes 1/3)."""
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Weights of (average, transition, divergence): score = wa*avg + wt*trans - wd*div."""
    skip_phrases: tuple[str, ...] = DEFAULT_SKIP_PHRASES
    """Steps containing one of these (case-insensitive) are never chosen as the cut."""
    max_rethinks: int = 3
    """Most regenerations after the first attempt (the reference: 3); 0 disables rethinking."""
    max_tokens: int = 512
    """Most new tokens per attempt (the reference: 512; 1024 for MATH)."""
    max_completion_tokens: int = 2048
    """Most generated tokens over all attempts of a run (prompt tokens do not count); a
    rethink's ``max_tokens`` is capped by what is left, and LECO stops (then votes) when nothing
    is left."""
    temperature: float = 0.0
    """Sampling temperature of the first attempt; 0 is greedy (the reference)."""
    rethink_temperature: float | None = None
    """Temperature of rethinks; ``None``: same as ``temperature``. A greedy prefill rethink
    continues the model's own prefix, so it often reproduces the original continuation and
    agrees at once (it differs only where the prefix re-tokenises differently); raise this to
    explore other continuations."""
    rethink_samples: int = 1
    """Continuations sampled at each cut (1..16): one request with ``n`` replies (the local
    model decodes them as one batch; servers get ``n`` requests); every one is an attempt and
    votes. ``> 1`` needs sampling: ``rethink_temperature > 0`` (or ``temperature > 0``). A round
    of samples counts as one rethink; the next cut is on the round's plurality answer's first
    sample, and two consecutive rounds agree when their plurality answers are equal."""
    seed: int | None = None
    """Sampling seed (rethink i uses ``seed + i``), for reproducible sampling."""
    first_weight: float = 1.5
    """Vote weight of the first attempt's answer (the others weigh 1.0)."""
    regeneration: Literal["auto", "prefill", "chat"] = "auto"
    """How a rethink continues the prefix: ``"prefill"`` (continue the assistant text; needs
    ``model.capabilities.prefill``), ``"chat"`` (prefix in the user message, then
    ``Step {k+1}:``), or ``"auto"`` (prefill where the model can)."""
    system_prompt: str = SYSTEM_PROMPT
    """The system message asking for ``Step N:`` lines and ``The answer is X`` (``""``: none)."""
    user_template: str = USER_TEMPLATE
    """The first attempt's user message; ``{question}`` is replaced by the question. With
    :data:`~graphs.leco.prompts.PLAIN_FORMAT` (``system_prompt=""`` and the plain
    chain-of-thought instruction) LECO drafts as self-consistency samples do."""

    def __post_init__(self) -> None:
        check_int("k", self.k, minimum=1)
        check_int("transition_k", self.transition_k, minimum=1)
        check_int("max_rethinks", self.max_rethinks, minimum=0, maximum=MAX_RETHINKS_LIMIT,
                  why=" (a hard ceiling: every loop is bounded; the paper uses 3)")
        check_int("max_tokens", self.max_tokens, minimum=1)
        check_int("max_completion_tokens", self.max_completion_tokens, minimum=1)
        check_choice("prob_mode", self.prob_mode, ("true", "topk"))
        check_choice("regeneration", self.regeneration, ("auto", "prefill", "chat"))
        check_number("tau", self.tau, low=0, low_open=True, hint=", e.g. tau=1/3")
        if (not isinstance(self.weights, tuple) or len(self.weights) != 3
                or not all(finite(w) and w >= 0 for w in self.weights)):
            raise InvalidRequestError("weights", self.weights, "pass three numbers >= 0: (avg, trans, div)")
        check_number("temperature", self.temperature, low=0, high=5, hint="; 0 is greedy")
        check_number("rethink_temperature", self.rethink_temperature, low=0, high=5, allow_none=True,
                     hint="; 0 is greedy")
        check_int("rethink_samples", self.rethink_samples, minimum=1, maximum=MAX_RETHINK_SAMPLES,
                  why=" (a hard ceiling: one batch per cut)")
        rethink_temp = self.temperature if self.rethink_temperature is None else self.rethink_temperature
        if self.rethink_samples > 1 and rethink_temp == 0:
            raise InvalidRequestError(
                "rethink_temperature", self.rethink_temperature,
                f"rethink_samples={self.rethink_samples} needs sampling: pass rethink_temperature > 0, e.g. 0.7",
            )
        check_number("first_weight", self.first_weight, low=0, low_open=True, hint=" (the reference: 1.5)")
        check_int("seed", self.seed, minimum=0, maximum=2**31 - 1, allow_none=True)
        if not isinstance(self.skip_phrases, tuple) or not all(isinstance(p, str) and p for p in self.skip_phrases):
            raise InvalidRequestError("skip_phrases", self.skip_phrases, "pass a tuple of non-empty strings")
        check_str("system_prompt", self.system_prompt)
        if not isinstance(self.user_template, str) or "{question}" not in self.user_template:
            raise InvalidRequestError("user_template", self.user_template,
                                      "pass a string holding {question}, e.g. 'Question: {question}'")
