"""A LangChain chat model over any logprob adapter, local Hugging Face models included.

``ChatLogprobModel(model="hf:default")`` is a real ``BaseChatModel``: ``invoke``, ``ainvoke``,
``stream``, ``astream``, ``batch`` and every LCEL composition work, and each reply carries the
per-token logprobs in OpenAI's shape (``response_metadata["logprobs"]``), so code written for
``ChatOpenAI(logprobs=True)`` reads a local model's logprobs the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from sc_chains._logprob_events import LogprobEventsMixin
from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import Generation
from sc_chains.render import token_segments

__all__ = ["ChatLogprobModel"]

_PARAMS = ("max_tokens", "temperature", "top_p", "top_logprobs", "stop", "seed")
_CALL_ONLY = ("prefill",)
_IGNORED = ("stream",)  # LangChain's own switch, not a generation parameter


class ChatLogprobModel(LogprobEventsMixin, BaseChatModel):
    """A LangChain chat model that returns per-token logprobs from any :class:`LogprobModel`.

    Example::

        chat = ChatLogprobModel(model="hf:default", max_tokens=32, top_logprobs=3)
        msg = chat.invoke("What is 2 + 3?")
        msg.response_metadata["logprobs"]["content"][0]  # {"token", "logprob", "bytes", "top_logprobs"}
        msg.usage_metadata  # {"input_tokens", "output_tokens", "total_tokens"}

    Call-time keyword arguments (``max_tokens``, ``temperature``, ``top_p``, ``top_logprobs``,
    ``stop``, ``seed``, and ``prefill`` where the adapter supports it) override the fields.

    Streaming yields one ``AIMessageChunk`` per generated token as the adapter produces it
    (local Hugging Face models token by token as they decode, OpenAI-compatible servers as
    their SSE events arrive; other adapters give the whole reply at once), each with that
    token's logprob in ``response_metadata["logprobs"]["content"]`` (chunks add up to the whole
    list), then a last chunk with ``finish_reason``, ``model_name`` and ``usage_metadata``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any
    """The adapter: a :class:`LogprobModel`, or any spec ``resolve_model`` accepts (``"hf:default"``)."""
    max_tokens: int = 256
    """Most tokens to generate per call."""
    temperature: float = 0.0
    """Sampling temperature; 0 is greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    top_logprobs: int = 0
    """Alternatives returned per token (0 = only the chosen token's logprob)."""
    stop: list[str] | None = None
    """Default stop sequences (a call's ``stop=`` replaces them)."""
    seed: int | None = None
    """Sampling seed."""

    def __init__(self, model: Any = None, /, **data: Any) -> None:
        """``ChatLogprobModel(adapter_or_spec, **fields)`` or ``ChatLogprobModel(model=..., ...)``."""
        if model is not None:
            data["model"] = model
        if "model" not in data:
            raise InvalidRequestError("model", None, "pass an adapter or a spec, e.g. model='hf:default'")
        # resolved before pydantic runs, so spec errors keep their own type (UnknownModelSpecError)
        data["model"] = resolve_model(data["model"])
        super().__init__(**data)
        self.model.request("validate", **self._params())  # typed errors for bad fields, now

    # -- parameters --------------------------------------------------------------------------
    def _params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """The generation arguments of one call: the fields, overridden by call kwargs."""
        unknown = sorted(set(kwargs) - set(_PARAMS) - set(_CALL_ONLY) - set(_IGNORED))
        if unknown:
            raise InvalidRequestError(
                unknown[0], kwargs[unknown[0]], f"ChatLogprobModel accepts {', '.join(_PARAMS + _CALL_ONLY)}"
            )
        params = {name: getattr(self, name) for name in _PARAMS}
        params.update({k: v for k, v in kwargs.items() if k not in _IGNORED})
        if stop is not None:
            params["stop"] = stop
        return params

    @property
    def _llm_type(self) -> str:
        return "sc-chains-logprob"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model.name, **{name: getattr(self, name) for name in _PARAMS}}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "sc-chains"
        params["ls_model_name"] = self.model.name
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        return params

    # -- generation --------------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result(self.model.generate(messages, **self._params(stop, **kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result(await self.model.agenerate(messages, **self._params(stop, **kwargs)))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        cursor = _ChunkCursor()
        for delta in self.model.stream(messages, **self._params(stop, **kwargs)):
            for chunk in cursor.chunks(delta):
                if run_manager is not None and chunk.text:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        cursor = _ChunkCursor()
        async for delta in self.model.astream(messages, **self._params(stop, **kwargs)):
            for chunk in cursor.chunks(delta):
                if run_manager is not None and chunk.text:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk


# -- conversion: Generation -> LangChain messages ------------------------------------------------
def _usage(gen: Generation) -> UsageMetadata:
    usage = UsageMetadata(
        input_tokens=gen.usage.prompt_tokens,
        output_tokens=gen.usage.completion_tokens,
        total_tokens=gen.usage.total_tokens,
    )
    if gen.usage.cached_tokens:
        usage["input_token_details"] = {"cache_read": gen.usage.cached_tokens}
    return usage


def _metadata(gen: Generation) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "finish_reason": gen.finish_reason,
        "model_name": gen.model,
        "model_provider": "sc-chains",
    }
    if gen.prefill:
        meta["prefill"] = gen.prefill
    return meta


def _logprobs(gen: Generation) -> dict[str, Any] | None:
    return gen.to_openai_logprobs() if gen.tokens is not None else None


def _result(gen: Generation) -> ChatResult:
    message = AIMessage(
        content=gen.text,
        response_metadata={**_metadata(gen), "logprobs": _logprobs(gen)},
        usage_metadata=_usage(gen),
    )
    return ChatResult(
        generations=[ChatGeneration(message=message)],
        llm_output={"model_name": gen.model, "token_usage": gen.usage.to_dict()},
    )


class _ChunkCursor:
    """Turns a stream of adapter deltas into LangChain chunks: one per token, then the totals.

    Contents concatenate to the reply's text; the ``logprobs.content`` lists concatenate to
    :meth:`Generation.to_openai_logprobs` (LangChain merges chunk metadata by adding lists).
    """

    def __init__(self) -> None:
        self._chars = 0  # text handed out so far: token offsets are relative to the whole reply
        self._logprobs = False

    def chunks(self, delta: Generation) -> list[ChatGenerationChunk]:
        out = []
        if delta.tokens is not None:
            self._logprobs = True
        shifted = replace(delta, tokens=tuple(replace(t, offset=t.offset - self._chars) for t in delta.tokens or ()))
        for piece, tok in token_segments(shifted):
            meta = {"logprobs": {"content": [tok.to_openai()]}} if tok is not None else {}
            out.append(ChatGenerationChunk(message=AIMessageChunk(content=piece, response_metadata=meta)))
        self._chars += len(delta.text)
        if delta.finish_reason is not None:
            out.append(self._last(delta))
        return out

    def _last(self, delta: Generation) -> ChatGenerationChunk:
        meta = _metadata(delta)
        meta["logprobs"] = {"content": []} if self._logprobs else None
        last = AIMessageChunk(content="", response_metadata=meta, usage_metadata=_usage(delta), chunk_position="last")
        return ChatGenerationChunk(message=last)
