"""A LangChain chat model over any logprob adapter, local Hugging Face models included.

``ChatLogprobModel(model="hf:default")`` is a real ``BaseChatModel``: ``invoke``, ``ainvoke``,
``stream``, ``astream``, ``batch`` and every LCEL composition work, and each reply carries the
per-token logprobs in OpenAI's shape (``response_metadata["logprobs"]``), so code written for
``ChatOpenAI(logprobs=True)`` reads a local model's logprobs the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.tools import forced_prefill
from sc_chains._chat_convert import ChunkCursor, ToolPlan, to_result
from sc_chains._logprob_events import LogprobEventsMixin

__all__ = ["ChatLogprobModel"]

_PARAMS = ("max_tokens", "temperature", "top_p", "top_logprobs", "stop", "seed")
_CALL_ONLY = ("prefill", "tools", "tool_choice", "model")
_IGNORED = ("stream", "ls_structured_output_format")  # LangChain's own switches
_TOOL_STOP = "<tool_response>"
"""With tools, generation stops where a model would start imagining a tool's result."""
_MUST_CALL = "Answer with a tool call in <tool_call></tool_call> tags{name}, nothing else."
"""The instruction for ``tool_choice`` on an adapter that cannot prefill the reply."""


class ChatLogprobModel(LogprobEventsMixin, BaseChatModel):
    """A LangChain chat model that returns per-token logprobs from any :class:`LogprobModel`.

    Example::

        chat = ChatLogprobModel(model="hf:default", max_tokens=32, top_logprobs=3)
        msg = chat.invoke("What is 2 + 3?")
        msg.response_metadata["logprobs"]["content"][0]  # {"token", "logprob", "bytes", "top_logprobs"}
        msg.usage_metadata  # {"input_tokens", "output_tokens", "total_tokens"}

    Call-time keyword arguments (``max_tokens``, ``temperature``, ``top_p``, ``top_logprobs``,
    ``stop``, ``seed``, ``prefill`` where the adapter supports it, and ``model=`` another
    adapter or spec for this call) override the fields.

    Streaming yields one ``AIMessageChunk`` per generated token as the adapter produces it
    (local Hugging Face models token by token as they decode, OpenAI-compatible servers as
    their SSE events arrive; other adapters give the whole reply at once), each with that
    token's logprob in ``response_metadata["logprobs"]["content"]`` (chunks add up to the whole
    list), then a last chunk with ``finish_reason``, ``model_name`` and ``usage_metadata``.

    Tools (:meth:`bind_tools`, ``with_structured_output``, ``create_agent(model, tools=...)``):
    a model whose chat template renders tools (Qwen2.5) gets them through its template; any
    other (SmolLM2, ``hf:tiny-random``, servers) gets the documented text prompt of
    :mod:`adapters.tools` (:data:`adapters.tools.TOOL_PROMPT`) in its system message. Replies
    are read as ``<tool_call>{"name", "arguments"}</tool_call>`` blocks into ``tool_calls``
    (unparsable blocks into ``invalid_tool_calls``); results go back as ``ToolMessage``s.
    ``tool_choice="any"``/``"required"``/a tool name forces a call by prefilling the reply with
    the start of a call (an explicit instruction where the adapter cannot prefill).
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
    streaming: bool = False
    """LangChain's switch: ``True`` makes ``invoke`` run through the streaming path (same result)."""

    _overrides: dict[str, LogprobModel] = PrivateAttr(default_factory=dict)

    def __init__(self, model: Any = None, /, **data: Any) -> None:
        """``ChatLogprobModel(adapter_or_spec, **fields)`` or ``ChatLogprobModel(model=..., ...)``."""
        if model is not None:
            data["model"] = model
        if "model" not in data:
            raise InvalidRequestError("model", None, "pass an adapter or a spec, e.g. model='hf:default'")
        unknown = sorted(set(data) - _known_fields(type(self)))
        if unknown:
            raise InvalidRequestError(
                unknown[0], data[unknown[0]],
                f"ChatLogprobModel takes model, {', '.join(_PARAMS)} and LangChain's BaseChatModel "
                "fields (callbacks, tags, metadata, rate_limiter, disable_streaming, ...)",
            )  # fmt: skip
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

    def _adapter(self, spec: Any) -> LogprobModel:
        """The adapter of a call: the field, or a call-time ``model=`` (resolved once, kept)."""
        if spec is None or spec is self.model or spec == self.model.name:
            return self.model
        key = spec if isinstance(spec, str) else str(id(spec))
        if key not in self._overrides:
            self._overrides[key] = resolve_model(spec)
        return self._overrides[key]

    def _plan(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> tuple[LogprobModel, list[BaseMessage], dict[str, Any], ToolPlan]:
        """Everything one call needs: its adapter, messages, generation arguments, tool handling."""
        params = self._params(stop, **kwargs)
        adapter = self._adapter(params.pop("model", None))
        tools = params.pop("tools", None) or []
        choice = params.pop("tool_choice", None)
        if not tools or choice == "none":
            return adapter, messages, params, ToolPlan(parse=bool(tools), tools=tuple(tools), prefix=params.get("prefill") or "")
        params["tools"] = tools
        params["stop"] = [*(params.get("stop") or []), _TOOL_STOP]
        forced = forced_prefill(choice, tools)
        if forced and not params.get("prefill"):
            if adapter.capabilities.prefill:
                params["prefill"] = forced
            else:
                name = f" calling {_choice_name(choice)}" if _choice_name(choice) else ""
                messages = [*messages, SystemMessage(_MUST_CALL.format(name=name))]
        return adapter, messages, params, ToolPlan(parse=True, tools=tuple(tools), prefix=params.get("prefill") or "")

    @property
    def _llm_type(self) -> str:
        return "sc-chains-logprob"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model.name, **{name: getattr(self, name) for name in _PARAMS}}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "sc-chains"
        override = kwargs.get("model")
        params["ls_model_name"] = override if isinstance(override, str) else self._adapter(override).name
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        return params

    # -- tools -------------------------------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` (LangChain tools, functions, Pydantic models, JSON schemas) to the model.

        ``tool_choice``: ``None``/``"auto"`` (the model decides), ``"none"``, ``"any"``/
        ``"required"``/``True`` (some tool must be called), or a tool's name.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        _check_choice(tool_choice, names)
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    # -- generation --------------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        adapter, msgs, params, plan = self._plan(messages, stop, kwargs)
        return to_result(adapter.generate(msgs, **params), plan)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        adapter, msgs, params, plan = self._plan(messages, stop, kwargs)
        return to_result(await adapter.agenerate(msgs, **params), plan)

    def _chunks(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
        adapter, msgs, params, plan = self._plan(messages, stop, kwargs)
        cursor = ChunkCursor(plan)
        for delta in adapter.stream(msgs, **params):
            yield from cursor.chunks(delta)

    async def _achunks(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> AsyncIterator[ChatGenerationChunk]:
        adapter, msgs, params, plan = self._plan(messages, stop, kwargs)
        cursor = ChunkCursor(plan)
        async for delta in adapter.astream(msgs, **params):
            for chunk in cursor.chunks(delta):
                yield chunk


def _known_fields(cls: type) -> set[str]:
    fields = set()
    for name, info in cls.model_fields.items():
        fields.add(name)
        if info.alias:
            fields.add(info.alias)
    return fields


def _choice_name(choice: Any) -> str | None:
    if isinstance(choice, dict):
        return (choice.get("function") or {}).get("name") or choice.get("name")
    if isinstance(choice, str) and choice not in ("auto", "none", "any", "required"):
        return choice
    return None


def _check_choice(choice: Any, names: list[str]) -> None:
    if choice in (None, True, False, "auto", "none", "any", "required"):
        return
    name = _choice_name(choice)
    if name not in names:
        raise InvalidRequestError(
            "tool_choice", choice, f"use 'auto', 'none', 'any', 'required' or one of the tools' names {names}"
        )


