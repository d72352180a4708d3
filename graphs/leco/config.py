"""LECO's configuration: one frozen, validated dataclass."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

from adapters.errors import InvalidRequestError
from graphs.leco.policy import DEFAULT_SKIP_PHRASES
from graphs.leco.prompts import SYSTEM_PROMPT

__all__ = ["MAX_RETHINKS_LIMIT", "LecoConfig"]

MAX_RETHINKS_LIMIT = 7
"""Upper bound on ``max_rethinks``: each rethink is three graph steps (regenerate, score,
decide), so 7 rethinks (25 steps in all) fit LangGraph's default recursion limit of 25."""


@dataclass(frozen=True)
class LecoConfig:
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
    token_budget: int = 2048
    """Most completion tokens over all attempts; a rethink's ``max_tokens`` is capped by what is
    left, and LECO stops (then votes) when nothing is left."""
    temperature: float = 0.0
    """Sampling temperature of the first attempt; 0 is greedy (the reference)."""
    rethink_temperature: float | None = None
    """Temperature of rethinks; ``None``: same as ``temperature``. A greedy prefill rethink
    continues the model's own prefix, so it often reproduces the original continuation and
    agrees at once (it differs only where the prefix re-tokenises differently); raise this to
    explore other continuations."""
    seed: int | None = None
    """Sampling seed (rethink i uses ``seed + i``), for reproducible sampling."""
    first_weight: float = 1.5
    """Vote weight of the first attempt's answer (the others weigh 1.0)."""
    regeneration: Literal["auto", "prefill", "chat"] = "auto"
    """How a rethink continues the prefix: ``"prefill"`` (continue the assistant text; needs
    ``model.capabilities.prefill``), ``"chat"`` (prefix in the user message, then
    ``Step {k+1}:``), or ``"auto"`` (prefill where the model can)."""
    system_prompt: str = SYSTEM_PROMPT
    """The system message asking for ``Step N:`` lines and ``The answer is X``."""

    def __post_init__(self) -> None:
        _int_at_least("k", self.k, 1)
        _int_at_least("transition_k", self.transition_k, 1)
        _int_at_least("max_rethinks", self.max_rethinks, 0)
        _int_at_least("max_tokens", self.max_tokens, 1)
        _int_at_least("token_budget", self.token_budget, 1)
        if self.max_rethinks > MAX_RETHINKS_LIMIT:
            raise InvalidRequestError(
                "max_rethinks", self.max_rethinks,
                f"pass at most {MAX_RETHINKS_LIMIT} (each rethink costs 3 graph steps; the paper uses 3)",
            )
        if self.prob_mode not in ("true", "topk"):
            raise InvalidRequestError("prob_mode", self.prob_mode, "use 'true' or 'topk'")
        if self.regeneration not in ("auto", "prefill", "chat"):
            raise InvalidRequestError("regeneration", self.regeneration, "use 'auto', 'prefill' or 'chat'")
        if not _finite(self.tau) or self.tau <= 0:
            raise InvalidRequestError("tau", self.tau, "pass a number > 0, e.g. tau=1/3")
        if (not isinstance(self.weights, tuple) or len(self.weights) != 3
                or not all(_finite(w) and w >= 0 for w in self.weights)):
            raise InvalidRequestError("weights", self.weights, "pass three numbers >= 0: (avg, trans, div)")
        for name in ("temperature", "rethink_temperature"):
            t = getattr(self, name)
            if t is not None and (not _finite(t) or not 0 <= t <= 5):
                raise InvalidRequestError(name, t, "pass a number in [0, 5]; 0 is greedy")
        if not _finite(self.first_weight) or self.first_weight <= 0:
            raise InvalidRequestError("first_weight", self.first_weight, "pass a number > 0 (the reference: 1.5)")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise InvalidRequestError("seed", self.seed, "pass an integer or None")
        if not isinstance(self.skip_phrases, tuple) or not all(isinstance(p, str) and p for p in self.skip_phrases):
            raise InvalidRequestError("skip_phrases", self.skip_phrases, "pass a tuple of non-empty strings")
        if not isinstance(self.system_prompt, str):
            raise InvalidRequestError("system_prompt", self.system_prompt, "pass a string")

    @classmethod
    def from_options(cls, options: dict[str, Any] | None = None, base: LecoConfig | None = None) -> LecoConfig:
        """A config from ``base`` (default: the defaults) with ``options`` applied; unknown
        keys raise :class:`InvalidRequestError`. Lists become tuples (JSON/CLI friendly)."""
        from dataclasses import replace

        names = {f.name for f in fields(cls)}
        opts = dict(options or {})
        unknown = sorted(set(opts) - names)
        if unknown:
            raise InvalidRequestError("options", unknown, f"LecoConfig accepts: {', '.join(sorted(names))}")
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}
        return replace(base or cls(), **opts)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int_at_least(name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InvalidRequestError(name, value, f"pass an integer >= {low}")
