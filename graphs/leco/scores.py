"""LECO's step scores on token probabilities: average, transition, divergence, combined.

Pure functions on literal numbers (no LangGraph, no model); :mod:`graphs.leco.policy` re-exports
them. See ``/work/shared/notes/methods.md`` section 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adapters.errors import InvalidRequestError

__all__ = [
    "ProbMode",
    "StepScores",
    "Tok",
    "average_score",
    "divergence_score",
    "step_score",
    "to_tokens",
    "token_probability",
    "transition_score",
]

ProbMode = Literal["true", "topk"]
_KL_NOISE = 1e-12


@dataclass(frozen=True, slots=True)
class Tok:
    """A token reduced to what scoring needs."""

    text: str
    logprob: float
    offset: int
    alternatives: tuple[tuple[str | None, float], ...] = ()
    """``(token or None, logprob)`` of the top alternatives, in the order given."""


def to_tokens(tokens: Iterable[Any], shift: int = 0) -> list[Tok]:
    """Normalise adapter tokens or plain tuples to :class:`Tok`, adding ``shift`` to offsets."""
    out: list[Tok] = []
    for t in tokens:
        if isinstance(t, Tok):
            out.append(Tok(t.text, t.logprob, t.offset + shift, t.alternatives))
            continue
        if isinstance(t, (tuple, list)):
            text, lp, off = t[0], t[1], t[2]
            raw_alts = t[3] if len(t) > 3 else ()
        else:
            text, lp, off = t.token, t.logprob, t.offset
            raw_alts = getattr(t, "top_logprobs", ()) or ()
        alts = () if not raw_alts else tuple(
            (None, float(a)) if isinstance(a, (int, float))
            else (a[0], float(a[1])) if isinstance(a, (tuple, list))
            else (a.token, float(a.logprob))
            for a in raw_alts
        )
        out.append(Tok(str(text), float(lp), int(off) + shift, alts))
    return out


def token_probability(tok: Tok, mode: ProbMode = "topk", k: int = 5) -> float:
    """The chosen token's probability, in [0, 1].

    ``"true"``: ``exp(logprob)``. ``"topk"``: the reference's softmax over the top-``k``:
    ``exp(lp) / sum(exp(lp_j) for the k most likely alternatives)``; when the chosen token is
    not among them (possible under sampling) it joins the denominator, so p stays <= 1.
    """
    if math.isnan(tok.logprob):
        raise InvalidRequestError("logprob", tok.logprob, f"token {tok.text!r} has a NaN logprob")
    if mode == "true":
        return min(1.0, math.exp(min(tok.logprob, 0.0)))
    if mode != "topk":
        raise InvalidRequestError("prob_mode", mode, "use 'true' or 'topk'")
    if not tok.alternatives:
        raise InvalidRequestError(
            "top_logprobs",
            0,
            f"token {tok.text!r} at offset {tok.offset} has no alternatives; top-k probabilities "
            "need top_logprobs >= k in the request, or use prob_mode='true'",
        )
    top = sorted(tok.alternatives, key=lambda a: -a[1])[:k]
    lps = [lp for _, lp in top]
    chosen_in_top = any(
        abs(lp - tok.logprob) <= 1e-6 and (name is None or name == tok.text) for name, lp in top
    )
    if not chosen_in_top:
        lps.append(tok.logprob)
    m = max(lps)
    if m == -math.inf:
        return 0.0
    denom = sum(math.exp(lp - m) for lp in lps)
    return min(1.0, math.exp(tok.logprob - m) / denom)


def average_score(probs: Sequence[float]) -> float:
    """Mean token probability of the step."""
    if not probs:
        raise ValueError("average_score needs at least one token probability")
    return math.fsum(probs) / len(probs)


def transition_score(content_probs: Sequence[float], k: int, step_probs: Sequence[float] = ()) -> float:
    """Mean probability of the first ``k`` tokens after the ``Step N:`` label.

    A step that is only a label (no content tokens) falls back to its first ``k`` tokens.
    """
    head = list(content_probs[:k]) or list(step_probs[:k])
    return average_score(head)


def divergence_score(probs: Sequence[float], tau: float = 1 / 3) -> float:
    """``ln(KL(p_hat || U)^tau + 1)`` with ``p_hat = probs / sum(probs)``, ``U`` uniform over n.

    ``KL = ln n - H(p_hat)``. A KL below 1e-12 is rounding noise (identical probabilities) and
    counts as 0: the power would blow it up (``(1e-16)^(1/3)`` is 5e-6) or, were it negative,
    make it complex. All-zero probabilities count as uniform.
    """
    n = len(probs)
    if n == 0:
        raise ValueError("divergence_score needs at least one token probability")
    total = math.fsum(probs)
    if n == 1 or total <= 0.0:
        return 0.0
    # KL = ln n - H(p_hat) = sum q ln(n q), summed in the second form (more accurate near uniform)
    kl = math.fsum(p / total * math.log(n * p / total) for p in probs if p > 0.0)
    if kl < _KL_NOISE:
        return 0.0
    return math.log(kl**tau + 1.0)


@dataclass(frozen=True, slots=True)
class StepScores:
    """The three LECO scores of a step and their combination (higher = more confident)."""

    avg: float
    trans: float
    div: float
    score: float


def step_score(
    probs: Sequence[float],
    content_probs: Sequence[float],
    *,
    transition_k: int = 5,
    tau: float = 1 / 3,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> StepScores:
    """``w_avg * avg + w_trans * trans - w_div * div`` for one step's token probabilities."""
    avg = average_score(probs)
    trans = transition_score(content_probs, transition_k, probs)
    div = divergence_score(probs, tau)
    wa, wt, wd = weights
    return StepScores(avg, trans, div, wa * avg + wt * trans - wd * div)
