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

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables.config import var_child_runnable_config
from pydantic import Field

from adapters.types import Generation, TokenLogprob, Usage

__all__ = ["STREAM_POLICIES", "AdapterCall", "StreamPolicy", "join_deltas", "visible"]

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


def _chunk(delta: Generation) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=delta.text))


def _last(gen: Generation) -> ChatGenerationChunk:
    u = gen.usage
    usage = {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens, "total_tokens": u.total_tokens}
    meta = {"finish_reason": gen.finish_reason, "model_name": gen.model}
    return ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage, response_metadata=meta))  # type: ignore[arg-type]


class AdapterCall(BaseChatModel):
    """Internal: one logprob-adapter request run as a chat model (see the module docstring).

    ``sink`` receives the joined :class:`Generation` when the call ends."""

    adapter: Any
    request: Any
    sink: list[Generation] = Field(default_factory=list)

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

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        gen = join_deltas(self._deltas())
        self.sink.append(gen)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(gen.text))])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        gen = join_deltas([d async for d in self._adeltas()])
        self.sink.append(gen)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(gen.text))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        seen: list[Generation] = []
        for d in self._deltas():
            seen.append(d)
            yield _chunk(d)
        self.sink.append(join_deltas(seen))
        yield _last(self.sink[-1])

    async def _astream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        seen: list[Generation] = []
        async for d in self._adeltas():
            seen.append(d)
            yield _chunk(d)
        self.sink.append(join_deltas(seen))
        yield _last(self.sink[-1])


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
