"""Critique-revise loops: Self-Refine, RCI and SCoRe's two-attempt protocol, with pluggable critics."""

from graphs.critique.config import CritiqueConfig
from graphs.critique.critics import (
    Critic,
    Critique,
    InstructionCritic,
    JudgeCritic,
    ModelCritic,
    VerifierCritic,
    answer_match_verifier,
    make_critic,
)
from graphs.critique.graph import CritiqueState, create_critique_graph

__all__ = [
    "Critic",
    "Critique",
    "CritiqueConfig",
    "CritiqueState",
    "InstructionCritic",
    "JudgeCritic",
    "ModelCritic",
    "VerifierCritic",
    "answer_match_verifier",
    "create_critique_graph",
    "make_critic",
]
