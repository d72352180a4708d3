"""Adapter generations -> LangChain messages and stream chunks (with tool calls when tools are bound).

With tools bound, a reply is read by :func:`adapters.tools.parse_tool_calls`: the message
content is the text before the first ``<tool_call>`` (the same in ``invoke`` and ``stream``),
the blocks become ``tool_calls`` / ``invalid_tool_calls``. Per-token logprobs always cover the
whole generated text, tool-call markup included (they describe what the model generated).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from adapters.tools import ParsedReply, parse_tool_calls, split_content
from adapters.types import Generation, TokenLogprob
from sc_chains.render import token_segments

__all__ = ["ChunkCursor", "ToolPlan", "to_result"]


@dataclass(frozen=True)
class ToolPlan:
    """How one call uses tools."""

    parse: bool = False
    """Tools were offered: read tool calls out of the reply."""
    tools: tuple[Any, ...] = ()
    """The tools offered (OpenAI shape): arguments they do not declare are dropped, visibly."""
    prefix: str = ""
    """Assistant text before the generated text (the prefill, e.g. a forced ``<tool_call>``)."""


def usage_of(gen: Generation) -> UsageMetadata:
    usage = UsageMetadata(
        input_tokens=gen.usage.prompt_tokens,
        output_tokens=gen.usage.completion_tokens,
        total_tokens=gen.usage.total_tokens,
    )
    if gen.usage.cached_tokens:
        usage["input_token_details"] = {"cache_read": gen.usage.cached_tokens}
    return usage


def metadata_of(gen: Generation, parsed: ParsedReply | None = None) -> dict[str, Any]:
    finish = "tool_calls" if parsed is not None and (parsed.tool_calls or parsed.invalid_tool_calls) else gen.finish_reason
    meta: dict[str, Any] = {"finish_reason": finish, "model_name": gen.model, "model_provider": "sc-chains"}
    if gen.prefill:
        meta["prefill"] = gen.prefill
    dropped = {c["id"]: c["dropped"] for c in (parsed.tool_calls if parsed is not None else ()) if c.get("dropped")}
    if dropped:
        meta["dropped_tool_args"] = dropped  # {call id: [argument names the tool does not declare]}
    return meta


def _content(plan: ToolPlan, text: str, final: bool) -> tuple[int, bool]:
    """How much of the generated ``text`` is message content for sure, and whether that is final."""
    if not plan.parse:
        return len(text), True
    n, complete = split_content(plan.prefix + text, final)
    return max(0, n - len(plan.prefix)), complete


def _calls(parsed: ParsedReply) -> tuple[list[Any], list[Any]]:
    calls = [tool_call(name=c["name"], args=c["args"], id=c["id"]) for c in parsed.tool_calls]
    bad = [
        invalid_tool_call(name=c["name"], args=json.dumps(c["args"]), id=c["id"], error=c["error"])
        for c in parsed.invalid_tool_calls
    ]  # args JSON-quoted: the raw block is a string, never mistaken for arguments
    return calls, bad


def to_result(gen: Generation, plan: ToolPlan) -> ChatResult:
    """The ``ChatResult`` of one whole generation."""
    parsed = parse_tool_calls(plan.prefix + gen.text, plan.tools) if plan.parse else None
    end, _ = _content(plan, gen.text, final=True)
    calls, bad = _calls(parsed) if parsed is not None else ([], [])
    message = AIMessage(
        content=gen.text[:end],
        tool_calls=calls,
        invalid_tool_calls=bad,
        response_metadata={**metadata_of(gen, parsed), "logprobs": gen.to_openai_logprobs() if gen.tokens is not None else None},
        usage_metadata=usage_of(gen),
    )
    return ChatResult(
        generations=[ChatGeneration(message=message)],
        llm_output={"model_name": gen.model, "token_usage": gen.usage.to_dict()},
    )


class ChunkCursor:
    """Turns a stream of adapter deltas into LangChain chunks: one per token, then the totals.

    Contents concatenate to the ``invoke`` content; the ``logprobs.content`` lists concatenate
    to :meth:`Generation.to_openai_logprobs` (LangChain merges chunk metadata by adding lists).
    With tools, text that may still turn out to be a tool call is held back; the calls come as
    ``tool_call_chunks`` on the last chunk.
    """

    def __init__(self, plan: ToolPlan) -> None:
        self._plan = plan
        self._text = ""  # generated text so far
        self._pending: list[tuple[int, int, TokenLogprob | None]] = []  # token spans not yet sent
        self._sent = 0  # content characters sent
        self._logprobs = False

    def chunks(self, delta: Generation) -> list[ChatGenerationChunk]:
        base = len(self._text)
        self._text += delta.text
        if delta.tokens is not None:
            self._logprobs = True
        shifted = replace(delta, tokens=tuple(replace(t, offset=t.offset - base) for t in delta.tokens or ()))
        start = base
        for piece, tok in token_segments(shifted):
            self._pending.append((start, start + len(piece), tok))
            start += len(piece)
        final = delta.finish_reason is not None
        out = self._flush(*_content(self._plan, self._text, final))
        if final:
            out.append(self._last(delta))
        return out

    def _flush(self, end: int, complete: bool) -> list[ChatGenerationChunk]:
        out = []
        while self._pending and (complete or self._pending[0][1] <= end):
            lo, hi, tok = self._pending.pop(0)
            piece = self._text[max(lo, self._sent) : max(min(hi, end), self._sent)]
            self._sent = max(self._sent, min(hi, end))
            if piece or tok is not None:
                meta = {"logprobs": {"content": [tok.to_openai()]}} if tok is not None else {}
                out.append(ChatGenerationChunk(message=AIMessageChunk(content=piece, response_metadata=meta)))
        return out

    def _last(self, delta: Generation) -> ChatGenerationChunk:
        parsed = parse_tool_calls(self._plan.prefix + self._text, self._plan.tools) if self._plan.parse else None
        tool_chunks = []
        if parsed is not None:
            calls, bad = _calls(parsed)
            tool_chunks = [
                {"name": c["name"], "args": json.dumps(c["args"]) if "type" in c and c["type"] == "tool_call" else c["args"],
                 "id": c["id"], "index": i, "type": "tool_call_chunk"}
                for i, c in enumerate([*calls, *bad])
            ]  # fmt: skip
        meta = metadata_of(delta, parsed)
        meta["logprobs"] = {"content": []} if self._logprobs else None
        last = AIMessageChunk(
            content="", response_metadata=meta, usage_metadata=usage_of(delta), tool_call_chunks=tool_chunks,
            chunk_position="last",
        )  # fmt: skip
        return ChatGenerationChunk(message=last)
