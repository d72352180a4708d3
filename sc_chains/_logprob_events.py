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
from typing import Any

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
    """Native v3 event hooks for a ``BaseChatModel`` whose ``_stream`` chunks carry logprobs."""

    def _stream_chat_model_events(
        self, messages: list[Any], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[Any]:
        from langchain_core.language_models._compat_bridge import chunks_to_events

        c = _Collector()
        chunks = (c.watch(ch) for ch in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))  # type: ignore[attr-defined]
        for event in chunks_to_events(chunks, message_id=_message_id(run_manager)):
            yield c.fix(event)

    async def _astream_chat_model_events(
        self, messages: list[Any], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        from langchain_core.language_models._compat_bridge import achunks_to_events

        c = _Collector()

        async def chunks() -> AsyncIterator[Any]:
            async for ch in self._astream(messages, stop=stop, run_manager=run_manager, **kwargs):  # type: ignore[attr-defined]
                yield c.watch(ch)

        async for event in achunks_to_events(chunks(), message_id=_message_id(run_manager)):
            yield c.fix(event)
