"""Server-sent events from an OpenAI-compatible server, as :class:`Generation` deltas.

``stream: true`` requests answer with ``data: {json}`` lines and a closing ``data: [DONE]``.
Chat chunks carry ``choices[0].delta.content`` and (when asked, and the server supports it)
``choices[0].logprobs.content``; legacy ``/completions`` chunks (the ``prefill`` path) carry
``choices[0].text`` and ``logprobs.{tokens, token_logprobs, top_logprobs}``. The finish reason
comes with the last content chunk, usage (``stream_options.include_usage``) in a chunk of its
own; both go out on the last delta, after ``[DONE]`` (or the end of the body). A server that
sends no usage in streams (llama-cpp-python) gets its completion tokens counted from the token
logprobs it sent (one per token) and ``prompt_tokens=0`` (unknown).

The HTTP loops retry only before the first byte of a 2xx answer (connect errors, 429/5xx, as
the non-streaming path); a stream that breaks half-way raises :class:`ServerUnreachableError`.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from adapters.errors import LogprobsUnavailableError, MalformedResponseError, ServerUnreachableError
from adapters.retry import AttemptLog
from adapters.types import Generation, GenerationRequest, TokenLogprob, TopLogprob, Usage

__all__ = ["SSEDeltas", "astream_sse", "stream_payload", "stream_sse"]

Verdict = Callable[[Any, AttemptLog], tuple[bool, Any]]
"""``(response or transport error, attempts) -> (done, value)``: ``value`` is the seconds to
wait before the next try when not done (raises when retries are spent)."""


def stream_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The non-streaming request body, asking for SSE and a usage chunk."""
    body = dict(payload)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return body


class SSEDeltas:
    """Parses one SSE body, line by line, into deltas (see the module docstring)."""

    def __init__(self, request: GenerationRequest, model: str, hint: str) -> None:
        self._request = request
        self._model = model
        self._hint = hint
        self._legacy = bool(request.prefill)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._chars = 0  # characters of text handed out so far
        self._token_chars = 0  # characters of token text so far (the next token's offset)
        self._saw_tokens = False
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._token_count = 0
        self.done = False
        """``data: [DONE]`` was read."""
        self.started = False
        """A delta went out (a broken stream can no longer be retried)."""

    def feed(self, line: str) -> Generation | None:
        """One line of the body: a delta with new text or tokens, or ``None``."""
        line = line.strip()
        if not line.startswith("data:"):
            return None  # blank separators, ": keep-alive" comments, "event:" lines
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return None
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise MalformedResponseError("an SSE data line is not JSON", data[:300]) from exc
        if not isinstance(event, Mapping):
            raise MalformedResponseError("an SSE event is not a JSON object", event)
        if "error" in event:
            raise MalformedResponseError("the server sent an error in the stream", event["error"])
        self._read_usage(event.get("usage"))
        choices = event.get("choices") or []
        return self._read_choice(choices[0], event) if choices else None

    def _read_usage(self, usage: Any) -> None:
        if isinstance(usage, Mapping):
            details = usage.get("prompt_tokens_details") or {}
            self._usage = Usage(
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
                int(details.get("cached_tokens") or 0),
            )

    def _read_choice(self, choice: Any, event: Any) -> Generation | None:
        try:
            text = choice["text"] if self._legacy else (choice.get("delta") or {}).get("content")
            self._finish = choice.get("finish_reason") or self._finish
            tokens = self._tokens(choice.get("logprobs"))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedResponseError(f"unreadable stream chunk ({exc})", event) from exc
        text = text or ""
        if not text and not tokens:
            return None
        delta = Generation(text, tokens, None, Usage(), self._model, self._request.prefill or "")
        self._chars += len(text)
        return delta

    def _tokens(self, logprobs: Any) -> tuple[TokenLogprob, ...]:
        if not logprobs:
            return ()
        if self._legacy:
            items = [
                {"token": t, "logprob": v, "top_logprobs": [{"token": a, "logprob": b} for a, b in (top or {}).items()]}
                for t, v, top in zip(logprobs["tokens"], logprobs["token_logprobs"],
                                     logprobs.get("top_logprobs") or [None] * len(logprobs["tokens"]))
            ]  # fmt: skip
        else:
            items = logprobs.get("content") or []
        out = []
        for item in items:
            raw = item.get("bytes")
            token = self._decoder.decode(bytes(raw)) if isinstance(raw, list) else str(item["token"])
            alts = sorted(
                (TopLogprob(str(a["token"]), float(a["logprob"])) for a in item.get("top_logprobs") or ()),
                key=lambda a: -a.logprob,
            )
            top = tuple(alts[: self._request.top_logprobs])
            out.append(TokenLogprob(token, float(item["logprob"]), self._token_chars, top))
            self._token_chars += len(token)
            self._saw_tokens = True
            self._token_count += 1
        return tuple(out)

    def take(self, line: str) -> Generation | None:
        """:meth:`feed`, marking the stream started once a delta goes out."""
        delta = self.feed(line)
        if delta is not None:
            self.started = True
        return delta

    def last(self) -> Generation:
        """The closing delta: finish reason and usage (raises if no logprobs ever came)."""
        if self._chars and not self._saw_tokens:
            raise LogprobsUnavailableError(self._model, self._hint)
        usage = self._usage or Usage(completion_tokens=self._token_count)  # counted here when not sent
        return Generation("", (), self._finish or "stop", usage, self._model, self._request.prefill or "")


class _Tries:
    """The retry loop both readers share (the I/O differs, the decisions do not): at most
    ``max_retries + 2`` tries (the policy raises before they run out); a transport error retries
    only before the first delta went out; ``verdict`` says how long to wait."""

    def __init__(self, parser: SSEDeltas, attempts: AttemptLog, verdict: Verdict) -> None:
        self.parser, self.attempts, self.verdict = parser, attempts, verdict

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.attempts.policy.max_retries + 2))

    @staticmethod
    def ok(response: Any) -> bool:
        return bool(200 <= response.status_code < 300)

    def broke(self, exc: Exception) -> Exception:
        """A transport error as the try's outcome (raised when the stream had started)."""
        if self.parser.started:
            raise ServerUnreachableError(self.attempts.base_url, f"the stream broke: {exc}") from exc
        return exc

    def wait(self, outcome: Any) -> float:
        """Seconds before the next try (the verdict raises when retries are spent)."""
        _done, wait = self.verdict(outcome, self.attempts)
        return float(wait)

    def spent(self) -> ServerUnreachableError:  # pragma: no cover - the verdict raises first
        return ServerUnreachableError(self.attempts.base_url, "no answer within the retry policy")


def stream_sse(
    client: Any, path: str, payload: Mapping[str, Any], parser: SSEDeltas, attempts: AttemptLog, verdict: Verdict
) -> Iterator[Generation]:
    """POST ``payload`` as a stream with ``client`` (``httpx.Client``) and yield its deltas."""
    import httpx

    tries = _Tries(parser, attempts, verdict)
    for _ in tries:
        try:
            with client.stream("POST", path, json=stream_payload(payload)) as response:
                if tries.ok(response):
                    yield from filter(None, map(parser.take, response.iter_lines()))
                    yield parser.last()
                    return
                response.read()
                outcome: Any = response
        except httpx.TransportError as exc:
            outcome = tries.broke(exc)
        time.sleep(tries.wait(outcome))
    raise tries.spent()


async def astream_sse(
    client: Any, path: str, payload: Mapping[str, Any], parser: SSEDeltas, attempts: AttemptLog, verdict: Verdict
) -> AsyncIterator[Generation]:
    """Async :func:`stream_sse` (``client``: ``httpx.AsyncClient``)."""
    import httpx

    tries = _Tries(parser, attempts, verdict)
    outcome: Any
    for _ in tries:
        try:
            async with client.stream("POST", path, json=stream_payload(payload)) as response:
                if tries.ok(response):
                    async for line in response.aiter_lines():
                        if (delta := parser.take(line)) is not None:
                            yield delta
                    yield parser.last()
                    return
                await response.aread()
                outcome = response
        except httpx.TransportError as exc:
            outcome = tries.broke(exc)
        await asyncio.sleep(tries.wait(outcome))
    raise tries.spent()
