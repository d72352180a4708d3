"""What the three middleware share: budgets, the streaming policy, cost accounting, one driver.

- **Budgets** live in each middleware's private state as a *ledger* keyed by the id of the
  latest user message, so they count per request, survive a checkpoint and an interrupt, and
  reset when the user sends a new message.
- **Streaming**: every extra model call runs inside :func:`call_scope`, which tags it
  ``sc_chains`` / ``sc_chains:<middleware>:<role>`` and, under ``stream="final"``, ``nostream``
  (LangGraph's ``stream_mode="messages"`` then drops its tokens).
- **Cost**: the extra calls and tokens are added to the final ``AIMessage``'s
  ``usage_metadata`` and itemised in ``response_metadata["sc_chains"][<middleware>]``.
- **One loop per method**: each middleware drives its method's loop (``graphs/<method>/loop.py``,
  the code the graphs drive too) with :func:`graphs.loop.drive` / :func:`graphs.loop.adrive`;
  :class:`AgentCalls` executes the loop's model calls inside the agent.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables.config import var_child_runnable_config

from adapters.errors import InvalidRequestError, ScoringUnavailableError
from adapters.types import Generation, Usage
from graphs.common import emit
from graphs.validate import Options, check_choice, check_int
from graphs.vocab import MAX_COMPLETION_TOKENS, MAX_CORRECTIONS, Allowance, Cost
from graphs.loop import TOOL_CALLS, Batch, ModelCall, Score, adrive, drive  # noqa: F401  (one driver, shared with the graphs)

__all__: list[str] = []  # internal helpers; the public names live in the middleware modules

StreamPolicy = Literal["final", "all"]
STREAM_POLICIES: tuple[str, ...] = ("final", "all")
NOSTREAM = "nostream"  # langgraph.constants.TAG_NOSTREAM

T = TypeVar("T")


@dataclass(frozen=True)
class Budget(Options):
    """How much correction one request (one user message) may buy, and how it streams."""

    max_corrections: int = 2
    """Most corrections (rethinks, revisions, critique turns) per request; 0 disables them."""
    max_completion_tokens: int | None = 4000
    """Most generated tokens (completion tokens only, as everywhere in sc-chains) of the
    middleware's runs per request; None: no limit."""
    stream: StreamPolicy = "final"
    """``"final"``: only the final answer reaches ``stream_mode="messages"`` (extra calls are
    tagged ``nostream``); ``"all"``: every call streams. Custom events go out either way."""

    def __post_init__(self) -> None:
        check_int("max_corrections", self.max_corrections, minimum=0)
        check_int("max_completion_tokens", self.max_completion_tokens, minimum=1, allow_none=True)
        check_choice("stream", self.stream, STREAM_POLICIES)

    def allowance(self, led: Mapping[str, Any]) -> Allowance:
        """What is left of this request's budget after ``led`` (a ledger)."""
        tokens = None
        if self.max_completion_tokens is not None:
            tokens = max(0, self.max_completion_tokens - int(led.get("output_tokens", 0)))
        return {"corrections": max(0, self.max_corrections - int(led.get("corrections", 0))),
                "completion_tokens": tokens}


# -- the per-request ledger (private state) -------------------------------------------------------
def request_id(messages: Sequence[BaseMessage]) -> str:
    """The id of the latest user message (the current request); ``""`` when there is none."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, HumanMessage) and not is_ours(m):
            return m.id or f"human-{i}"
    return ""


def ledger(state: Mapping[str, Any], key: str) -> dict[str, Any]:
    """This request's ledger under ``state[key]`` (a fresh one when the request changed)."""
    rid = request_id(state.get("messages") or [])
    old = state.get(key) or {}
    if old.get("request") == rid:
        return dict(old)
    return {"request": rid, "corrections": 0, "calls": 0, "input_tokens": 0, "output_tokens": 0}


def by_name(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reducer of a middleware's private key: one entry per instance ``name`` (two instances of
    one middleware coexist in an agent, each with its own ledger)."""
    return {**(left or {}), **(right or {})}


def own_ledger(state: Mapping[str, Any], key: str, name: str) -> dict[str, Any]:
    """This request's ledger of the instance ``name`` (``state[key][name]``, see :func:`by_name`)."""
    mine = (state.get(key) or {}).get(name)
    return ledger({"messages": state.get("messages") or [], "led": mine}, "led")


def budget_stop(led: Mapping[str, Any], budget: Budget) -> str | None:
    """Why no further correction is allowed (``"max_corrections"`` /
    ``"max_completion_tokens"``), or None."""
    if led.get("corrections", 0) >= budget.max_corrections:
        return MAX_CORRECTIONS
    if budget.max_completion_tokens is not None and int(led.get("output_tokens", 0)) >= budget.max_completion_tokens:
        return MAX_COMPLETION_TOKENS
    return None


def charge_cost(led: dict[str, Any], cost: Cost, *, corrections: int = 0) -> None:
    """Add a loop's :class:`~graphs.vocab.Cost` to the ledger, in place."""
    led["calls"] = led.get("calls", 0) + cost["calls"]
    led["input_tokens"] = led.get("input_tokens", 0) + cost["prompt_tokens"]
    led["output_tokens"] = led.get("output_tokens", 0) + cost["completion_tokens"]
    led["corrections"] = led.get("corrections", 0) + corrections


def usage(result: Any) -> tuple[int, int]:
    """``(input_tokens, output_tokens)`` of a message's ``usage_metadata``, a ``Generation``'s
    usage, or a list of either (0, 0 when absent)."""
    if isinstance(result, (list, tuple)):
        pairs = [usage(r) for r in result]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    u = getattr(result, "usage", None)
    if u is not None and hasattr(u, "prompt_tokens"):
        return int(u.prompt_tokens), int(u.completion_tokens)
    um = getattr(result, "usage_metadata", None) or {}
    return int(um.get("input_tokens", 0)), int(um.get("output_tokens", 0))


def swap_final(cost: dict[str, Any], draft: BaseMessage, final: BaseMessage) -> dict[str, Any]:
    """``cost`` (the extra calls' spend) corrected for a final answer that is not the draft: the
    draft becomes extra and the final's own tokens are not, so the final message's usage plus
    ``cost`` is exactly what the whole turn spent."""
    if final is draft:
        return cost
    (di, do), (fi, fo) = usage(draft), usage(final)
    return {**cost, "input_tokens": cost["input_tokens"] + di - fi, "output_tokens": cost["output_tokens"] + do - fo}


def with_cost(message: AIMessage, name: str, cost: Mapping[str, Any]) -> AIMessage:
    """``message`` with ``cost`` added to its usage and itemised under ``sc_chains[name]``."""
    meta = dict(message.response_metadata)
    sc = dict(meta.get("sc_chains") or {})
    sc[name] = {**(sc.get(name) or {}), **cost}
    meta["sc_chains"] = sc
    um = dict(message.usage_metadata or {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})
    um["input_tokens"] = int(um.get("input_tokens", 0)) + int(cost.get("input_tokens", 0))
    um["output_tokens"] = int(um.get("output_tokens", 0)) + int(cost.get("output_tokens", 0))
    um["total_tokens"] = um["input_tokens"] + um["output_tokens"]
    return message.model_copy(update={"response_metadata": meta, "usage_metadata": um})


# -- streaming -----------------------------------------------------------------------------------
@contextmanager
def call_scope(stream: str, middleware: str, role: str, *, final: bool = False) -> Iterator[None]:
    """Tag the model calls made inside: ``sc_chains:<middleware>:<role>``, plus ``nostream``
    under ``stream="final"`` unless the call is the final answer (``final=True``); a call that is
    not the final answer also carries LangChain's internal-call metadata (``lc_source``, as
    ``SummarizationMiddleware`` does), so stream transformers keep it out of the conversation.

    Works for sync and async code alike (a context variable, reset on exit).
    """
    cfg = var_child_runnable_config.get() or {}
    tags = [*(cfg.get("tags") or []), "sc_chains", f"sc_chains:{middleware}:{role}"]
    metadata = dict(cfg.get("metadata") or {})
    if stream == "final" and not final:
        tags.append(NOSTREAM)
    if not final:
        metadata.update(lc_source=f"sc_chains:{middleware}", **_internal_call_metadata())
    token = var_child_runnable_config.set({**cfg, "tags": tags, "metadata": metadata})
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


@functools.lru_cache(maxsize=1)
def _internal_call_metadata() -> dict[str, Any]:
    try:
        from langchain.agents.middleware.internal_call_transformer import internal_call_metadata
    except ImportError:  # an older langchain: the lc_source key alone
        return {}
    return dict(internal_call_metadata())


def event(name: str, **payload: Any) -> None:
    """A custom stream event (``stream_mode="custom"``); a no-op outside a graph run."""
    emit(name, **payload)


# -- driving a loop written once ---------------------------------------------------------------
def to_generation(message: AIMessage | None, *, structured: bool = False, logprobs: bool = True) -> Generation:
    """An agent reply as the :class:`~adapters.types.Generation` a loop reads: text, token
    logprobs (``None`` when the reply has none), usage; ``finish_reason`` is ``"tool_calls"``
    when the reply calls a tool or is structured output (loops pass those through).
    ``logprobs=False``: the caller reads no tokens (``tokens`` is ``None``, nothing parsed)."""
    if message is None:
        return Generation(text="", tokens=None, finish_reason=TOOL_CALLS)
    um = message.usage_metadata or {}
    usage = Usage(int(um.get("input_tokens", 0)), int(um.get("output_tokens", 0)),
                  int((um.get("input_token_details") or {}).get("cache_read", 0) or 0))
    tokens = _parsed(message.response_metadata) if logprobs else None
    finish = message.response_metadata.get("finish_reason") or "stop"
    if message.tool_calls or structured:
        finish = TOOL_CALLS
    return Generation(text=message.text, tokens=tokens, finish_reason=finish, usage=usage)


_PARSED: OrderedDict[int, tuple[Any, Any, int, tuple[Any, ...] | None]] = OrderedDict()
_PARSED_MAX = 32


def _parsed(meta: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``parse_logprobs(meta)`` as a tuple, remembered for the reply's OpenAI-shape ``logprobs``
    object (by identity, its ``content`` list and length checked): one reply passes through
    several middleware (LECO's kept draft is the reply the critique reads) and is parsed once."""
    from adapters.langchain import parse_logprobs

    lp = meta.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list) or "logprobs_result" in meta or "logprobsResult" in meta:
        tokens = parse_logprobs(meta)
        return None if tokens is None else tuple(tokens)
    hit = _PARSED.get(id(lp))
    if hit is not None and hit[0] is lp and hit[1] is content and hit[2] == len(content):
        return hit[3]
    parsed = parse_logprobs(meta)
    tokens = None if parsed is None else tuple(parsed)
    while len(_PARSED) >= _PARSED_MAX:
        try:
            _PARSED.popitem(last=False)
        except KeyError:  # another thread emptied it
            break
    _PARSED[id(lp)] = (lp, content, len(content), tokens)  # holds lp: its id stays unique
    return tokens


CHARS_PER_TOKEN = 4
"""The local estimate's ratio when neither the server's usage nor token logprobs are there:
one token per 4 characters (OpenAI's rule of thumb for English text), rounded up."""
ESTIMATED = "usage_estimated"
"""The flag: ``response_metadata["usage_estimated"] = True`` on a reply whose ``usage_metadata``
sc-chains counted locally; ``response_metadata["sc_chains"][name]["usage_estimated"]``: how many
of the middleware's calls were counted so."""


def estimate_tokens(text: str) -> int:
    """A local token estimate of ``text``: ``ceil(len(text) / CHARS_PER_TOKEN)``."""
    return -(-len(text) // CHARS_PER_TOKEN)


def _no_usage(message: AIMessage) -> bool:
    um = message.usage_metadata
    return um is None or (not um.get("total_tokens") and not um.get("output_tokens") and bool(message.text))


def counted(message: AIMessage, prompt: Sequence[BaseMessage]) -> AIMessage:
    """``message``, with ``usage_metadata`` counted locally when the server sent none (a server
    that sends no usage while streaming: ``stream_mode="messages"``, ``astream_events``), so token
    budgets still fire. Completion tokens: the reply's logprob tokens when it has them, else
    :func:`estimate_tokens` of its text and tool calls; prompt tokens: the estimate of ``prompt``.
    Flagged ``response_metadata["usage_estimated"] = True``."""
    if not _no_usage(message):
        return message
    from adapters.langchain import parse_logprobs

    tokens = parse_logprobs(message.response_metadata)
    calls = "".join(f"{tc['name']}{tc['args']}" for tc in message.tool_calls)
    out = len(tokens) if tokens else estimate_tokens(message.text + calls)
    inp = sum(estimate_tokens(m.text) for m in prompt)
    um = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
    meta = {**message.response_metadata, ESTIMATED: True}
    return message.model_copy(update={"usage_metadata": um, "response_metadata": meta})


def prompt_of(request: Any) -> list[BaseMessage]:
    """The messages a ``ModelRequest`` sends (its system message first)."""
    system = getattr(request, "system_message", None)
    return [*([system] if system is not None else []), *request.messages]


def counted_response(raw: Any, prompt: Callable[[], Sequence[BaseMessage]]) -> tuple[Any, bool]:
    """A handler's reply (``ModelResponse`` or message) with its AIMessage :func:`counted`
    (``prompt()``: the messages it answered, read only then); whether the usage was estimated."""
    msg = first_ai(raw)
    if msg is None or not _no_usage(msg):
        return raw, False
    fixed = counted(msg, prompt())
    if isinstance(raw, AIMessage):
        return fixed, True
    import dataclasses

    result = [fixed if m is msg else m for m in raw.result]
    return dataclasses.replace(raw, result=result), True


def lc_message(m: Mapping[str, str], owner: str) -> BaseMessage:
    """A loop's ``{"role", "content"}`` message as a LangChain message (user turns marked ours)."""
    from langchain_core.messages import SystemMessage

    if m["role"] == "user":
        return mark(HumanMessage(m["content"]), owner)
    if m["role"] == "assistant":
        return AIMessage(m["content"])
    return SystemMessage(m["content"])


def first_ai(response: Any) -> AIMessage | None:
    """The AIMessage of a ``ModelResponse`` (or the message itself)."""
    if isinstance(response, AIMessage):
        return response
    return next((m for m in (getattr(response, "result", None) or ()) if isinstance(m, AIMessage)), None)


class AgentCalls:
    """Executes a loop's :class:`~graphs.loop.ModelCall` and :class:`~graphs.loop.Batch`
    requests inside an agent.

    A call on the host conversation (``messages is None``) goes to the agent's ``handler`` with
    ``request.override(messages=[*request.messages, *extra])``; a side call (``messages=``) to
    ``models[call.target]`` (a chat model); a batch's side calls to that model's ``batch`` (sync:
    LangChain's thread pool, so a local model coalesces them into one batch) or ``abatch`` (async:
    concurrent). Every call is tagged by :func:`call_scope`; the raw replies are kept in
    :attr:`replies`, in order, so the middleware can return one unchanged.
    """

    def __init__(self, owner: str, stream: str, *, request: Any = None, handler: Any = None,
                 models: Mapping[str, Any] | None = None) -> None:
        self.owner, self.stream, self.request, self.handler = owner, stream, request, handler
        self.models = dict(models or {})
        self.replies: list[Any] = []
        self.estimated = 0
        """How many replies came without usage (counted locally, see :func:`counted`)."""

    def _target(self, call: ModelCall) -> tuple[Callable[..., Any], list[Any], bool]:
        if call.prefill or (call.n != 1 and call.messages is not None):
            raise InvalidRequestError("ModelCall", call.role, "the middleware runs chat calls: no prefill, n > 1 on the host conversation only")
        if call.messages is None:
            extra = [lc_message(m, self.owner) for m in call.extra]
            req = self.request.override(messages=[*self.request.messages, *extra]) if extra else self.request
            return self.handler, sampled_requests(req, call), True
        model = self.models[call.target]
        return model, [[lc_message(m, self.owner) for m in call.messages]], False

    def _batch(self, batch: Batch) -> tuple[Any, list[Any]]:
        """The batch's chat model (its calls share one target) and each call's messages."""
        plans = [self._target(c) for c in batch.calls]  # side calls, n == 1: one message list each
        return plans[0][0], [args[0] for _, args, _ in plans]

    def _record(self, raw: Any, call: ModelCall, arg: Any, host: bool) -> Generation:
        raw, estimated = counted_response(raw, lambda: prompt_of(arg) if host else list(arg))
        self.estimated += estimated
        self.replies.append(raw)
        structured = getattr(raw, "structured_response", None) is not None or len(getattr(raw, "result", [raw])) != 1
        return to_generation(first_ai(raw), structured=structured, logprobs=call.logprobs)

    def _records(self, req: ModelCall | Batch, raws: Sequence[Any], args: Sequence[Any], host: bool) -> Any:
        """The replies as Generations: a list for a batch or ``n > 1``, else the one."""
        calls = req.calls if isinstance(req, Batch) else [req] * len(args)
        gens = [self._record(raw, c, arg, host) for raw, c, arg in zip(raws, calls, args)]
        return gens if isinstance(req, Batch) or req.n != 1 else gens[0]

    def _scorer(self, req: Score) -> Any:
        """The :class:`~adapters.base.LogprobModel` behind the target chat model, for a :class:`Score`."""
        return scoring_model(self.models[req.target])

    def call(self, req: ModelCall | Batch | Score) -> Any:
        """Execute one model call (sync): a Generation, or a list of ``n`` for a sampled call
        (``n`` agent calls, one after another); a :class:`~graphs.loop.Batch` through its chat
        model's ``batch`` (a list, in order); a :class:`~graphs.loop.Score` through the
        ``LogprobModel`` of a :class:`~sc_chains.chat_model.ChatLogprobModel` (:func:`scoring_model`)."""
        if isinstance(req, Score):
            return self._scorer(req).score_texts(req.pairs)
        with call_scope(self.stream, self.owner, req.role, final=isinstance(req, ModelCall) and req.final):
            if isinstance(req, Batch):
                model, batch_args = self._batch(req)
                return self._records(req, model.batch(batch_args), batch_args, False)
            fn, args, host = self._target(req)
            return self._records(req, [fn(a) if host else fn.invoke(a) for a in args], args, host)

    async def acall(self, req: ModelCall | Batch | Score) -> Any:
        """Execute one model call (async; the ``n`` agent calls of a sampled call run
        concurrently); a :class:`~graphs.loop.Batch` concurrently, through its chat model's ``abatch``."""
        if isinstance(req, Score):
            return await self._scorer(req).ascore_texts(req.pairs)
        with call_scope(self.stream, self.owner, req.role, final=isinstance(req, ModelCall) and req.final):
            if isinstance(req, Batch):
                model, batch_args = self._batch(req)
                return self._records(req, await model.abatch(batch_args), batch_args, False)
            fn, args, host = self._target(req)
            if len(args) == 1:
                raws = [await (fn(args[0]) if host else fn.ainvoke(args[0]))]
            else:
                raws = await gather_all([fn(a) for a in args])
            return self._records(req, raws, args, host)


def scoring_model(chat: Any) -> Any:
    """The :class:`~adapters.base.LogprobModel` that scores text for ``chat``: the one inside a
    :class:`~sc_chains.chat_model.ChatLogprobModel` (also under ``.bind(...)``). Other chat
    models only generate: :class:`~adapters.errors.ScoringUnavailableError` with the fix."""
    from sc_chains.chat_model import ChatLogprobModel

    inner = getattr(chat, "bound", chat)  # a RunnableBinding's model
    if isinstance(inner, ChatLogprobModel):
        return inner.model
    name = getattr(inner, "model_name", None) or getattr(inner, "model", None) or type(inner).__name__
    raise ScoringUnavailableError(str(name), "pass a ChatLogprobModel over a local model "
                                  "(ChatLogprobModel(model='hf:...')) as the scoring model, or use "
                                  "filter_signal='yes-no', which any chat model with logprobs answers")


def sampling_settings(call: ModelCall, i: int = 0) -> dict[str, Any]:
    """What a :attr:`~graphs.loop.ModelCall.sampled` call sets on the agent's model (call
    keywords, as ``ChatOpenAI`` and ``ChatLogprobModel`` accept them): its ``temperature`` and
    ``seed + i``; nothing for other calls (the agent's model keeps its own settings)."""
    if not (call.sampled or call.n != 1):
        return {}
    out: dict[str, Any] = {} if call.temperature is None else {"temperature": call.temperature}
    return out if call.seed is None else {**out, "seed": call.seed + i}


def sampled_requests(request: Any, call: ModelCall) -> list[Any]:
    """The ``n`` agent requests of a sampled call: :func:`sampling_settings` of sample ``i`` in
    each request's ``model_settings``; the rest of the request unchanged (any other call: the
    request itself)."""
    if not (call.sampled or call.n != 1):
        return [request]
    base = dict(request.model_settings or {})
    return [request.override(model_settings={**base, **sampling_settings(call, i)}) for i in range(call.n)]


async def gather_all(aws: Sequence[Any]) -> list[Any]:
    """Await ``aws`` concurrently, results in order; on the first failure the others are
    cancelled (and awaited) and that exception propagates unchanged (``GraphBubbleUp`` too)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


OWN_SCHEMES = ("hf", "openai")
"""Spec schemes sc-chains resolves itself (``adapters.specs``); other strings go to LangChain's
``init_chat_model`` (``"anthropic:claude-..."``, ``"ollama:llama3"``...)."""


def chat_model(model: Any, param: str) -> Any:
    """A LangChain chat model from ``model``: a chat model, a logprob adapter, an sc-chains spec
    (``"hf:default"``, ``"openai:NAME"``) or any string ``init_chat_model`` accepts."""
    from langchain_core.language_models import BaseChatModel

    if isinstance(model, BaseChatModel):
        return model
    if isinstance(model, str) and ":" in model and model.partition(":")[0] not in OWN_SCHEMES:
        return _init_chat_model(model, param)
    if isinstance(model, str) or hasattr(model, "generate"):
        from sc_chains.chat_model import ChatLogprobModel

        return ChatLogprobModel(model)
    raise InvalidRequestError(
        param, model, "pass a LangChain chat model, a LogprobModel, or a spec like 'hf:default'"
    )


def _init_chat_model(spec: str, param: str) -> Any:
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(spec)
    except ImportError as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidRequestError(param, spec, f"install the provider's LangChain package ({why})") from None
    except ValueError as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidRequestError(
            param, spec, f"use 'hf:default', 'openai:NAME' or a 'provider:model' string init_chat_model knows ({why})"
        ) from None


def text_of(message: BaseMessage) -> str:
    """A message's text (text parts joined)."""
    return message.text


OURS = "sc_chains"


def is_ours(message: BaseMessage) -> bool:
    """Whether a message was added by an sc-chains middleware (a critique turn...)."""
    return OURS in (message.additional_kwargs or {})


def mark(message: BaseMessage, role: str) -> BaseMessage:
    """``message`` marked as added by sc-chains (``additional_kwargs["sc_chains"] = role``)."""
    message.additional_kwargs = {**(message.additional_kwargs or {}), OURS: role}
    return message


UNSET: Any = type("Unset", (), {"__repr__": lambda self: "<default>", "__bool__": lambda self: False})()
"""Default of a middleware's explicit keyword options: not given (the config's value stays)."""


def given(**options: Any) -> dict[str, Any]:
    """The explicit keyword options actually passed (those not :data:`UNSET`)."""
    return {k: v for k, v in options.items() if v is not UNSET}


def apply_overrides(config: T, overrides: dict[str, Any], owner: str) -> T:
    """``config`` with keyword ``overrides`` (fields of the config or of its nested ``budget``
    and other configs; see :meth:`graphs.validate.Options.from_options`)."""
    try:
        return type(config).from_options(overrides, base=config)  # type: ignore[attr-defined,no-any-return]
    except InvalidRequestError as err:
        if err.fix.startswith(f"{type(config).__name__} accepts"):
            raise InvalidRequestError(err.param, err.value, f"{owner} accepts{err.fix.split('accepts', 1)[1]}") from None
        raise
