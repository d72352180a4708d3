"""A scripted logprob model: a reply queue with per-token logprobs, for tests and examples.

Re-exported as :class:`sc_chains.testing.FakeLogprobModel`. Like langchain_core's
``GenericFakeChatModel``: replies come from a queue (or a function of the request), every call is
recorded, and both the sync and async paths work.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from adapters.base import LogprobModel, check_concurrency
from adapters.errors import InvalidRequestError
from adapters.types import (
    Capabilities,
    Generation,
    GenerationRequest,
    TokenLogprob,
    TopLogprob,
    Usage,
    truncate_at_stop,
)

__all__ = ["FakeLogprobModel", "FakeReply", "split_tokens"]

_TOKEN_RE = re.compile(r"\n|[^\S\n]*[^\s]+|[^\S\n]+")


def split_tokens(text: str) -> list[str]:
    """Split text into fake tokens: each newline alone, other words with their leading spaces."""
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class FakeReply:
    """A scripted reply.

    ``logprob`` is every token's logprob unless ``overrides`` maps a substring of ``text`` to
    another logprob for the tokens that start inside it (first occurrence), or ``logprobs``
    gives one value per token.
    """

    text: str
    """The reply text (the continuation, when the request has a prefill)."""
    logprob: float = -0.05
    """Default logprob of each token."""
    overrides: Mapping[str, float] = field(default_factory=dict)
    """Substring -> logprob for the tokens that start inside that substring."""
    logprobs: tuple[float, ...] | None = None
    """Explicit per-token logprobs (length must match :func:`split_tokens`)."""

    def __post_init__(self) -> None:
        values = [("logprob", self.logprob)]
        values += [(f"overrides[{k!r}]", v) for k, v in self.overrides.items()]
        values += [(f"logprobs[{i}]", v) for i, v in enumerate(self.logprobs or ())]
        for name, value in values:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value <= 0:
                raise InvalidRequestError(
                    f"FakeReply.{name}", value, "a logprob is a number <= 0 (log of a probability); e.g. -0.05"
                )

    def token_logprobs(self) -> list[tuple[str, float]]:
        toks = split_tokens(self.text)
        if self.logprobs is not None:
            if len(self.logprobs) != len(toks):
                raise ValueError(
                    f"FakeReply.logprobs has {len(self.logprobs)} values for {len(toks)} tokens "
                    f"{toks!r}; give one per token"
                )
            return list(zip(toks, self.logprobs))
        spans = []
        for sub, lp in self.overrides.items():
            i = self.text.find(sub)
            if i < 0:
                raise ValueError(f"FakeReply override {sub!r} is not in the text {self.text!r}")
            spans.append((i, i + len(sub), lp))
        out, off = [], 0
        for t in toks:
            lp = self.logprob
            for a, b, v in spans:
                # a token counts as inside when its first non-space character is in the span
                first = off + (len(t) - len(t.lstrip())) if t.strip() else off
                if a <= first < b:
                    lp = v
            out.append((t, lp))
            off += len(t)
        return out


Script = Union[str, FakeReply, Generation, BaseException, Callable[[GenerationRequest], Any]]


class FakeLogprobModel(LogprobModel):
    """A logprob model that replays scripted replies.

    Args:
        replies: the queue. Each item is a string, a :class:`FakeReply`, a ready
            :class:`Generation`, an exception (raised when reached), or a callable taking the
            :class:`GenerationRequest` and returning one of those.
        default: what to answer once the queue is empty (``None``: raise ``IndexError``).
        prefill: whether to claim the prefill capability.
        logprobs: ``False`` makes the model return no logprobs (for error-path tests).
        name: the model name.

    Every call's request is appended to :attr:`calls`.
    """

    def __init__(
        self,
        replies: Iterable[Script] = (),
        *,
        default: Script | None = None,
        prefill: bool = True,
        logprobs: bool = True,
        name: str = "fake-logprob-model",
        max_top_logprobs: int = 20,
    ) -> None:
        self.name = name
        self.capabilities = Capabilities(
            logprobs=logprobs, full_distribution=False, prefill=prefill, max_top_logprobs=max_top_logprobs
        )
        self.logprobs_hint = "Construct FakeLogprobModel(logprobs=True)."
        self._queue: list[Script] = list(replies)
        self._default = default
        self._lock = threading.Lock()
        self.calls: list[GenerationRequest] = []

    def add(self, *replies: Script) -> None:
        """Append replies to the queue."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def _next(self, request: GenerationRequest) -> Script:
        with self._lock:
            self.calls.append(request)
            if self._queue:
                return self._queue.pop(0)
            if self._default is not None:
                return self._default
        raise IndexError(
            f"{self.name}: the reply queue is empty after {len(self.calls) - 1} calls; "
            "script more replies or pass default="
        )

    def batch(self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any) -> list[Generation]:
        """Like :meth:`LogprobModel.batch`, but one request after another, in input order: the
        scripted queue answers a batch's requests in order (concurrent threads would not)."""
        requests = [self.request(m, **kwargs) for m in inputs]
        check_concurrency(max_concurrency)
        return [self._generate(r) for r in requests]

    async def abatch(self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any) -> list[Generation]:
        """Async :meth:`batch` (in input order too)."""
        return self.batch(inputs, max_concurrency=max_concurrency, **kwargs)

    def _generate(self, request: GenerationRequest) -> Generation:
        item = self._next(request)
        if callable(item) and not isinstance(item, (FakeReply, Generation)):
            item = item(request)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Generation):
            return item
        reply = item if isinstance(item, FakeReply) else FakeReply(str(item))
        return self._render(reply, request)

    def _render(self, reply: FakeReply, request: GenerationRequest) -> Generation:
        pairs = reply.token_logprobs()
        text_all = "".join(t for t, _ in pairs)
        text, stopped = truncate_at_stop(text_all, request.stop)
        finish = "stop"
        tokens: list[TokenLogprob] = []
        off = 0
        for tok, lp in pairs:
            if off >= len(text):
                break
            if len(tokens) >= request.max_tokens:
                finish = "length"
                break
            tok = tok[: len(text) - off]
            tokens.append(
                TokenLogprob(
                    token=tok,
                    logprob=lp,
                    offset=off,
                    top_logprobs=_alternatives(tok, lp, request.top_logprobs),
                )
            )
            off += len(tok)
        text = text[:off]
        prompt_tokens = sum(len(split_tokens(m["content"])) for m in request.messages)
        prompt_tokens += len(split_tokens(request.prefill or ""))
        return Generation(
            text=text,
            tokens=tuple(tokens) if self.capabilities.logprobs else None,
            finish_reason=finish,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(tokens)),
            model=self.name,
            prefill=request.prefill or "",
        )


def _alternatives(token: str, logprob: float, k: int) -> tuple[TopLogprob, ...]:
    """The chosen token first, then k-1 made-up alternatives sharing the remaining mass."""
    if k <= 0:
        return ()
    rest = max(1e-12, 1.0 - math.exp(logprob))
    alts = [TopLogprob(token, logprob)]
    for j in range(1, k):
        alts.append(TopLogprob(f"<alt{j}>", math.log(rest / (2**j))))
    return tuple(sorted(alts, key=lambda a: -a.logprob))
