"""Configuration of the self-consistency chain."""

from __future__ import annotations

from dataclasses import dataclass

from graphs.validate import Options, check_int, check_number, check_str

__all__ = ["SC_INSTRUCTION", "ScConfig"]

SC_INSTRUCTION = "Solve the problem step by step, then end with \"The answer is X.\""
"""Appended to the question (the same instruction as the other chains' first draft)."""


@dataclass(frozen=True)
class ScConfig(Options):
    """How many solutions to sample, and how."""

    k: int = 5
    """Sampled solutions per question (one batch); 1..64."""
    temperature: float = 0.7
    """Sampling temperature, in (0, 2]: greedy samples would all be the same solution."""
    max_tokens: int = 512
    """Most tokens per solution; 1..8192."""
    seed: int | None = 0
    """Sample ``i`` uses seed ``seed + i`` (reproducible on adapters that honour seeds);
    ``None``: unseeded."""
    system_prompt: str | None = None
    """An optional system message before the question."""

    def __post_init__(self) -> None:
        check_int("k", self.k, minimum=1, maximum=64)
        check_number("temperature", self.temperature, low=0, high=2, low_open=True,
                     hint="; self-consistency needs sampling (temperature > 0)")
        check_int("max_tokens", self.max_tokens, minimum=1, maximum=8192)
        check_int("seed", self.seed, minimum=0, allow_none=True)
        if self.system_prompt is not None:
            check_str("system_prompt", self.system_prompt, nonempty=True)
