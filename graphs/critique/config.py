"""Configuration of the critique-revise graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.errors import InvalidRequestError

__all__ = ["MODES", "CritiqueConfig", "Mode"]

Mode = Literal["self-refine", "rci", "score"]
MODES: tuple[str, ...] = ("self-refine", "rci", "score")
_DEFAULT_TURNS = {"self-refine": 3, "rci": 2, "score": 1}


@dataclass(frozen=True)
class CritiqueConfig:
    """How the critique-revise loop runs and when it stops."""

    mode: Mode = "self-refine"
    """``"self-refine"`` (feedback, refine with the history; stops when the feedback says the
    answer is correct), ``"rci"`` (RCI's review/improve prompts; the self-critique never approves,
    so pass a verifier critic to stop on a check) or ``"score"`` (SCoRe two-attempt protocol:
    exactly one correction turn with an instruction that does not reveal correctness)."""
    max_turns: int | None = None
    """Most revise turns (critique then revise) after the first draft; 0 means draft only.
    ``None``: the mode's default (self-refine 3, i.e. Self-Refine's 4 attempts; rci 2; score 1).
    ``score`` mode requires 1 (two attempts)."""
    collapse_threshold: float = 0.02
    """Stop with ``"collapse"`` when a revision's normalised word edit distance to the previous
    draft is below this (the model barely edits). 0 disables."""
    confidence_threshold: float | None = None
    """Confidence gate: revise only when the draft's mean token probability is below this, so a
    confident draft is not talked out of its answer (stop reason ``"confident"``). ``None``
    disables; a draft without logprobs is never gated."""
    max_tokens: int = 512
    """Most tokens per draft."""
    critique_max_tokens: int = 384
    """Most tokens per model critique."""
    token_budget: int | None = 20_000
    """Stop with ``"budget"`` once the chain's prompt + completion tokens reach this; ``None``
    for no budget (``max_turns`` still bounds the loop)."""
    temperature: float = 0.0
    """Sampling temperature of drafts and model critiques (0: greedy)."""
    seed: int | None = None
    """Sampling seed (draft ``i`` uses ``seed + i``)."""
    system_prompt: str | None = None
    """An optional system message for every draft and model critique."""
    judge_threshold: float = 4.0
    """With a :class:`~graphs.judge.Judge` critic: approve when its score is at least this."""
    interrupt_before_revise: bool = False
    """Pause (``langgraph.types.interrupt``) before each revision so a person can approve, edit
    or reject the critique; resume with ``Command(resume={"action": ..., "critique": ...})``.
    Needs a checkpointer."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidRequestError("mode", self.mode, f"use one of {list(MODES)}")
        if self.max_turns is not None:
            if not isinstance(self.max_turns, int) or isinstance(self.max_turns, bool) or self.max_turns < 0:
                raise InvalidRequestError("max_turns", self.max_turns, "pass an integer >= 0, or None for the mode's default")
            if self.mode == "score" and self.max_turns != 1:
                raise InvalidRequestError(
                    "max_turns", self.max_turns, "score mode is the two-attempt protocol (one revise turn); leave max_turns=None"
                )
        if not isinstance(self.collapse_threshold, (int, float)) or not 0 <= self.collapse_threshold <= 1:
            raise InvalidRequestError("collapse_threshold", self.collapse_threshold, "pass a number in [0, 1]")
        if self.confidence_threshold is not None and not 0 < self.confidence_threshold <= 1:
            raise InvalidRequestError(
                "confidence_threshold", self.confidence_threshold, "pass a probability in (0, 1], e.g. 0.9, or None"
            )
        for name in ("max_tokens", "critique_max_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InvalidRequestError(name, v, "pass a positive integer")
        if self.token_budget is not None and (not isinstance(self.token_budget, int) or self.token_budget < 1):
            raise InvalidRequestError("token_budget", self.token_budget, "pass a positive integer or None")
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 5:
            raise InvalidRequestError("temperature", self.temperature, "pass a number in [0, 5]")

    @property
    def turn_limit(self) -> int:
        """The most drafts: the first one plus the effective ``max_turns`` revisions."""
        return 1 + (self.max_turns if self.max_turns is not None else _DEFAULT_TURNS[self.mode])
