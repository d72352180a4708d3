"""LECO as a LangGraph state machine.

``solve -> score -> decide -> (regenerate -> score -> decide)* -> vote``. Model calls go through
:func:`graphs.common.model_node` (one definition, sync and async); every decision (steps, scores,
cut point, stop rule, vote) comes from :mod:`graphs.leco.policy`. Each ``decide`` emits a
``"leco.attempt"`` custom stream event; ``vote`` emits ``"leco.vote"``.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import Generation, GenerationRequest
from graphs.answers import answers_equal, extract_answer
from graphs.common import emit, model_node, usage_of
from graphs.leco import policy
from graphs.leco.config import LecoConfig
from graphs.leco.prompts import chat_messages, continue_messages
from graphs.leco.state import LecoInput, LecoState

__all__ = ["create_leco_graph", "regeneration_path"]


def regeneration_path(model: LogprobModel, config: LecoConfig) -> str:
    """``"prefill"`` or ``"chat"``: how rethinks will continue the prefix with this model."""
    if config.regeneration == "chat":
        return "chat"
    if model.capabilities.prefill:
        return "prefill"
    if config.regeneration == "prefill":
        raise InvalidRequestError(
            "regeneration", "prefill",
            f"{model.name} cannot continue an assistant text; use regeneration='auto' or 'chat'",
        )
    return "chat"


def create_leco_graph(
    model: Any,
    config: LecoConfig | None = None,
    *,
    checkpointer: Any = None,
    **overrides: Any,
) -> CompiledStateGraph:
    """Build the LECO graph (input ``{"question"}``; output ``answer``, ``response``, ``usage``,
    ``attempts``, ``cuts``, ``candidates``, ``vote``, ``stop_reason``, ``regeneration_path``).

    ``model``: anything :func:`adapters.specs.resolve_model` accepts. ``overrides``: fields of
    :class:`LecoConfig` applied on top of ``config``. Raises
    :class:`~adapters.errors.LogprobsUnavailableError` if the model gives no logprobs. With a
    checkpointer, use one ``thread_id`` per question: the trace lists append across runs.
    """
    model = resolve_model(model)
    model.require_logprobs()
    cfg = LecoConfig.from_options(overrides, base=config)
    if cfg.k > model.capabilities.max_top_logprobs:
        raise InvalidRequestError(
            "k", cfg.k, f"{model.name} returns at most {model.capabilities.max_top_logprobs} alternatives"
        )
    path = regeneration_path(model, cfg)
    nodes = _Nodes(model, cfg, path)

    builder = StateGraph(LecoState, input_schema=LecoInput)
    builder.add_node("solve", model_node(model, nodes.prepare_solve, nodes.apply_solve, name="solve"))
    builder.add_node("score", nodes.score)
    builder.add_node("decide", nodes.decide)
    builder.add_node(
        "regenerate", model_node(model, nodes.prepare_rethink, nodes.apply_rethink, name="regenerate")
    )
    builder.add_node("vote", nodes.vote)
    builder.add_edge(START, "solve")
    builder.add_edge("solve", "score")
    builder.add_edge("score", "decide")
    builder.add_conditional_edges("decide", _route, {"regenerate": "regenerate", "vote": "vote"})
    builder.add_edge("regenerate", "score")
    builder.add_edge("vote", END)
    return builder.compile(checkpointer=checkpointer, name="leco")


def _route(state: LecoState) -> str:
    return "vote" if state.get("stop_reason") else "regenerate"


class _Nodes:
    """The node functions, closed over the model and the config."""

    def __init__(self, model: LogprobModel, cfg: LecoConfig, path: str) -> None:
        self.model, self.cfg, self.path = model, cfg, path

    # -- model calls -------------------------------------------------------------------------
    def _request(self, messages: list[dict[str, str]], state: LecoState, *, rethink: int,
                 prefill: str | None = None) -> GenerationRequest:
        cfg = self.cfg
        left = cfg.token_budget - state.get("tokens_generated", 0)
        temp = cfg.temperature if rethink == 0 or cfg.rethink_temperature is None else cfg.rethink_temperature
        return self.model.request(
            messages,
            max_tokens=max(1, min(cfg.max_tokens, left)),
            temperature=temp,
            top_logprobs=cfg.k,
            seed=None if cfg.seed is None else cfg.seed + rethink,
            prefill=prefill,
        )

    def prepare_solve(self, state: LecoState) -> GenerationRequest:
        return self._request(chat_messages(state["question"], self.cfg.system_prompt), state, rethink=0)

    def apply_solve(self, state: LecoState, gen: Generation) -> dict[str, Any]:
        update = self._pending(state, gen, path="initial", prefix="", seed="")
        update["regeneration_path"] = self.path
        return update

    def prepare_rethink(self, state: LecoState) -> GenerationRequest:
        q, prefix, sys = state["question"], state.get("prefix", ""), self.cfg.system_prompt
        rethink = len(state.get("attempts", []))
        if self.path == "prefill" or not prefix:
            return self._request(chat_messages(q, sys), state, rethink=rethink, prefill=prefix or None)
        step = policy.next_step_number(prefix)
        return self._request(continue_messages(q, prefix, step, sys), state, rethink=rethink)

    def apply_rethink(self, state: LecoState, gen: Generation) -> dict[str, Any]:
        prefix = state.get("prefix", "")
        seed = ""
        if self.path == "chat" and prefix and not policy.starts_with_label(gen.text):
            seed = f"Step {policy.next_step_number(prefix)}:"
            if gen.text and not gen.text[0].isspace():
                seed += " "
        return self._pending(state, gen, path=self.path, prefix=prefix, seed=seed)

    def _pending(self, state: LecoState, gen: Generation, *, path: str, prefix: str,
                 seed: str) -> dict[str, Any]:
        gen = self.model.checked(gen)
        usage = usage_of(gen)
        tokens = [
            [t.token, t.logprob, t.offset, [[a.token, a.logprob] for a in t.top_logprobs]]
            for t in gen.tokens or ()
        ]
        pending = {
            "path": path, "prefix": prefix, "seed": seed, "text": gen.text, "tokens": tokens,
            "finish_reason": gen.finish_reason, "usage": usage,
        }
        return {
            "pending": pending,
            "usage": usage,
            "tokens_generated": state.get("tokens_generated", 0) + gen.usage.completion_tokens,
        }

    # -- pure steps ----------------------------------------------------------------------------
    def score(self, state: LecoState) -> dict[str, Any]:
        """Turn the pending generation into a scored attempt."""
        cfg, p = self.cfg, state.get("pending")
        if p is None:
            raise RuntimeError("LECO's score node ran without a pending generation (graph wiring bug)")
        response = p["prefix"] + p["seed"] + p["text"]
        toks = policy.to_tokens(p["tokens"], shift=len(p["prefix"]) + len(p["seed"]))
        steps = policy.score_steps(
            response, toks, prob_mode=cfg.prob_mode, k=cfg.k, transition_k=cfg.transition_k,
            tau=cfg.tau, weights=cfg.weights, skip_phrases=cfg.skip_phrases, min_offset=len(p["prefix"]),
        )
        answer = extract_answer(response)
        attempt = {
            "index": len(state.get("attempts", [])), "path": p["path"], "prefix": p["prefix"],
            "seed": p["seed"], "text": p["text"], "response": response, "answer": answer,
            "finish_reason": p["finish_reason"], "steps": steps, "usage": p["usage"],
        }
        return {"attempts": [attempt], "candidates": [answer], "pending": None}

    def decide(self, state: LecoState) -> dict[str, Any]:
        """Stop (agreement, max rethinks, budget, nothing to cut) or pick the next cut point."""
        cfg, attempts = self.cfg, state["attempts"]
        last = attempts[-1]
        reason = policy.should_stop(state["candidates"], len(attempts) - 1, cfg.max_rethinks)
        if reason is None and state.get("tokens_generated", 0) >= cfg.token_budget:
            reason = "token_budget"
        cut = None
        if reason is None:
            new = [s for s in last["steps"] if s["start"] >= len(last["prefix"])]
            offset = len(last["steps"]) - len(new)
            scores = [s["score"] if s["candidate"] else None for s in new]
            k = policy.cut_point(scores, offset)
            if k is None:
                reason = "no_candidate_step"
            else:
                step = last["steps"][k]
                lowest = [i + offset for i in policy.lowest_steps(scores, 2)]
                cut = {
                    "attempt": last["index"], "step": k, "offset": step["start"],
                    "step_text": step["text"], "score": step["score"], "lowest": lowest,
                    "lowest_scores": [last["steps"][i]["score"] for i in lowest],
                    "prefix": last["response"][: step["start"]],
                }
        emit(
            "leco.attempt", attempt=last["index"], path=last["path"], answer=last["answer"],
            scores=[{"step": s["index"], "avg": s["avg"], "trans": s["trans"], "div": s["div"],
                     "score": s["score"], "candidate": s["candidate"]} for s in last["steps"]],
            cut=None if cut is None else cut["step"], stop_reason=reason,
            tokens_generated=state.get("tokens_generated", 0),
        )
        update: dict[str, Any] = {"stop_reason": reason}
        if cut is not None:
            update.update(cuts=[cut], prefix=cut["prefix"])
        return update

    def vote(self, state: LecoState) -> dict[str, Any]:
        """The weighted vote over every attempt's answer; the response that gave the winner."""
        winner, weights = policy.weighted_vote(state["candidates"], self.cfg.first_weight)
        attempts = state["attempts"]
        chosen = next(
            (a for a in reversed(attempts) if winner is not None and answers_equal(a["answer"], winner)),
            attempts[-1],
        )
        emit("leco.vote", answer=winner, vote=weights, attempt=chosen["index"],
             stop_reason=state.get("stop_reason"))
        return {"answer": winner, "response": chosen["response"], "vote": weights}
