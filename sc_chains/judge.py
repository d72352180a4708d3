"""LLM-as-a-judge: the self-rewarding additive 5-point rubric (pointwise, k samples, expected
score from logprobs) and a position-swapped pairwise judge.

Example::

    from sc_chains.judge import Judge
    judge = Judge("hf:default", k=3)
    res = judge.score("What is 2+2?", "2+2 = 4.")
    res.score, res.expected, res.parse_errors
"""

from __future__ import annotations

from graphs.judge import Judge, JudgeResult, JudgeScore, PairwiseResult, expected_score, parse_score

__all__ = ["Judge", "JudgeResult", "JudgeScore", "PairwiseResult", "expected_score", "parse_score"]
