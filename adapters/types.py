"""The one vocabulary every adapter speaks: tokens with logprobs, generations, requests.

Shapes follow OpenAI's chat-completions logprobs (``{"content": [{"token", "logprob",
"bytes", "top_logprobs": [...]}]}``) so that :meth:`Generation.to_openai_logprobs` and
:meth:`Generation.from_openai_logprobs` convert both ways. On top of OpenAI's fields a token
carries its character ``offset`` in :attr:`Generation.text` (so step splitting works on decoded
text, whatever the tokenizer) and, where the adapter sees the full distribution, its
``entropy``.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from adapters.errors import InvalidRequestError

__all__ = [
    "Capabilities",
    "Generation",
    "GenerationRequest",
    "Message",
    "TokenLogprob",
    "TopLogprob",
    "Usage",
    "SEED_RANGE",
    "check_text",
    "normalize_messages",
    "REQUEST_OPTIONS",
]


Message = dict[str, Any]
"""A chat message: ``{"role": "system" | "user" | "assistant" | "tool", "content": str}``; an
assistant turn that called tools also has ``tool_calls`` (``[{"id", "type": "function",
"function": {"name", "arguments": dict}}]``), a tool result ``tool_call_id``."""

_ROLES = {"system", "user", "assistant", "developer", "tool"}
_LC_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One alternative token at a position."""

    token: str
    """The decoded token text."""
    logprob: float
    """Natural-log probability of this token at this position."""

    def to_openai(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": list(self.token.encode("utf-8")),
        }


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token with its logprob, its alternatives and its place in the text."""

    token: str
    """The decoded token text (may be a partial character for byte-level tokenizers: then ``""``)."""
    logprob: float
    """Natural-log probability of the chosen token, from the raw (unprocessed) distribution."""
    offset: int
    """Character offset of this token's first character in :attr:`Generation.text`."""
    top_logprobs: tuple[TopLogprob, ...] = ()
    """The most likely tokens at this position, most likely first (empty if not asked for)."""
    entropy: float | None = None
    """Entropy (nats) of the full next-token distribution; ``None`` when the adapter cannot see it."""
    token_id: int | None = None
    """Vocabulary id, when the adapter knows it."""

    @property
    def prob(self) -> float:
        """The chosen token's probability, ``exp(logprob)``."""
        return math.exp(self.logprob)

    def to_openai(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "logprob": self.logprob,
            "bytes": list(self.token.encode("utf-8")),
            "top_logprobs": [t.to_openai() for t in self.top_logprobs],
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token accounting of one call."""

    prompt_tokens: int = 0
    """Tokens of input the model saw (prompt and prefill)."""
    completion_tokens: int = 0
    """Tokens the model generated."""
    cached_tokens: int = 0
    """Prompt tokens served from a reused KV cache, not re-encoded (0 where unknown)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
        }


@dataclass(frozen=True, slots=True)
class Generation:
    """One model reply: text, per-token logprobs, why it stopped, what it cost."""

    text: str
    """The generated text. With ``prefill``, only the continuation (the prefill is not repeated)."""
    tokens: tuple[TokenLogprob, ...] | None
    """Per-token logprobs; ``None`` only when the request asked for none and the model gave none."""
    finish_reason: Literal["stop", "length"] | str | None = "stop"
    """``"stop"`` (end of text or a stop sequence) or ``"length"`` (hit ``max_tokens``); ``None``
    only on a streamed delta that is not the last (see :mod:`adapters.streaming`)."""
    usage: Usage = field(default_factory=Usage)
    """Token accounting."""
    model: str = ""
    """The model's name."""
    prefill: str = ""
    """The assistant text this generation continued (empty if none)."""

    @property
    def full_text(self) -> str:
        """``prefill + text``: the whole assistant message."""
        return self.prefill + self.text

    def to_openai_logprobs(self) -> dict[str, Any]:
        """The logprobs in OpenAI's chat shape: ``{"content": [...]}``."""
        return {"content": [t.to_openai() for t in self.tokens or ()]}

    @classmethod
    def from_openai_logprobs(
        cls,
        logprobs: Mapping[str, Any] | None,
        *,
        text: str | None = None,
        **fields: Any,
    ) -> Generation:
        """Build a generation from OpenAI's chat logprobs shape (offsets recomputed)."""
        content = (logprobs or {}).get("content") or []
        tokens = tokens_from_pairs(
            [
                (
                    item["token"],
                    float(item["logprob"]),
                    [(a["token"], float(a["logprob"])) for a in item.get("top_logprobs") or ()],
                )
                for item in content
            ]
        )
        if text is None:
            text = "".join(t.token for t in tokens)
        return cls(text=text, tokens=tokens if logprobs is not None else None, **fields)

    def with_usage(self, usage: Usage) -> Generation:
        return replace(self, usage=usage)


def tokens_from_pairs(
    items: Sequence[tuple[str, float, Sequence[tuple[str, float]]]],
) -> tuple[TokenLogprob, ...]:
    """Tokens from ``(token, logprob, [(alt, alt_logprob), ...])`` with running offsets."""
    out = []
    offset = 0
    for token, logprob, alts in items:
        out.append(TokenLogprob(token, logprob, offset, tuple(TopLogprob(a, lp) for a, lp in alts) if alts else ()))
        offset += len(token)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an adapter can do; chains check these before they start."""

    logprobs: bool = True
    """Returns a logprob for each generated token."""
    full_distribution: bool = False
    """Sees the whole next-token distribution (true probabilities, entropy)."""
    prefill: bool = False
    """Can continue an assistant text exactly (``prefill=``)."""
    max_top_logprobs: int = 20
    """Largest ``top_logprobs`` the backend accepts."""
    tool_template: bool = False
    """The model's own chat template renders ``tools`` and tool turns (Qwen2.5's does); when
    ``False``, requests with tools are rewritten into plain text (:mod:`adapters.tools`)."""
    text_scores: bool = False
    """Scores given text without generating (:meth:`~adapters.base.LogprobModel.score_texts`:
    each token's logprob of a continuation after a prefix, raw text)."""


def normalize_messages(messages: Any) -> list[Message]:
    """Messages as ``[{"role", "content"}]`` from a string, dicts, tuples or LangChain messages.

    Raises :class:`InvalidRequestError` for an empty list, an unknown role or non-string content.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, Sequence) or isinstance(messages, bytes):
        raise InvalidRequestError(
            "messages", messages, "pass a string or a list of {'role', 'content'} dicts"
        )
    if len(messages) == 0:
        raise InvalidRequestError(
            "messages", messages, "pass at least one message, e.g. [{'role': 'user', 'content': 'Hi'}]"
        )
    out: list[Message] = []
    for i, m in enumerate(messages):
        if isinstance(m, Mapping):
            role, content = m.get("role"), m.get("content")
        elif isinstance(m, tuple) and len(m) == 2:
            role, content = m
        elif hasattr(m, "type") and hasattr(m, "content"):  # a LangChain BaseMessage
            role, content = _LC_ROLES.get(m.type, m.type), m.content
        else:
            raise InvalidRequestError(
                f"messages[{i}]", m, "each message must be a {'role', 'content'} dict"
            )
        role = _LC_ROLES.get(role, role) if isinstance(role, str) else role
        if role not in _ROLES:
            raise InvalidRequestError(
                f"messages[{i}].role", role, f"use one of {sorted(_ROLES)}"
            )
        fields = _tool_fields(m)
        if content is None and "tool_calls" in fields:
            content = ""  # an assistant turn that only calls tools (OpenAI sends None)
        message: Message = {"role": role, "content": _text_content(i, content)}
        check_text(f"messages[{i}].content", message["content"])
        message.update(fields)
        out.append(message)
    return out


_CALL_PARTS = {"tool_use", "tool_call", "function_call"}
"""Content parts that repeat a tool call (the message's ``tool_calls`` carries it): skipped."""


def _text_content(i: int, content: Any) -> str:
    if isinstance(content, list) and all(
        isinstance(p, str) or (isinstance(p, Mapping) and p.get("type") in {"text", *_CALL_PARTS}) for p in content
    ):
        content = "".join(p if isinstance(p, str) else p.get("text", "") for p in content if isinstance(p, str) or p.get("type") == "text")
    if not isinstance(content, str):
        raise InvalidRequestError(
            f"messages[{i}].content",
            content,
            "content must be a string (text parts only; images are not supported)",
        )
    return content


def _tool_fields(m: Any) -> dict[str, Any]:
    """``tool_calls`` of an assistant turn and ``tool_call_id`` of a tool result, if any."""
    get = m.get if isinstance(m, Mapping) else (lambda k, d=None: getattr(m, k, d))
    out: dict[str, Any] = {}
    calls = get("tool_calls", None)
    if calls:
        out["tool_calls"] = [_openai_call(c) for c in calls]
    call_id = get("tool_call_id", None)
    if call_id:
        out["tool_call_id"] = str(call_id)
    return out


def _openai_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """A call in OpenAI's shape, arguments as a dict (chat templates render them as JSON)."""
    if "function" in call:
        fn = call["function"]
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        return {"id": call.get("id"), "type": "function", "function": {"name": fn.get("name"), "arguments": args}}
    return {"id": call.get("id"), "type": "function", "function": {"name": call.get("name"), "arguments": call.get("args", {})}}


def check_text(name: str, text: str) -> None:
    """Raise :class:`InvalidRequestError` if ``text`` cannot be encoded as UTF-8 (a lone surrogate,
    e.g. from bytes decoded with ``errors="surrogateescape"``): no tokenizer or HTTP body takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise InvalidRequestError(
            name, f"...{text[max(exc.start - 20, 0):exc.start]}<U+{ord(bad):04X}>",
            f"the text holds a lone surrogate (U+{ord(bad):04X}) at character {exc.start}, which is "
            "not valid Unicode; decode the input as UTF-8 (e.g. errors='replace') before passing it",
        ) from None


SEED_RANGE = (-(2**63), 2**63 - 1)
"""Seeds must fit a signed 64-bit integer (torch generators and OpenAI-compatible servers)."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One validated generation request; every adapter receives this."""

    messages: tuple[Message, ...]
    """The conversation, normalised (see :func:`normalize_messages`)."""
    max_tokens: int = 256
    """Most tokens to generate; must be > 0."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass in (0, 1]."""
    stop: tuple[str, ...] = ()
    """Stop sequences; the text is cut before the first one."""
    seed: int | None = None
    """Sampling seed, for reproducible sampling (a signed 64-bit integer, see :data:`SEED_RANGE`)."""
    top_logprobs: int = 0
    """Alternatives to return per token (0 to the adapter's ``max_top_logprobs``)."""
    prefill: str | None = None
    """An assistant text to continue exactly; the reply's ``text`` is the continuation only."""
    tools: tuple[Mapping[str, Any], ...] = ()
    """Tools the model may call, in OpenAI's shape (``{"type": "function", "function": {"name",
    "description", "parameters"}}``); see :mod:`adapters.tools`."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool) or self.max_tokens <= 0:
            raise InvalidRequestError("max_tokens", self.max_tokens, "pass a positive integer, e.g. max_tokens=256")
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 5:
            raise InvalidRequestError("temperature", self.temperature, "pass a number in [0, 5]; 0 is greedy")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise InvalidRequestError("top_p", self.top_p, "pass a number in (0, 1]")
        if not isinstance(self.top_logprobs, int) or isinstance(self.top_logprobs, bool) or self.top_logprobs < 0:
            raise InvalidRequestError("top_logprobs", self.top_logprobs, "pass an integer >= 0")
        if self.prefill is not None and not isinstance(self.prefill, str):
            raise InvalidRequestError("prefill", self.prefill, "pass the assistant text to continue as a string")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise InvalidRequestError("seed", self.seed, "pass an integer seed or None")
        if self.seed is not None and not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            raise InvalidRequestError(
                "seed", self.seed, f"pass a seed between {SEED_RANGE[0]} and {SEED_RANGE[1]} (a signed 64-bit integer)")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise InvalidRequestError("stop", self.stop, "pass non-empty strings")
        for i, s in enumerate(self.stop):
            check_text(f"stop[{i}]", s)
        if self.prefill is not None:
            check_text("prefill", self.prefill)
        for t in self.tools:
            fn = t.get("function") if isinstance(t, Mapping) else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise InvalidRequestError(
                    "tools", t, "pass tools as {'type': 'function', 'function': {'name', 'description', 'parameters'}}"
                )

    @classmethod
    def build(
        cls,
        messages: Any,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        top_logprobs: int = 0,
        prefill: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> GenerationRequest:
        if stop is None:
            stop_t: tuple[str, ...] = ()
        elif isinstance(stop, str):
            stop_t = (stop,)
        else:
            stop_t = tuple(stop)
        return cls(
            messages=tuple(normalize_messages(messages)),
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=stop_t,
            seed=seed,
            top_logprobs=top_logprobs,
            prefill=prefill if prefill else None,
            tools=tuple(tools or ()),
        )

    def with_messages(self, messages: Any) -> GenerationRequest:
        return replace(self, messages=tuple(normalize_messages(messages)))


REQUEST_OPTIONS: tuple[str, ...] = tuple(
    name for name in inspect.signature(GenerationRequest.build).parameters if name != "messages"
)
"""The keyword arguments ``generate``/``agenerate``/``batch`` take: those of
:meth:`GenerationRequest.build` (an unknown one is an :class:`InvalidRequestError`)."""


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop sequence; returns ``(text, stopped)``."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    if cut < 0:
        return text, False
    return text[:cut], True
