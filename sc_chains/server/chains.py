"""Chain dispatch: the served chains by name, their per-request settings, one run with its cost.

The one dependency on the chain factories is :func:`_factories` (name -> description and a
builder); everything else here works on what it returns. Compiled chains are cached per
(chain, settings) and shared by concurrent requests (a graph without a checkpointer keeps no
state between runs), all over one upstream model, so a local model's adapter sees concurrent
calls and coalesces them into batches.

Every model call of a request is recorded through :class:`RecordingModel` (a context variable
holds the current request's list), which gives the summed ``usage`` and the final answer's
token logprobs without changing the chains.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from adapters.types import Generation, GenerationRequest, TokenLogprob

__all__ = ["ChainResult", "ChainSet", "RecordingModel", "chain_catalog"]

_CALLS: contextvars.ContextVar[list[Generation] | None] = contextvars.ContextVar("sc_chains_calls", default=None)
_TOP_K: contextvars.ContextVar[int] = contextvars.ContextVar("sc_chains_top_k", default=0)
_SKIP_TRACE = {"question", "reference", "response", "usage", "pending"}
SERVER_KEYS = {"trace": "include the chain's trace in the response (default true)"}
"""Keys of the ``sc_chains`` request field that are the server's, not the chain's."""


@dataclass(frozen=True)
class ChainSpec:
    """One served chain."""

    name: str
    """The model id clients ask for."""
    description: str
    """One line for ``GET /v1/models``."""
    config_cls: type | None
    """The config dataclass whose fields are this chain's settings (``None``: the plain model)."""
    build: Callable[[LogprobModel, dict[str, Any]], Any] | None
    """``build(model, settings) -> compiled graph`` (``None``: the plain model call)."""
    request_map: Mapping[str, tuple[str, ...]]
    """Which settings a standard request field sets (``max_tokens`` -> every per-call token limit;
    ``leco.max_tokens`` is a nested LECO setting)."""


def _factories(run_programs: bool = False) -> list[ChainSpec]:
    """The served chains, built through the graph factories (re-point here after a registry
    change). ``run_programs``: also serve ``critique-program``, which runs model-written code in
    the sandbox (:mod:`graphs.sandbox`); off unless the operator opts in (``serve --run-programs``),
    since any client's prompt steers what code the model writes."""
    from graphs.critique import create_critique_graph
    from graphs.critique.config import CritiqueConfig
    from graphs.leco import LecoConfig, create_leco_graph
    from graphs.s2a import create_s2a_graph
    from graphs.s2a.config import S2AConfig
    from graphs.sc import ScConfig, create_sc_graph
    from sc_chains.eval.chains import CHAINS, LECO_VOTE

    def s2a_leco(model: LogprobModel, opts: dict[str, Any]) -> Any:
        leco = create_leco_graph(model, **dict(opts.pop("leco", None) or {}))
        return create_s2a_graph(model, answer_graph=leco, **opts)

    std = {"max_tokens": ("max_tokens",), "temperature": ("temperature",), "seed": ("seed",)}
    specs = [
        ChainSpec("baseline", "the upstream model, uncorrected", None, None, {}),
        ChainSpec("s2a", CHAINS["s2a"].description, S2AConfig, lambda m, o: create_s2a_graph(m, **o),
                  {"max_tokens": ("rewrite_max_tokens", "answer_max_tokens"), "temperature": ("temperature",)}),
        ChainSpec("leco", CHAINS["leco"].description, LecoConfig, lambda m, o: create_leco_graph(m, **o), std),
        ChainSpec("critique", "critique-revise (self-refine; set mode)", CritiqueConfig,
                  lambda m, o: create_critique_graph(m, **o),
                  {**std, "max_tokens": ("max_tokens", "critique_max_tokens")}),
        ChainSpec("s2a+leco", CHAINS["s2a+leco"].description, S2AConfig, s2a_leco,
                  {"max_tokens": ("rewrite_max_tokens", "leco.max_tokens"),
                   "temperature": ("temperature", "leco.temperature"), "seed": ("leco.seed",)}),
        ChainSpec("sc", CHAINS["sc"].description, ScConfig, lambda m, o: create_sc_graph(m, **o), std),
        ChainSpec("leco-vote", CHAINS["leco-vote"].description, LecoConfig,
                  lambda m, o: create_leco_graph(m, **{**LECO_VOTE, **o}),
                  {**std, "temperature": ("temperature",)}),
    ]
    if run_programs:
        specs.append(ChainSpec("critique-program", CHAINS["critique-program"].description, CritiqueConfig,
                               lambda m, o: create_critique_graph(m, critic="program", **o),
                               {**std, "max_tokens": ("max_tokens", "critique_max_tokens")}))
    return specs


def chain_catalog(run_programs: bool = False) -> dict[str, ChainSpec]:
    """Every served chain by name (``run_programs``: see :func:`_factories`)."""
    return {s.name: s for s in _factories(run_programs)}


class RecordingModel(LogprobModel):
    """A view of ``inner`` that appends each generation to the current request's call list."""

    def __init__(self, inner: LogprobModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.logprobs_hint, self.scoring_hint = inner.logprobs_hint, inner.scoring_hint

    def request(self, messages: Any, **kwargs: Any) -> GenerationRequest:
        """The inner model's request, asking for at least the client's ``top_logprobs`` (more
        alternatives do not change the generated text)."""
        req = self.inner.request(messages, **kwargs)
        k = min(_TOP_K.get(), self.capabilities.max_top_logprobs)
        return replace(req, top_logprobs=k) if k > req.top_logprobs else req

    def _generate(self, request: GenerationRequest) -> Generation:
        return _record(self.inner._generate(request))

    async def _agenerate(self, request: GenerationRequest) -> Generation:
        return _record(await self.inner._agenerate(request))

    def _score_texts(self, pairs: list[tuple[str, str]]) -> list[Generation]:
        return [_record(g) for g in self.inner._score_texts(pairs)]


def _record(gen: Generation) -> Generation:
    calls = _CALLS.get()
    if calls is not None:
        calls.append(gen)
    return gen


@dataclass(frozen=True)
class ChainResult:
    """What one request's correction produced."""

    text: str
    """The final answer (what the client sees)."""
    finish_reason: str
    """``"stop"`` or ``"length"`` (the final answer's last call hit ``max_tokens``)."""
    tokens: tuple[TokenLogprob, ...] | None
    """The final answer's tokens with logprobs (``None`` when they cannot be matched)."""
    usage: dict[str, int]
    """Summed over every model call: calls, prompt/completion/cached tokens."""
    extension: dict[str, Any]
    """The ``sc_chains`` response field: chain, upstream, answer, cost, trace."""


class ChainSet:
    """The served chains over one upstream model, with a cache of compiled chains."""

    def __init__(self, upstream: LogprobModel, *, cache_size: int = 128, run_programs: bool = False) -> None:
        self.upstream = upstream
        self.model = RecordingModel(upstream)
        self.specs = chain_catalog(run_programs)
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._cache_size = cache_size

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def settings(self, name: str, options: Mapping[str, Any], standard: Mapping[str, Any]) -> dict[str, Any]:
        """The chain's settings: standard request fields mapped, then ``sc_chains`` options.
        Unknown keys raise :class:`InvalidRequestError` naming ``sc_chains.KEY``."""
        spec = self.specs[name]
        out: dict[str, Any] = {}
        for field_name, value in standard.items():
            for target in spec.request_map.get(field_name, ()) if value is not None else ():
                _put(out, target, value)
        for key, value in options.items():
            if key in SERVER_KEYS:
                continue
            _check_key(spec, key, value)
            if key == "leco" and isinstance(value, Mapping):
                out["leco"] = {**out.get("leco", {}), **value}
            else:
                out[key] = value
        return out

    def graph(self, name: str, settings: dict[str, Any]) -> Any:
        """The compiled chain for these settings (built once, then cached); validates them."""
        spec = self.specs[name]
        key = (name, json.dumps(settings, sort_keys=True, default=repr))
        graph = self._cache.get(key)
        if graph is None:
            opts = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in settings.items()}
            opts = {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}
            graph = spec.build(self.model, opts)
            self._cache[key] = graph
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return graph

    async def run(self, name: str, graph: Any, question: str, *, messages: Any = None,
                  call: Mapping[str, Any] | None = None, trace: bool = True, top_logprobs: int = 0) -> ChainResult:
        """Run one request: the plain call (``graph is None``) or the chain on ``question``;
        every model call asks for at least ``top_logprobs`` alternatives."""
        calls: list[Generation] = []
        token = _CALLS.set(calls)
        k_token = _TOP_K.set(top_logprobs)
        start = time.perf_counter()
        try:
            if graph is None:
                gen = await self.model.agenerate(messages, **dict(call or {}))
                state: dict[str, Any] = {"response": gen.text, "finish_reason": gen.finish_reason}
            else:
                state = await graph.ainvoke({"question": question})
        finally:
            _CALLS.reset(token)
            _TOP_K.reset(k_token)
        return self._result(name, state, calls, time.perf_counter() - start, trace)

    def _result(self, name: str, state: Mapping[str, Any], calls: list[Generation], wall_s: float,
                trace: bool) -> ChainResult:
        text = state.get("response") or ""
        final = _final_generation(text, calls)
        tokens = _answer_tokens(text, calls)
        usage = {"calls": len(calls),
                 "prompt_tokens": sum(g.usage.prompt_tokens for g in calls),
                 "completion_tokens": sum(g.usage.completion_tokens for g in calls),
                 "cached_tokens": sum(g.usage.cached_tokens for g in calls)}
        cost = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
                "wall_s": round(wall_s, 6)}
        ext: dict[str, Any] = {"chain": name, "upstream": self.upstream.name, "answer": state.get("answer"),
                               "cost": cost}
        if trace:
            ext["trace"] = {k: v for k, v in state.items() if k not in _SKIP_TRACE}  # encoded with default=str
        finish = final.finish_reason if final is not None and final.finish_reason == "length" else "stop"
        return ChainResult(text, finish, tokens, usage, ext)


def _put(out: dict[str, Any], dotted: str, value: Any) -> None:
    head, _, rest = dotted.partition(".")
    if rest:
        out.setdefault(head, {})[rest] = value
    else:
        out[head] = value


def _check_key(spec: ChainSpec, key: Any, value: Any) -> None:
    allowed = {f.name for f in fields(spec.config_cls)} if spec.config_cls else set()
    if spec.name == "s2a+leco":
        allowed.add("leco")
        if key == "leco":
            from graphs.leco import LecoConfig

            if not isinstance(value, Mapping):
                raise InvalidRequestError("sc_chains.leco", value, "pass an object of LECO settings")
            leco_fields = {f.name for f in fields(LecoConfig)}
            for sub in value:
                if sub not in leco_fields:
                    raise InvalidRequestError(f"sc_chains.leco.{sub}", value[sub],
                                              f"LECO has no such setting; use {', '.join(sorted(leco_fields))}")
            return
    if key not in allowed:
        fix = (f"chain {spec.name!r} takes {', '.join(sorted(allowed | set(SERVER_KEYS)))}" if allowed
               else f"chain {spec.name!r} takes no settings besides {', '.join(SERVER_KEYS)}; "
                    "use the standard fields (max_tokens, temperature, ...)")
        raise InvalidRequestError(f"sc_chains.{key}", value, fix)


def _final_generation(text: str, calls: list[Generation]) -> Generation | None:
    """The latest call that wrote the end of the final answer (for its finish reason)."""
    for gen in reversed(calls):
        if gen.full_text == text:
            return gen
    stripped = text.strip()
    for gen in reversed(calls):
        if stripped and gen.text.strip() and stripped.endswith(gen.text.strip()):
            return gen
    return None


def _answer_tokens(text: str, calls: list[Generation], depth: int = 0) -> tuple[TokenLogprob, ...] | None:
    """Tokens with logprobs spelling exactly ``text``, from the calls that wrote it: the call that
    wrote it all, or the call that wrote its end after a kept prefix (a LECO rethink, by
    ``prefill`` or in the chat), with the prefix's tokens from the call that wrote the prefix."""
    if depth > 16 or not text:
        return None
    for gen in reversed(calls):
        if gen.tokens is not None and gen.full_text == text:
            return _joined(text[: len(gen.prefill)], gen, calls, depth)
    for gen in reversed(calls):
        if gen.tokens is not None and not gen.prefill and gen.text and len(gen.text) < len(text) \
                and text.endswith(gen.text):
            joined = _joined(text[: len(text) - len(gen.text)], gen, calls, depth)
            if joined is not None:
                return joined
    return None


def _joined(head: str, gen: Generation, calls: list[Generation], depth: int) -> tuple[TokenLogprob, ...] | None:
    """``head``'s tokens (cut from an earlier call that wrote it) + ``gen``'s tokens after it."""
    assert gen.tokens is not None
    if not head:
        return gen.tokens
    source = next((g for g in reversed(calls) if g is not gen and g.tokens is not None and len(g.prefill) < len(head)
                   and len(g.full_text) > len(head) and g.full_text.startswith(head)), None)
    if source is None or depth > 16:
        return None
    whole = _joined(source.prefill, source, calls, depth + 1)
    if whole is None:
        return None
    kept = tuple(t for t in whole if t.offset + len(t.token) <= len(head))
    if "".join(t.token for t in kept) != head:  # the cut is not on a token boundary
        return None
    return kept + tuple(_shift(t, len(head)) for t in gen.tokens)


def _shift(token: TokenLogprob, by: int) -> TokenLogprob:
    return replace(token, offset=token.offset + by)
