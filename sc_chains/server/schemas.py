"""The OpenAI chat-completions wire format: request validation, error JSON, response bodies.

:func:`parse_chat_request` turns a JSON body into a :class:`ChatRequest` or raises
:class:`APIError` (status, OpenAI error ``type``, the bad ``param``), whose :meth:`APIError.body`
is the OpenAI error JSON every client library understands.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.errors import SCChainsError

__all__ = ["MAX_CHOICES", "APIError", "ChatRequest", "chunk", "completion", "parse_chat_request"]

MAX_CHOICES = 16
"""Most choices (``n``) one chat-completions request may ask for."""

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          413: "invalid_request_error", 502: "upstream_error", 503: "server_error", 504: "timeout_error"}


class APIError(SCChainsError, ValueError):
    """A request the server answers with an HTTP error (``status``) naming the bad ``param``."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}`` (OpenAI's shape)."""
        return {"error": {"message": self.message, "type": _TYPES.get(self.status, "server_error"),
                          "param": self.param, "code": self.code}}


def bad(param: str, value: Any, fix: str) -> APIError:
    """A 400 naming ``param``, its value (shortened) and the fix."""
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:120] + "..."
    return APIError(400, f"invalid {param}={shown}: {fix}", param=param, code="invalid_value")


@dataclass(frozen=True)
class ChatRequest:
    """One validated ``POST /v1/chat/completions`` body."""

    model: str
    """The chain name (the served model's id)."""
    messages: tuple[dict[str, Any], ...]
    """The conversation as sent (OpenAI message dicts)."""
    stream: bool = False
    """Answer as server-sent events."""
    n: int = 1
    """Choices to return (at most :data:`MAX_CHOICES`): the chain runs ``n`` times at once,
    seeds ``seed + i`` when a seed is given."""
    include_usage: bool = False
    """``stream_options.include_usage``: a last chunk with the usage."""
    max_tokens: int | None = None
    """``max_tokens`` / ``max_completion_tokens``: most tokens per model call."""
    temperature: float | None = None
    """Sampling temperature (``None``: the chain's default)."""
    top_p: float | None = None
    """Nucleus mass (plain model calls only)."""
    seed: int | None = None
    """Sampling seed."""
    stop: tuple[str, ...] = ()
    """Stop sequences (plain model calls only)."""
    logprobs: bool = False
    """Return the final answer's token logprobs."""
    top_logprobs: int = 0
    """Alternatives per token in those logprobs."""
    tools: tuple[dict[str, Any], ...] = ()
    """Tool schemas: such a turn passes through uncorrected."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The whole body (for pass-through)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """``sc_chains``: per-request chain settings (validated by the chain registry)."""

    @property
    def is_tool_turn(self) -> bool:
        """Whether this turn belongs to a tool-using agent (tools offered, or tool calls/results
        in the conversation): it passes through to the upstream model uncorrected."""
        return bool(self.tools) or any(
            m.get("role") == "tool" or m.get("tool_calls") or m.get("function_call") for m in self.messages
        )


def parse_chat_request(body: Any, *, max_prompt_chars: int, max_tokens_limit: int) -> ChatRequest:
    """Validate a chat-completions body; raises :class:`APIError` naming the first bad field."""
    if not isinstance(body, Mapping):
        raise bad("body", type(body).__name__, "send a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", model, "name a chain, e.g. 'leco' (GET /v1/models lists them)")
    messages = _messages(body.get("messages"), max_prompt_chars)
    n = 1 if body.get("n") is None else _int(body, "n")
    stream = _bool(body, "stream")
    if not 1 <= n <= MAX_CHOICES:  # type: ignore[operator]
        raise bad("n", n, f"pass an integer in [1, {MAX_CHOICES}]")
    if n > 1 and stream:
        raise bad("n", n, "a stream carries one choice: pass n=1 with stream=true, or stream=false")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, Mapping):
        raise bad("stream_options", opts, 'pass {"include_usage": true} or leave it out')
    include_usage = _bool(opts or {}, "include_usage", "stream_options.include_usage")
    tools = body.get("tools") or ()
    if not isinstance(tools, Sequence) or isinstance(tools, str) or not all(isinstance(t, Mapping) for t in tools):
        raise bad("tools", tools, "pass a list of tool objects")
    options = body.get("sc_chains") or {}
    if not isinstance(options, Mapping):
        raise bad("sc_chains", options, 'pass an object of chain settings, e.g. {"max_rethinks": 2}')
    return ChatRequest(
        model=model, messages=messages, stream=stream, n=n, include_usage=include_usage,
        max_tokens=_max_tokens(body, max_tokens_limit),
        temperature=_number(body, "temperature", 0, 2), top_p=_number(body, "top_p", 0, 1, low_open=True),
        seed=_int(body, "seed"), stop=_stop(body.get("stop")), logprobs=_bool(body, "logprobs"),
        top_logprobs=_top_logprobs(body), tools=tuple(tools), raw=body, options=dict(options),
    )


def _messages(messages: Any, max_chars: int) -> tuple[dict[str, Any], ...]:
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise bad("messages", messages, "pass a non-empty list of {role, content} objects")
    total = 0
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or m.get("role") not in ("system", "developer", "user", "assistant", "tool"):
            raise bad(f"messages[{i}].role", m.get("role") if isinstance(m, Mapping) else m,
                      "use system, developer, user, assistant or tool")
        content = m.get("content")
        if isinstance(content, list):
            if not all(isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise bad(f"messages[{i}].content", "<non-text part>", "send text parts only (no images)")
            total += sum(len(p["text"]) for p in content)
        elif content is None:
            if m.get("role") != "assistant":
                raise bad(f"messages[{i}].content", None, "send the message text")
        elif isinstance(content, str):
            total += len(content)
        else:
            raise bad(f"messages[{i}].content", content, "send a string or a list of text parts")
    if total > max_chars:
        raise bad("messages", f"<{total} characters>", f"the prompt may have at most {max_chars} characters")
    return tuple(dict(m) for m in messages)


def _bool(body: Mapping[str, Any], key: str, name: str | None = None) -> bool:
    v = body.get(key)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise bad(name or key, v, "pass true or false")
    return v


def _int(body: Mapping[str, Any], key: str) -> int | None:
    v = body.get(key)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
        raise bad(key, v, "pass an integer")
    return v


def _number(body: Mapping[str, Any], key: str, low: float, high: float, low_open: bool = False) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v > high or v < low or (low_open and v == low):
        raise bad(key, v, f"pass a number in {'(' if low_open else '['}{low:g}, {high:g}]")
    return float(v)


def _max_tokens(body: Mapping[str, Any], limit: int) -> int | None:
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    v = _int(body, key)
    if v is not None and not 1 <= v <= limit:
        raise bad(key, v, f"pass an integer in [1, {limit}]")
    return v


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    items = (stop,) if isinstance(stop, str) else stop
    if not isinstance(items, Sequence) or len(items) > 4 or not all(isinstance(s, str) and s for s in items):
        raise bad("stop", stop, "pass a non-empty string or a list of at most 4")
    return tuple(items)


def _top_logprobs(body: Mapping[str, Any]) -> int:
    v = _int(body, "top_logprobs")
    if v is None:
        return 0
    if not 0 <= v <= 20:
        raise bad("top_logprobs", v, "pass an integer in [0, 20]")
    if not body.get("logprobs"):
        raise bad("top_logprobs", v, "top_logprobs needs logprobs=true")
    return v


# -- response bodies -------------------------------------------------------------------------------

def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def usage_body(usage: Mapping[str, int]) -> dict[str, Any]:
    """OpenAI's ``usage`` from a summed usage dict (``prompt_tokens``, ``completion_tokens``, ...)."""
    p, c = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
            "prompt_tokens_details": {"cached_tokens": int(usage.get("cached_tokens", 0))}}


def completion(cid: str, model: str, message: Mapping[str, Any], finish_reason: str, usage: Mapping[str, int],
               logprobs: Mapping[str, Any] | None, extension: Mapping[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` object with the ``sc_chains`` extension field."""
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [choice(0, message, finish_reason, logprobs)],
        "usage": usage_body(usage), "sc_chains": dict(extension),
    }


def choice(index: int, message: Mapping[str, Any], finish_reason: str, logprobs: Mapping[str, Any] | None,
           extension: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One entry of ``choices``; with ``n > 1`` each carries its own ``sc_chains`` field."""
    out = {"index": index, "message": dict(message), "logprobs": logprobs, "finish_reason": finish_reason}
    if extension is not None:
        out["sc_chains"] = dict(extension)
    return out


def chunk(cid: str, model: str, delta: Mapping[str, Any] | None, *, finish_reason: str | None = None,
          logprobs: Mapping[str, Any] | None = None, usage: Mapping[str, int] | None = None,
          extension: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` makes the usage-only chunk (no choices)."""
    out: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    out["choices"] = [] if delta is None else [
        {"index": 0, "delta": dict(delta), "logprobs": logprobs, "finish_reason": finish_reason}]
    if usage is not None:
        out["usage"] = usage_body(usage)
    if extension is not None:
        out["sc_chains"] = dict(extension)
    return out
