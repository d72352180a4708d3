"""LLM-as-a-judge: the self-rewarding additive rubric (pointwise) and position-swapped pairwise."""

from graphs.judge.judge import Judge, JudgeResult, JudgeScore, PairwiseResult
from graphs.judge.policy import expected_score, pairwise_winner, parse_preference, parse_score

__all__ = [
    "Judge",
    "JudgeResult",
    "JudgeScore",
    "PairwiseResult",
    "expected_score",
    "pairwise_winner",
    "parse_preference",
    "parse_score",
]
