"""A chain's visible model calls in LangGraph's ``stream_mode="messages"``, token by token.

The chain graphs call logprob adapters, which LangGraph's messages stream cannot see. For the
calls that should be visible (the final answer, by default), the graph driver runs the adapter
through :class:`AdapterCall`, a minimal internal chat model: LangGraph's stream handler sees a
chat model run and gets each delta of ``adapter.stream(request)`` as a token chunk (adapters
without ``stream`` give one chunk: the whole reply). The joined :class:`~adapters.types.Generation`
(text, token logprobs, usage) is what the loop receives, exactly as from ``generate``.

Calls are tagged ``sc_chains`` and ``sc_chains:<graph>:<role>`` so an app can filter them.
"""

from __future__ import annotations

import functools
import re
from uuid import uuid4
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables.config import var_child_runnable_config
from pydantic import Field

from adapters.types import Generation, TokenLogprob, Usage

__all__ = ["STREAM_POLICIES", "AdapterCall", "StreamPolicy", "join_deltas", "stream_text", "visible"]

StreamPolicy = Literal["final", "all", "none"]
STREAM_POLICIES: tuple[str, ...] = ("final", "all", "none")
"""Which model calls of a chain graph reach ``stream_mode="messages"``: ``"final"`` (default:
the calls whose reply may be the answer), ``"all"`` (drafts and critiques too) or ``"none"``.
Every step goes out as custom events (``stream_mode="custom"``) either way."""


def visible(policy: str, final: bool) -> bool:
    """Whether a call with ``final`` streams its tokens under ``policy``."""
    return policy == "all" or (policy == "final" and final)


def join_deltas(deltas: Iterable[Generation]) -> Generation:
    """One generation from stream deltas (text and tokens appended; finish reason and usage
    from the last delta that has them)."""
    text: list[str] = []
    tokens: list[TokenLogprob] = []
    any_tokens, finish, usage, model, prefill = False, "stop", Usage(), "", ""
    for d in deltas:
        text.append(d.text)
        if d.tokens is not None:
            any_tokens = True
            tokens.extend(d.tokens)
        if d.finish_reason is not None:
            finish, usage = d.finish_reason, d.usage
        model, prefill = d.model or model, d.prefill or prefill
    return Generation(text="".join(text), tokens=tuple(tokens) if any_tokens else None,
                      finish_reason=finish, usage=usage, model=model, prefill=prefill)


def _chunk(delta: Generation, message_id: str | None = None) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=delta.text, id=message_id))


def _last(gen: Generation, message_id: str | None = None) -> ChatGenerationChunk:
    u = gen.usage
    usage = {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens, "total_tokens": u.total_tokens}
    meta = {"finish_reason": gen.finish_reason, "model_name": gen.model}
    return ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage, response_metadata=meta,  # type: ignore[arg-type]
                                                      id=message_id, chunk_position="last"))


class AdapterCall(BaseChatModel):
    """Internal: one logprob-adapter request run as a chat model (see the module docstring).

    ``sink`` receives the joined :class:`Generation` when the call ends."""

    adapter: Any
    request: Any
    sink: list[Generation] = Field(default_factory=list)
    message_id: str | None = None
    """The id the streamed chunks carry (the final message's, so a stream shows it once)."""

    @property
    def _llm_type(self) -> str:
        return "sc-chains-adapter"

    def _deltas(self) -> Iterator[Generation]:
        if hasattr(self.adapter, "stream"):
            yield from self.adapter.stream(self.request)
        else:
            yield self.adapter.generate(self.request)

    async def _adeltas(self) -> AsyncIterator[Generation]:
        if hasattr(self.adapter, "astream"):
            async for d in self.adapter.astream(self.request):
                yield d
        else:
            yield await self.adapter.agenerate(self.request)

    # Nobody streams (LangChain calls ``_stream`` when a messages-stream handler listens): the
    # plain request, which a local model batches with concurrent ones (a stream decodes alone).
    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        gen = self.adapter.generate(self.request)
        self.sink.append(gen)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(gen.text))])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        gen = await self.adapter.agenerate(self.request)
        self.sink.append(gen)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(gen.text))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        seen: list[Generation] = []
        for d in self._deltas():
            seen.append(d)
            yield _chunk(d, self.message_id)
        self.sink.append(join_deltas(seen))
        yield _last(self.sink[-1], self.message_id)

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        seen: list[Generation] = []
        async for d in self._adeltas():
            seen.append(d)
            yield _chunk(d, self.message_id)
        self.sink.append(join_deltas(seen))
        yield _last(self.sink[-1], self.message_id)


def _config(graph: str, role: str) -> dict[str, Any]:
    cfg = var_child_runnable_config.get() or {}
    return {"tags": [*(cfg.get("tags") or []), "sc_chains", f"sc_chains:{graph}:{role}"]}


def _messages(request: Any) -> Sequence[dict[str, str]]:
    msgs = [dict(m) for m in request.messages]
    return [*msgs, {"role": "assistant", "content": request.prefill}] if request.prefill else msgs


def stream_call(adapter: Any, request: Any, *, graph: str, role: str) -> Generation:
    """Run ``request`` visibly (its tokens reach ``stream_mode="messages"``); the Generation."""
    call = AdapterCall(adapter=adapter, request=request)
    call.invoke(_messages(request), _config(graph, role))  # type: ignore[arg-type]
    return call.sink[-1]


async def astream_call(adapter: Any, request: Any, *, graph: str, role: str) -> Generation:
    """Async :func:`stream_call`."""
    call = AdapterCall(adapter=adapter, request=request)
    await call.ainvoke(_messages(request), _config(graph, role))  # type: ignore[arg-type]
    return call.sink[-1]


_PIECES = re.compile(r"\n|[^\S\n]*\S+|[^\S\n]+")


@functools.lru_cache(maxsize=1)
def _handler_type() -> type | None:
    try:
        from langgraph.pregel._messages import StreamMessagesHandler
    except ImportError:  # pragma: no cover - another langgraph layout: nothing to feed
        return None
    return StreamMessagesHandler


def _stream_handlers(cfg: dict[str, Any]) -> list[Any]:
    """LangGraph's messages-stream handlers among the current run's callbacks."""
    StreamMessagesHandler = _handler_type()
    if StreamMessagesHandler is None:  # pragma: no cover
        return []
    callbacks = cfg.get("callbacks")
    handlers = getattr(callbacks, "handlers", callbacks) or []
    return [h for h in handlers if isinstance(h, StreamMessagesHandler)]


def stream_text(text: str, *, graph: str, role: str = "answer", message_id: str | None = None) -> None:
    """Show a finished ``text`` in ``stream_mode="messages"`` piece by piece: how a method whose
    answer is chosen after its calls (LECO's vote) streams that answer. No model call is made
    and only LangGraph's messages stream sees it (other callbacks count no extra call). With
    ``message_id`` (the final message's id) the stream shows that message once; inside a call an
    outer middleware tagged ``nostream`` (its draft), nothing is shown."""
    cfg = var_child_runnable_config.get() or {}
    handlers = _stream_handlers(cfg)
    if not handlers:
        return
    tags = _config(graph, role)["tags"]
    message_id = message_id or f"sc_chains-{uuid4()}"
    pieces = _PIECES.findall(text) or [""]
    for h in handlers:
        run_id = uuid4()
        h.on_chat_model_start({}, [[]], run_id=run_id, tags=tags, metadata=dict(cfg.get("metadata") or {}))
        for piece in pieces:
            h.on_llm_new_token(piece, chunk=ChatGenerationChunk(message=AIMessageChunk(content=piece, id=message_id)),
                               run_id=run_id)
        final = ChatGeneration(message=AIMessage(text, id=message_id))
        h.on_llm_end(LLMResult(generations=[[final]]), run_id=run_id)
