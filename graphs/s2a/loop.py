"""S2A's loop, written once: rewrite, parse, compose (and, in the graph, answer).

The graph (:mod:`graphs.s2a.graph`) drives :func:`s2a_loop`; the middleware
(:mod:`sc_chains.middleware.s2a`) drives :func:`rewrite_loop` for each user turn it rewrites
(the agent's own model then answers). Parsing and its explicit fallbacks are
:mod:`graphs.s2a.parse`; the prompts :mod:`graphs.s2a.prompts`.
"""

from __future__ import annotations

from typing import Any, TypedDict

from graphs.answers import extract_answer
from graphs.loop import Emit, Loop, ModelCall
from graphs.s2a.config import S2AConfig
from graphs.s2a.check import check_rewrite
from graphs.s2a.likelihood import question_loop
from graphs.s2a.filter import MAX_SENTENCES, FilterResult, relevance_loop, split_problem
from graphs.s2a.parse import ParsedRewrite, last_question_sentence, parse_rewrite, removed_sentences, split_sentences
from graphs.s2a.prompts import build_answer_prompt
from graphs.vocab import DONE, MAX_COMPLETION_TOKENS, Cost, RewriteRecord, StopReason, add_cost, cost_of, zero_cost

__all__ = ["RELEVANCE_TARGET", "S2AResult", "compose", "compose_filter", "rewrite_loop", "s2a_loop"]

RELEVANCE_TARGET = "relevance"
"""The :attr:`~graphs.loop.ModelCall.target` of the filter's relevance calls: the graph maps it
to its model; the middleware to its rewriting model asked for one token with top logprobs."""


class S2AResult(TypedDict):
    """What one S2A run did."""

    rewrite: RewriteRecord
    answer: str | None
    response: str
    stop_reason: StopReason
    cost: Cost


def compose(original: str, raw: str, finish_reason: str, cfg: S2AConfig, *, answer_format: str | None = None) -> RewriteRecord:
    """Read a rewrite (pure): parse its sections, find what it dropped, compose the prompt the
    answering model is given (``answer_format``: ``None`` uses the config's)."""
    prompt = cfg.prompt
    parsed = parse_rewrite(raw, original, context_label=prompt.context_label, question_label=prompt.question_label)
    seen = "\n".join(p for p in (parsed.context, parsed.query) if p)
    removed = removed_sentences(original, seen, min_overlap=cfg.min_kept_overlap)
    why = check_rewrite(original, seen, min_overlap=cfg.min_kept_overlap, removed=removed) if cfg.check else None
    if why is not None:  # not used: the model sees the original input, visibly
        parsed = ParsedRewrite("", original.strip(), "fallback_check", f"{why}; using the original input")
        removed = removed_sentences(original, parsed.query, min_overlap=cfg.min_kept_overlap)
    return {
        "original": original, "raw": raw, "finish_reason": finish_reason, "mode": "rewrite",
        "context": parsed.context, "query": parsed.query, "status": parsed.status, "reason": parsed.reason,
        "removed": removed, "scores": [],
        "prompt": _answer_prompt(cfg, original, parsed.context, parsed.query, answer_format),
    }


def _answer_prompt(cfg: S2AConfig, original: str, context: str, query: str, answer_format: str | None) -> str:
    return build_answer_prompt(
        context=context, query=query, original=original if cfg.variant == "keep_original" else None,
        instruction=cfg.instruction, answer_format=cfg.answer_format if answer_format is None else answer_format,
    )


def compose_filter(original: str, result: FilterResult | None, cfg: S2AConfig, *,
                   answer_format: str | None = None) -> RewriteRecord:
    """Read the filter's scores (pure; ``result=None``: the text had more than
    :data:`~graphs.s2a.filter.MAX_SENTENCES` context sentences and was not scored). The answer
    step sees the kept sentences in their original order, as one text: when nothing is dropped,
    that is the original input. Status ``ok``; ``fallback_no_scores`` when no reply had a
    ``Yes``/``No`` alternative (nothing dropped); ``fallback_too_long``; ``fallback_check`` when
    the drop would lose an instruction of the user's (:func:`graphs.s2a.check.check_rewrite`)."""
    if result is None:
        status, reason, kept, dropped = "fallback_too_long", (
            f"more than {MAX_SENTENCES} context sentences; nothing scored, nothing dropped"), original.strip(), []
    else:
        known = [s for s in result.scores if s["score"] is not None]
        status, kept, dropped = "ok", result.problem, list(result.dropped)
        reason = (f"dropped {len(dropped)} of {len(result.scores)} context sentences "
                  f"({cfg.filter_rule} rule, {cfg.filter_signal} signal)")
        if result.scores and not known:
            status, reason = "fallback_no_scores", "no relevance reply had a Yes/No token; nothing dropped"
    why = check_rewrite(original, kept, min_overlap=cfg.min_kept_overlap) if cfg.check and dropped else None
    if why is not None:
        status, reason, kept, dropped = "fallback_check", f"{why}; using the original input", original.strip(), []
    question = result.question if result is not None else last_question_sentence(original)
    return {
        "original": original, "raw": kept, "finish_reason": "stop", "mode": "filter",
        "context": _without(kept, question), "query": question, "status": status, "reason": reason,
        "removed": dropped, "scores": [] if result is None else list(result.scores),
        "prompt": _answer_prompt(cfg, original, "", kept, answer_format),
    }


def _without(text: str, question: str) -> str:
    """``text`` less its question sentence (the context the filter kept)."""
    return " ".join(s for s in split_sentences(text) if s != question)


def rewrite_loop(original: str, cfg: S2AConfig, *, max_tokens: int | None = None,
                 answer_format: str | None = None, **event: Any) -> Loop[tuple[RewriteRecord, Cost]]:
    """Rewrite ``original`` once (a side call on the rewrite prompt; ``mode="filter"``: one
    one-token relevance call per context sentence, one batch on the ``"relevance"`` target) and read it;
    emits ``s2a.rewrite`` (with ``event`` fields added, e.g. the message id)."""
    if cfg.mode == "filter":
        return (yield from _filter_loop(original, cfg, answer_format, event))
    cap = cfg.rewrite_max_tokens if max_tokens is None else min(cfg.rewrite_max_tokens, max_tokens)
    gen = yield ModelCall(
        "rewrite", messages=cfg.prompt.messages(original),
        max_tokens=cap, temperature=cfg.temperature, logprobs=False,
    )
    record = compose(original, gen.text, gen.finish_reason, cfg, answer_format=answer_format)
    yield Emit("s2a.rewrite", {**event, **record})
    return record, cost_of(gen)


def _filter_loop(original: str, cfg: S2AConfig, answer_format: str | None,
                 event: dict[str, Any]) -> Loop[tuple[RewriteRecord, Cost]]:
    result = None
    sentences = len(split_problem(original)[0])
    if cfg.filter_signal == "question" and sentences < MAX_SENTENCES:
        result = yield from question_loop(original, rule=cfg.filter_rule, gain_below=cfg.filter_gain_below,  # type: ignore[arg-type]
                                          target=RELEVANCE_TARGET, **event)
    elif cfg.filter_signal == "yes-no" and sentences <= MAX_SENTENCES:
        result = yield from relevance_loop(original, rule=cfg.filter_rule, threshold=cfg.filter_threshold,  # type: ignore[arg-type]
                                           margin=cfg.filter_margin, target=RELEVANCE_TARGET, **event)
    record = compose_filter(original, result, cfg, answer_format=answer_format)
    yield Emit("s2a.rewrite", {**event, **record})
    return record, (zero_cost() if result is None else result.cost)


def s2a_loop(question: str, cfg: S2AConfig, *, answer: bool = True) -> Loop[S2AResult]:
    """One S2A run: the rewrite (a side call on the user's text alone), then (``answer=True``)
    the answer call: the conversation before the question, then the composed prompt, within
    ``cfg.max_completion_tokens``. With ``answer=False`` (an answer subgraph follows) the
    prompt carries no answer-format line and the result has no answer yet."""
    budget = cfg.max_completion_tokens
    record, cost = yield from rewrite_loop(question, cfg, max_tokens=budget, answer_format=None if answer else "")
    left = None if budget is None else budget - cost["completion_tokens"]
    if not answer or (left is not None and left <= 0):
        stop: StopReason = MAX_COMPLETION_TOKENS if answer else DONE
        if answer:
            yield Emit("s2a.answer", {"source": "skipped", "answer": None, "response": ""})
        return {"rewrite": record, "answer": None, "response": "", "stop_reason": stop, "cost": cost}
    cap = cfg.answer_max_tokens if left is None else min(cfg.answer_max_tokens, left)
    gen = yield ModelCall("answer", extra=({"role": "user", "content": record["prompt"]},),
                          max_tokens=cap, temperature=cfg.temperature, final=True, logprobs=False)
    result: S2AResult = {"rewrite": record, "answer": extract_answer(gen.text), "response": gen.text,
                         "stop_reason": DONE, "cost": add_cost(cost, cost_of(gen))}
    yield Emit("s2a.answer", {"source": "model", "answer": result["answer"], "response": gen.text})
    return result


