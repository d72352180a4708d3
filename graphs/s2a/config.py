"""S2A configuration: which rewrite prompt, which variant, and the bounds."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from adapters.errors import InvalidRequestError
from graphs.s2a.prompts import DEFAULT_ANSWER_FORMAT, DEFAULT_INSTRUCTION, RewritePrompt, builtin_rewrite

__all__ = ["VARIANTS", "S2AConfig"]

VARIANTS = ("split", "single", "keep_original")
"""``split``: context and question sections (the paper's default); ``single``: one rewritten
section; ``keep_original``: like split, and the answer step also sees the original input,
marked as possibly biased."""


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidRequestError(name, value, "pass a positive integer")


@dataclass(frozen=True)
class S2AConfig:
    """How the S2A graph rewrites and answers.

    The no-instruction variant of the paper is ``instruction=""``. The graph makes exactly one
    rewrite call and one answer step (no loop), so its iteration bound is fixed;
    ``token_budget`` caps the generated tokens of both model calls together.
    """

    rewrite: str | RewritePrompt = "opinion"
    """``"opinion"`` (remove the user's opinion), ``"irrelevant"`` (GSM-IC: remove unrelated
    sentences) or a custom :class:`RewritePrompt` (one label for ``single``, two otherwise)."""
    variant: str = "split"
    """One of :data:`VARIANTS`."""
    instruction: str = DEFAULT_INSTRUCTION
    """Appended to the answer prompt; ``""`` is the paper's no-instruction variant."""
    answer_format: str = DEFAULT_ANSWER_FORMAT
    """Appended to the plain answer prompt so the final answer can be extracted; not sent to an
    answer subgraph (which has its own format)."""
    rewrite_max_tokens: int = 512
    """Most tokens the rewrite may generate."""
    answer_max_tokens: int = 512
    """Most tokens the plain answer step may generate."""
    temperature: float = 0.0
    """Sampling temperature of both calls (0: greedy)."""
    token_budget: int | None = None
    """Cap on generated tokens over the rewrite and the plain answer call (``None``: none). When
    the rewrite used it all, the answer step is skipped and ``stop_reason`` says so."""
    min_kept_overlap: float = 0.5
    """A sentence of the input counts as kept by the rewrite when at least this share of its word
    bigrams appear there (for the ``removed`` trace)."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise InvalidRequestError("variant", self.variant, f"use one of {list(VARIANTS)}")
        if isinstance(self.rewrite, str):
            builtin_rewrite(self.rewrite, single=self.variant == "single")  # validates the name
        elif isinstance(self.rewrite, RewritePrompt):
            if self.rewrite.single != (self.variant == "single"):
                need = "one label (question_label=None)" if self.variant == "single" else "two labels"
                raise InvalidRequestError(
                    "rewrite", self.rewrite.name, f"variant {self.variant!r} needs a prompt with {need}"
                )
        else:
            raise InvalidRequestError(
                "rewrite", self.rewrite, "use 'opinion', 'irrelevant' or a RewritePrompt"
            )
        for name in ("instruction", "answer_format"):
            if not isinstance(getattr(self, name), str):
                raise InvalidRequestError(name, getattr(self, name), "pass a string ('' for none)")
        _positive_int("rewrite_max_tokens", self.rewrite_max_tokens)
        _positive_int("answer_max_tokens", self.answer_max_tokens)
        if self.token_budget is not None:
            _positive_int("token_budget", self.token_budget)
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 5:
            raise InvalidRequestError("temperature", self.temperature, "pass a number in [0, 5]")
        if not isinstance(self.min_kept_overlap, (int, float)) or not 0 < self.min_kept_overlap <= 1:
            raise InvalidRequestError("min_kept_overlap", self.min_kept_overlap, "pass a number in (0, 1]")

    @property
    def prompt(self) -> RewritePrompt:
        """The rewrite prompt this config uses."""
        if isinstance(self.rewrite, RewritePrompt):
            return self.rewrite
        return builtin_rewrite(self.rewrite, single=self.variant == "single")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the config fields (for validating overrides)."""
        return tuple(f.name for f in fields(cls))

    def with_overrides(self, **overrides: Any) -> S2AConfig:
        """A copy with ``overrides`` applied (unknown names raise)."""
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise InvalidRequestError(
                "overrides", unknown, f"S2AConfig has no such field; use {list(self.field_names())}"
            )
        return replace(self, **overrides)
