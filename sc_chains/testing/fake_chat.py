"""A scripted LangChain chat model with per-token logprobs, for agent and middleware tests.

Like langchain_core's ``GenericFakeChatModel``, but every text reply carries per-token logprobs
in OpenAI's shape (``response_metadata["logprobs"] = {"content": [{"token", "logprob", "bytes",
"top_logprobs"}]}``) and ``usage_metadata``, tool calling works (``bind_tools`` records the tools
and returns the model; script an ``AIMessage(tool_calls=[...])``), every call is recorded, and
sync, async and streaming all work.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables.config import get_config_list
from pydantic import ConfigDict, Field, PrivateAttr

from sc_chains._logprob_events import LogprobEventsMixin
from adapters.fake import FakeReply, _alternatives, split_tokens
from adapters.types import TokenLogprob, tokens_from_pairs

__all__ = ["FakeLogprobChatModel"]


class FakeLogprobChatModel(LogprobEventsMixin, BaseChatModel):
    """A chat model that replays scripted replies, each with per-token logprobs.

    Example::

        chat = FakeLogprobChatModel(replies=["Step 1: 2 + 3 = 5\\nThe answer is 5.",
                                             FakeReply("Maybe 6", overrides={"6": -2.5})])
        msg = chat.invoke("What is 2 + 3?")
        msg.response_metadata["logprobs"]["content"][0]["logprob"]  # -0.05

    A reply is a string, an :class:`~adapters.fake.FakeReply` (per-substring logprobs), an
    ``AIMessage`` (returned as is, with logprobs added to its text when it has none; script tool
    calls this way), an exception (raised), or a callable ``(messages) -> reply``. Calls are
    recorded in :attr:`calls` (the messages) and :attr:`call_kwargs` (the call's keyword
    arguments, e.g. ``tools`` after ``bind_tools``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any] = Field(default_factory=list)
    """The reply queue, consumed front to back."""
    default: Any = None
    """The reply once the queue is empty (``None``: raise ``IndexError``)."""
    logprob: float = -0.05
    """The logprob of each token of a plain string reply."""
    logprobs: bool = True
    """``False``: replies carry no logprobs (like a chat API without ``logprobs=True``)."""
    stream_usage: bool = True
    """``False``: streamed replies carry no ``usage_metadata`` (like llama.cpp or OpenAI without
    ``stream_options={"include_usage": True}``); ``invoke`` outside a stream still has it."""
    model_name: str = "fake-logprob-chat"
    """The model name reported in ``response_metadata``."""
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    """The messages of every call, in order."""
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)
    """The keyword arguments of every call (``stop``, ``tools``, ``top_logprobs`` ...)."""
    bound_tools: list[Any] = Field(default_factory=list)
    """The tools of the last ``bind_tools`` call."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "fake-logprob-chat"

    @property
    def remaining(self) -> int:
        """Scripted replies not yet consumed."""
        return len(self.replies)

    def add(self, *replies: Any) -> None:
        """Append replies to the queue."""
        with self._lock:
            self.replies.extend(replies)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeLogprobChatModel:  # type: ignore[override]
        """Record ``tools`` and return the model itself (the script decides on tool calls)."""
        self.bound_tools = list(tools)
        return self

    # -- one reply -------------------------------------------------------------------------------
    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        with self._lock:
            self.calls.append(list(messages))
            self.call_kwargs.append(dict(kwargs))
            if self.replies:
                item = self.replies.pop(0)
            elif self.default is not None:
                item = self.default
            else:
                raise IndexError(
                    f"{self.model_name}: the reply queue is empty after {len(self.calls) - 1} "
                    "calls; script more replies or pass default="
                )
        if callable(item) and not isinstance(item, (FakeReply, AIMessage, BaseException)):
            item = item(messages)
        if isinstance(item, BaseException):
            raise item
        return self._message(item, messages, int(kwargs.get("top_logprobs") or 0))

    def _message(self, item: Any, messages: list[BaseMessage], top_k: int) -> AIMessage:
        if isinstance(item, AIMessage):
            reply, base = FakeReply(item.text, self.logprob), item
        else:
            reply = item if isinstance(item, FakeReply) else FakeReply(str(item), self.logprob)
            base = AIMessage(content=reply.text)
        tokens = tokens_from_pairs([(t, lp, ()) for t, lp in reply.token_logprobs()])
        meta: dict[str, Any] = {"finish_reason": "tool_calls" if base.tool_calls else "stop"}
        meta["model_name"] = self.model_name
        if self.logprobs and "logprobs" not in base.response_metadata:
            meta["logprobs"] = {"content": [_openai(t, top_k) for t in tokens]}
        usage = UsageMetadata(
            input_tokens=sum(len(split_tokens(m.text)) for m in messages),
            output_tokens=max(len(tokens), 1 if base.tool_calls else 0),
            total_tokens=0,
        )
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        return base.model_copy(
            update={
                "response_metadata": {**meta, **base.response_metadata},
                "usage_metadata": base.usage_metadata or usage,
            }
        )

    # -- BaseChatModel -------------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages, {"stop": stop, **kwargs}))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)

    def batch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
              **kwargs: Any) -> list[Any]:
        """Like ``BaseChatModel.batch``, but one input after another, in order: the scripted
        queue answers a batch's calls in order (a thread pool would not)."""
        out: list[Any] = []
        for x, c in zip(inputs, get_config_list(config, len(inputs))):
            try:
                out.append(self.invoke(x, c, **kwargs))
            except Exception as exc:
                out.append(_failed(exc, return_exceptions))
        return out

    async def abatch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
                     **kwargs: Any) -> list[Any]:
        """Async :meth:`batch` (in order too)."""
        out: list[Any] = []
        for x, c in zip(inputs, get_config_list(config, len(inputs))):
            try:
                out.append(await self.ainvoke(x, c, **kwargs))
            except Exception as exc:
                out.append(_failed(exc, return_exceptions))
        return out

    _report_empty_chunks: ClassVar[bool] = True

    def _chunks(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
        return iter(_split(self._next(messages, {"stop": stop, **kwargs}), usage=self.stream_usage))

    async def _achunks(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, stop, kwargs):
            yield chunk


def _failed(exc: Exception, keep: bool) -> Exception:
    """A batch's failed input: re-raised, or (``return_exceptions=True``) its result."""
    if not keep:
        raise exc
    return exc


def _openai(token: TokenLogprob, top_k: int) -> dict[str, Any]:
    out = token.to_openai()  # top_logprobs: the scripted alternatives (a plain token has none)
    if top_k:
        out["top_logprobs"] = [a.to_openai() for a in _alternatives(token.token, token.logprob, top_k)]
    return out


def _split(message: AIMessage, *, usage: bool = True) -> list[ChatGenerationChunk]:
    """One chunk per token (its logprob in its metadata), then tool calls and the totals.

    Chunk contents concatenate to the text and the ``logprobs.content`` lists to the whole
    list (LangChain adds lists when it merges chunk metadata).
    """
    lp = message.response_metadata.get("logprobs")
    items = (lp or {}).get("content") or []
    out = [
        ChatGenerationChunk(
            message=AIMessageChunk(
                content=item["token"], id=message.id, response_metadata={"logprobs": {"content": [item]}}
            )
        )
        for item in items
    ]
    if not items and message.text:
        out.append(ChatGenerationChunk(message=AIMessageChunk(content=message.text, id=message.id)))
    tool_chunks = [
        {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": i}
        for i, tc in enumerate(message.tool_calls)
    ]
    last_meta = {k: v for k, v in message.response_metadata.items() if k != "logprobs"}
    if lp is not None:
        last_meta["logprobs"] = {"content": []}
    out.append(
        ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=message.id,
                tool_call_chunks=tool_chunks,
                response_metadata=last_meta,
                usage_metadata=message.usage_metadata if usage else None,
                chunk_position="last",
            )
        )
    )
    return out

