"""LECO's loop, written once: draft, score, cut, rethink, stop, vote.

The graph (:mod:`graphs.leco.graph`) and the middleware (:mod:`sc_chains.middleware.leco`) both
drive :func:`leco_loop` (see :mod:`graphs.loop` for the protocol). Every decision comes from
:mod:`graphs.leco.policy`; this module only sequences them and keeps the records.

Rethinks continue the kept prefix either by prefill (``path="prefill"``: the model continues the
assistant text exactly) or in chat (``path="chat"``: the prefix goes in a user message after the
conversation, ending ``Step k:``; a reply that does not restate the label gets it back).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from adapters.types import Generation
from graphs.answers import answers_equal
from graphs.leco import policy
from graphs.leco.config import LecoConfig
from graphs.leco.prompts import continue_message
from graphs.loop import TOOL_CALLS, Emit, Loop, ModelCall
from graphs.vocab import (
    MAX_COMPLETION_TOKENS,
    MAX_CORRECTIONS,
    NO_CANDIDATE_STEP,
    NO_LOGPROBS,
    TOOL_CALL,
    Allowance,
    Attempt,
    Cost,
    Cut,
    StopReason,
    add_cost,
    cost_of,
    zero_cost,
)

__all__ = ["LecoResult", "attempt_summary", "leco_loop"]

Path = Literal["prefill", "chat"]


class LecoResult(TypedDict):
    """What one LECO run did (the graph's output keys; the middleware's trace)."""

    answer: str | None
    response: str
    """The solution that gave the winning answer (the latest attempt with it)."""
    chosen: int
    """Index of that attempt (also the index of the model reply that produced it)."""
    status: Literal["kept", "corrected", "passthrough"]
    """``kept``: the first answer won; ``corrected``: another won; ``passthrough``: LECO did not
    run (a tool call, or no logprobs on the draft)."""
    stop_reason: StopReason | None
    attempts: list[Attempt]
    cuts: list[Cut]
    candidates: list[str | None]
    vote: dict[str, float]
    cost: Cost
    """Every call of this run (the draft included)."""


def leco_loop(cfg: LecoConfig, *, path: Path, allowance: Allowance | None = None) -> Loop[LecoResult]:
    """One LECO run. ``allowance``: what the caller still allows (corrections, completion
    tokens); the run also stays within ``cfg.max_rethinks`` and ``cfg.max_completion_tokens``.
    With ``cfg.rethink_samples = n > 1`` each cut asks for ``n`` continuations in one call
    (a round); every continuation is an attempt and votes."""
    allow = allowance or {"corrections": None, "completion_tokens": None}
    caps = [c for c in (cfg.max_completion_tokens, allow["completion_tokens"]) if c is not None]
    run = _Run(cfg, path, min(caps), allow["corrections"])
    gen = yield run.call("draft", prefix="")
    run.charge(gen)
    early = run.take(gen, prefix="", seed="", attempt_path="initial", cut=None)
    if early is not None:
        return early
    run.rounds.append([0])
    yield Emit("leco.draft", run.attempt_event(0))
    while (stop := run.stop_reason()) is None:
        cut = run.choose_cut()
        if cut is None:
            stop = NO_CANDIDATE_STEP
            break
        yield Emit("leco.cut", run.cut_event(cut))
        reply = yield run.call("rethink", prefix=cut["prefix"])
        gens = list(reply) if isinstance(reply, (list, tuple)) else [reply]
        run.charge(gens)
        run.rounds.append([])
        for gen in gens:
            seed = run.label_seed(cut["prefix"], gen)
            early = run.take(gen, prefix=cut["prefix"], seed=seed, attempt_path=path, cut=len(run.cuts) - 1)
            if early is not None:
                return early
            run.rounds[-1].append(len(run.attempts) - 1)
            yield Emit("leco.rethink", run.attempt_event(len(run.attempts) - 1))
    result = run.vote(stop)
    yield Emit("leco.done", _done_event(result))
    return result


class _Run:
    """The records of one run and the pure steps between model calls."""

    def __init__(self, cfg: LecoConfig, path: Path, token_cap: int, corrections: int | None) -> None:
        self.cfg, self.path, self.token_cap, self.corrections = cfg, path, token_cap, corrections
        self.attempts: list[Attempt] = []
        self.cuts: list[Cut] = []
        self.rounds: list[list[int]] = []
        """Attempt indices per round: ``[0]`` (the draft), then each cut's continuations."""
        self.cost: Cost = zero_cost()

    def charge(self, gens: Any) -> None:
        """Add what ``gens`` (one reply or a round of them) cost."""
        self.cost = add_cost(self.cost, cost_of(gens))

    def call(self, role: str, *, prefix: str) -> ModelCall:
        cfg, n = self.cfg, len(self.attempts)
        replies = 1 if n == 0 else cfg.rethink_samples
        left = (self.token_cap - self.cost["completion_tokens"]) // replies
        temp = cfg.temperature if n == 0 or cfg.rethink_temperature is None else cfg.rethink_temperature
        common: dict[str, Any] = dict(
            max_tokens=max(1, min(cfg.max_tokens, left)), temperature=temp, top_logprobs=cfg.k,
            seed=None if cfg.seed is None else cfg.seed + n, n=replies, sampled=replies > 1,
        )
        if not prefix:
            return ModelCall(role, **common)
        if self.path == "prefill":
            return ModelCall(role, prefill=prefix, **common)
        return ModelCall(role, extra=(continue_message(prefix, policy.next_step_number(prefix)),), **common)

    @staticmethod
    def label_seed(prefix: str, gen: Generation) -> str:
        """The ``Step k:`` label a chat rethink left out (``""`` when it restated it)."""
        if not prefix or gen.prefill or policy.starts_with_label(gen.text):
            return ""
        seed = f"Step {policy.next_step_number(prefix)}:"
        return seed if not gen.text or gen.text[0].isspace() else seed + " "

    def take(self, gen: Generation, *, prefix: str, seed: str, attempt_path: str,
             cut: int | None) -> LecoResult | None:
        """Record ``gen`` (already charged) as an attempt; a result to return at once when LECO
        cannot go on."""
        if gen.finish_reason == TOOL_CALLS:
            return self._early(TOOL_CALL)
        if gen.tokens is None or (gen.text and not gen.tokens):
            return self._early(NO_LOGPROBS)
        cfg = self.cfg
        response = prefix + seed + gen.text
        toks = policy.to_tokens(gen.tokens, shift=len(prefix) + len(seed))
        steps = policy.score_steps(
            response, toks, prob_mode=cfg.prob_mode, k=cfg.k, transition_k=cfg.transition_k,
            tau=cfg.tau, weights=cfg.weights, skip_phrases=cfg.skip_phrases, min_offset=len(prefix),
        )
        self.attempts.append({
            "index": len(self.attempts), "path": attempt_path, "prefix": prefix, "seed": seed,
            "text": gen.text, "response": response, "answer": policy.attempt_answer(response),
            "finish_reason": gen.finish_reason, "steps": steps, "usage": cost_of(gen), "cut": cut,  # type: ignore[typeddict-item]
        })
        return None

    def _early(self, stop: StopReason) -> LecoResult | None:
        """A reply LECO cannot use: pass it through when it is the draft; else stop and vote."""
        if not self.attempts or stop == TOOL_CALL:
            return self._result(None, "", len(self.attempts), "passthrough", stop, {})
        return self.vote(stop)

    def representative(self, members: list[int]) -> int:
        """The attempt standing for a round: the first one with the round's plurality answer."""
        return policy.round_representative([self.attempts[i]["answer"] for i in members], members)

    def stop_reason(self) -> StopReason | None:
        rethinks = len(self.rounds) - 1
        answers = [self.attempts[self.representative(r)]["answer"] for r in self.rounds]
        reason = policy.should_stop(answers, rethinks, self.cfg.max_rethinks)
        if reason is None and self.corrections is not None and rethinks >= self.corrections:
            reason = MAX_CORRECTIONS
        if reason is None and self.cost["completion_tokens"] >= self.token_cap:
            reason = MAX_COMPLETION_TOKENS
        return reason  # type: ignore[return-value]

    def choose_cut(self) -> Cut | None:
        """The earlier of the two least confident new steps of the latest round's
        representative attempt."""
        last = self.attempts[self.representative(self.rounds[-1])]
        new = [s for s in last["steps"] if s["start"] >= len(last["prefix"])]
        offset = len(last["steps"]) - len(new)
        scores = [s["score"] if s["candidate"] else None for s in new]
        k = policy.cut_point(scores, offset)
        if k is None:
            return None
        step = last["steps"][k]
        lowest = [i + offset for i in policy.lowest_steps(scores, 2)]
        cut: Cut = {
            "attempt": last["index"], "step": k, "offset": step["start"], "step_text": step["text"],
            "score": step["score"], "lowest": lowest,
            "lowest_scores": [last["steps"][i]["score"] for i in lowest],
            "prefix": last["response"][: step["start"]],
        }
        self.cuts.append(cut)
        return cut

    def vote(self, stop: StopReason | None) -> LecoResult:
        """The weighted vote; the response is the first attempt's when its answer won (kept),
        else the latest attempt that gave the winner."""
        answers = [a["answer"] for a in self.attempts]
        winner, weights = policy.weighted_vote(answers, self.cfg.first_weight)
        kept = winner is None or answers_equal(answers[0], winner)
        chosen = 0 if kept else next(
            a["index"] for a in reversed(self.attempts) if answers_equal(a["answer"], winner)
        )
        return self._result(winner, self.attempts[chosen]["response"], chosen,
                            "kept" if kept else "corrected", stop, weights)

    def _result(self, answer: str | None, response: str, chosen: int, status: str,
                stop: StopReason | None, vote: dict[str, float]) -> LecoResult:
        return {
            "answer": answer, "response": response, "chosen": chosen, "status": status,  # type: ignore[typeddict-item]
            "stop_reason": stop, "attempts": self.attempts, "cuts": self.cuts,
            "candidates": [a["answer"] for a in self.attempts], "vote": vote, "cost": self.cost,
        }

    def attempt_event(self, i: int) -> dict[str, Any]:
        a = self.attempts[i]
        return {
            "attempt": i, "path": a["path"], "text": a["response"], "answer": a["answer"],
            "scores": [{"step": s["index"], "avg": s["avg"], "trans": s["trans"], "div": s["div"],
                        "score": s["score"], "candidate": s["candidate"]} for s in a["steps"]],
            "completion_tokens": self.cost["completion_tokens"],
        }

    @staticmethod
    def cut_event(cut: Cut) -> dict[str, Any]:
        return {k: cut[k] for k in ("attempt", "step", "step_text", "score", "lowest", "prefix")}  # type: ignore[literal-required]


def attempt_summary(result: LecoResult) -> list[dict[str, Any]]:
    """Each attempt's answer and the step its cut was at (``None`` for the draft)."""
    return [{"answer": a["answer"], "cut_step": None if a["cut"] is None else result["cuts"][a["cut"]]["step"]}
            for a in result["attempts"]]


def _done_event(result: LecoResult) -> dict[str, Any]:
    return {
        "answer": result["answer"], "status": result["status"], "stop_reason": result["stop_reason"],
        "vote": result["vote"], "attempt": result["chosen"],
        "attempts": attempt_summary(result),
        "cost": result["cost"],
    }
