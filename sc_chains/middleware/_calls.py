"""How a middleware executes its method's loop inside an agent: one driver, written once.

Each middleware drives its method's loop (``graphs/<method>/loop.py``, the code the graphs drive
too) with :func:`graphs.loop.drive` / :func:`graphs.loop.adrive`; :class:`AgentCalls` executes the
loop's requests (model calls, batches, text scores) inside the agent. The helpers here turn agent
replies into the :class:`~adapters.types.Generation` a loop reads, count usage a server did not
send, and set a sampled call's settings on the agent's model.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from adapters.errors import InvalidRequestError, ScoringUnavailableError
from adapters.types import Generation, Usage
from graphs.loop import TOOL_CALLS, Batch, ModelCall, Score, adrive, drive  # noqa: F401  (one driver, shared with the graphs)
from sc_chains.middleware._shared import call_scope, mark

__all__: list[str] = []  # internal helpers


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
    raise ScoringUnavailableError(str(name), "pass a ChatLogprobModel over a model that scores text "
                                  "(ChatLogprobModel(model='hf:...'), or over OpenAIModel(..., text_scores=True) "
                                  "for a vLLM or sc-chains serve server) as the scoring model, or use "
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


