"""Critique-revise loops: Self-Refine, RCI and SCoRe's two-attempt protocol, with pluggable critics."""

from graphs.critique.config import MAX_REVISIONS, CritiqueConfig
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
from graphs.critique.loop import CritiqueResult, critique_loop

__all__ = [
    "MAX_REVISIONS",
    "CritiqueResult",
    "critique_loop",
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
