"""``score``: SCoRe two-attempt traces with verifier rewards (methods.md section 3).

Per problem (and sample), the critique graph in ``score`` mode writes attempt 1, sees SCoRe's
correction instruction and writes attempt 2. The verifier (the final answer matches the gold
answer, :func:`graphs.critique.answer_match_verifier`) gives binary rewards r1 and r2; the record
keeps them, SCoRe's stage-II bonus ``alpha * (r2 - r1)``, the edit distance between attempts and
the conversation (user question, attempt 1, instruction, attempt 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from adapters.errors import InvalidRequestError
from sc_chains.datagen.common import ModelRef, check_int, check_number
from sc_chains.datasets import Problem

__all__ = ["REWARDS", "ScoreConfig", "ScoreGenerator", "shaped_reward", "transition"]

REWARDS = ("answer_match", "program")
"""How attempts are rewarded (see :attr:`ScoreConfig.reward`)."""


@dataclass(frozen=True)
class ScoreConfig:
    """Settings of the ``score`` generator."""

    alpha: float = 10.0
    """Weight of the progress bonus ``alpha * (r2 - r1)`` (SCoRe stage II: 10)."""
    samples: int = 1
    """Two-attempt traces per problem. More than one needs a temperature > 0."""
    temperature: float | None = None
    """Sampling temperature of both attempts; ``None``: 0 (greedy) for one sample, 0.7 for more."""
    seed: int = 0
    """Base seed: sample ``s`` drafts with seeds ``seed + 2*s`` and ``seed + 2*s + 1``."""
    max_tokens: int = 512
    """Most tokens per attempt."""
    reward: str = "answer_match"
    """``"answer_match"``: an attempt is correct when its final answer equals the gold answer;
    ``"program"``: when the attempt's own Python, run in the sandbox, prints its final answer
    (:func:`graphs.critique.program.program_verifier`: no gold answer used; opt-in, it runs
    model-written code)."""

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise InvalidRequestError("reward", self.reward, f"use one of {', '.join(REWARDS)}")
        check_number("alpha", self.alpha, 0, 1e6)
        check_int("samples", self.samples, 1)
        check_int("max_tokens", self.max_tokens, 1)
        check_int("seed", self.seed, 0)
        if self.temperature is not None:
            check_number("temperature", self.temperature, 0, 5)
        if self.samples > 1 and self.effective_temperature == 0:
            raise InvalidRequestError(
                "temperature", self.temperature, f"{self.samples} samples per problem need a temperature > 0, e.g. 0.7"
            )

    @property
    def effective_temperature(self) -> float:
        """The temperature used (see :attr:`temperature`)."""
        if self.temperature is not None:
            return float(self.temperature)
        return 0.0 if self.samples == 1 else 0.7


def shaped_reward(r1: float, r2: float, alpha: float) -> float:
    """SCoRe's progress bonus ``alpha * (r2 - r1)``: positive for a fix, negative for a break."""
    return alpha * (r2 - r1)


def transition(r1: float, r2: float) -> str:
    """``"c->c"``, ``"i->c"`` (fixed), ``"c->i"`` (broken) or ``"i->i"`` for binary rewards."""
    return f"{'c' if r1 else 'i'}->{'c' if r2 else 'i'}"


class ScoreGenerator:
    """Runs one SCoRe two-attempt trace per (problem, sample); see the module docstring."""

    kind = "score"
    formats = ("messages", "prompt-completion", "kto")
    default_format = "messages"

    def __init__(self, model: Any, config: ScoreConfig | None = None) -> None:
        self.model = ModelRef(model)
        self.config = config or ScoreConfig()

    def labels(self) -> dict[str, Any]:
        """Model names for the manifest."""
        return {"model": self.model.label}

    def items(self, problems: list[Problem]) -> list[tuple[Problem, int]]:
        """One item per (problem, sample)."""
        return [(p, s) for p in problems for s in range(self.config.samples)]

    @staticmethod
    def key(item: tuple[Problem, int]) -> str:
        """Resume key: ``problem_id#sample``."""
        return f"{item[0].id}#{item[1]}"

    def __call__(self, item: tuple[Problem, int]) -> dict[str, Any]:
        """The record of one two-attempt trace."""
        from graphs.critique import (
            CritiqueConfig,
            answer_match_verifier,
            create_critique_graph,
        )
        from graphs.critique.prompts import draft_messages

        problem, sample = item
        cfg = self.config
        seed = cfg.seed + 2 * sample
        graph = create_critique_graph(
            self.model.get(),
            CritiqueConfig(mode="score", max_tokens=cfg.max_tokens, temperature=cfg.effective_temperature,
                           seed=seed, max_completion_tokens=None, collapse_threshold=0.0),
        )
        state = graph.invoke({"question": problem.question, "reference": problem.answer})
        turns = state["turns"]
        if len(turns) != 2:
            raise RuntimeError(f"the SCoRe graph stopped after {len(turns)} attempt(s) ({state.get('stop_reason')})")
        a1, a2 = turns[0]["text"], turns[1]["text"]
        verify = answer_match_verifier
        if cfg.reward == "program":
            from graphs.critique.program import program_verifier as verify
        r1 = 1.0 if verify(problem.question, a1, problem.answer)[0] else 0.0
        r2 = 1.0 if verify(problem.question, a2, problem.answer)[0] else 0.0
        bonus = shaped_reward(r1, r2, cfg.alpha)
        messages = [
            *draft_messages(problem.question),
            {"role": "assistant", "content": a1},
            {"role": "user", "content": turns[0]["critique"]},
            {"role": "assistant", "content": a2},
        ]
        return {
            "kind": self.kind, "problem_id": problem.id, "sample": sample, "seed": seed,
            "question": problem.question, "reference": problem.answer, "messages": messages,
            "attempt1": a1, "attempt2": a2, "answer1": turns[0]["answer"], "answer2": turns[1]["answer"],
            "r1": r1, "r2": r2, "alpha": cfg.alpha, "shaped_reward": bonus, "total_reward": r1 + r2 + bonus,
            "transition": transition(r1, r2), "edit_distance": state["edit_distance"],
            "usage": dict(state["usage"]),
        }

    def describe(self) -> dict[str, Any]:
        """The config, JSON-ready, with the effective temperature."""
        return {**asdict(self.config), "effective_temperature": self.config.effective_temperature}
