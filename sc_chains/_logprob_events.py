"""Per-token logprobs that survive LangChain's v3 streaming protocol.

Our chat models stream one chunk per token, each with ``response_metadata["logprobs"] =
{"content": [that token]}``: ``stream()`` merges chunks by adding lists, so the merged message
holds every token. The v3 protocol (``stream_events(version="v3")``, and any run with a v2
streaming callback handler attached) bridges the same chunks into events but merges
``response_metadata`` shallowly, last chunk wins, so the message came out with
``logprobs {"content": []}`` and LECO, which needs the logprobs, broke. The hooks here run the
same bridge and put the full ``content`` list, collected from the chunks, on the finish event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from langchain_core.outputs import ChatGenerationChunk

__all__ = ["LogprobEventsMixin"]

_LC_ID_PREFIX = "lc_run"


class _Collector:
    """Watches the chunks going into the bridge; fixes the finish event coming out."""

    def __init__(self) -> None:
        self.content: list[Any] = []
        self.seen = False

    def watch(self, chunk: Any) -> Any:
        lp = (chunk.message.response_metadata or {}).get("logprobs")
        if isinstance(lp, dict):
            self.seen = True
            self.content.extend(lp.get("content") or [])
        return chunk

    def fix(self, event: Any) -> Any:
        if self.seen and isinstance(event, dict) and event.get("event") == "message-finish":
            event = {**event, "metadata": {**(event.get("metadata") or {}), "logprobs": {"content": list(self.content)}}}
        return event


def _message_id(run_manager: Any) -> str | None:
    run_id = getattr(run_manager, "run_id", None)
    return f"{_LC_ID_PREFIX}-{run_id}" if run_id is not None else None


class LogprobEventsMixin:
    """Streaming for a ``BaseChatModel`` whose chunks carry logprobs: ``_stream`` / ``_astream``
    over the model's own ``_chunks`` / ``_achunks`` (each chunk reported to the run's callbacks
    as it goes out), and native v3 event hooks."""

    _report_empty_chunks: ClassVar[bool] = False
    """Report chunks without text (the closing one: finish reason, usage) to ``on_llm_new_token``
    too, as OpenAI's chat model does."""

    def _chunks(self, messages: list[Any], stop: list[str] | None, kwargs: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError

    def _achunks(self, messages: list[Any], stop: list[str] | None, kwargs: dict[str, Any]) -> AsyncIterator[ChatGenerationChunk]:
        raise NotImplementedError

    def _reported(self, chunk: ChatGenerationChunk, run_manager: Any) -> bool:
        return run_manager is not None and (bool(chunk.text) or self._report_empty_chunks)

    def _stream(
        self, messages: list[Any], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, stop, kwargs):
            if self._reported(chunk, run_manager):
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self, messages: list[Any], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._achunks(messages, stop, kwargs):
            if self._reported(chunk, run_manager):
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _stream_chat_model_events(
        self, messages: list[Any], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[Any]:
        from langchain_core.language_models._compat_bridge import chunks_to_events

        c = _Collector()
        chunks = (c.watch(ch) for ch in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))
        for event in chunks_to_events(chunks, message_id=_message_id(run_manager)):
            yield c.fix(event)

    async def _astream_chat_model_events(
        self, messages: list[Any], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        from langchain_core.language_models._compat_bridge import achunks_to_events

        c = _Collector()

        async def chunks() -> AsyncIterator[Any]:
            async for ch in self._astream(messages, stop=stop, run_manager=run_manager, **kwargs):
                yield c.watch(ch)

        async for event in achunks_to_events(chunks(), message_id=_message_id(run_manager)):
            yield c.fix(event)
