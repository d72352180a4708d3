"""The self-consistency loop, written once as a sans-I/O generator (:mod:`graphs.loop`).

One :class:`~graphs.loop.ModelCall` with ``n=k`` (the drivers send it as one batch: the local
model decodes the ``k`` rows together, servers get ``k`` requests; sample ``i`` is seeded
``seed + i``), then the pure vote (:func:`graphs.sc.policy.majority_vote`).

Events: ``sc.samples`` (every candidate's answer) and ``sc.done`` (the vote).
"""

from __future__ import annotations

from typing import Any, TypedDict

from adapters.types import Generation
from graphs.answers import extract_answer
from graphs.loop import Emit, Loop, ModelCall
from graphs.sc.config import ScConfig
from graphs.sc.policy import VoteGroup, majority_vote
from graphs.vocab import DONE, Cost, cost_of

__all__ = ["Candidate", "ScResult", "sc_loop"]


class Candidate(TypedDict):
    """One sampled solution."""

    index: int
    text: str
    answer: str | None
    finish_reason: str
    usage: Cost


class ScResult(TypedDict):
    """What a self-consistency run returns (the graph's output keys)."""

    answer: str | None
    response: str
    candidates: list[Candidate]
    votes: list[VoteGroup]
    usage: Cost
    stop_reason: str


def sc_loop(cfg: ScConfig) -> Loop[ScResult]:
    """Sample ``cfg.k`` solutions to the host conversation (the question), then vote."""
    reply: Any = yield ModelCall(
        "sample", max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=cfg.seed, n=cfg.k
    )
    gens: list[Generation] = list(reply) if isinstance(reply, (list, tuple)) else [reply]
    candidates: list[Candidate] = [
        {"index": i, "text": g.text.strip(), "answer": extract_answer(g.text), "finish_reason": g.finish_reason,
         "usage": cost_of(g)}
        for i, g in enumerate(gens)
    ]
    yield Emit("sc.samples", {"answers": [c["answer"] for c in candidates]})
    vote = majority_vote([c["answer"] for c in candidates])
    yield Emit("sc.done", {"answer": vote["answer"], "votes": vote["groups"]})
    shown = candidates[vote["winner"] if vote["winner"] is not None else 0]
    return {
        "answer": vote["answer"],
        "response": shown["text"],
        "candidates": candidates,
        "votes": vote["groups"],
        "usage": cost_of(gens),
        "stop_reason": DONE,
    }
