"""OpenAI-compatible servers (OpenAI, vLLM, llama.cpp) as a :class:`~adapters.base.LogprobModel`.

Chat requests go to ``/chat/completions`` with ``logprobs``/``top_logprobs``. With a chat
template configured, a ``prefill`` request renders the prompt itself and continues it through
the legacy ``/completions`` endpoint, so the reply's text is exactly the continuation. HTTP goes
through one pooled ``httpx`` client per instance (one async client per event loop); retries
follow :class:`~adapters.retry.RetryPolicy` and are this module's own (no SDK retries).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError, LogprobsUnavailableError, MalformedResponseError
from adapters.langchain import parse_logprobs, trim_to_text
from adapters.retry import AttemptLog, RetryPolicy, parse_retry_after
from adapters.types import Capabilities, Generation, GenerationRequest, Message, Usage

__all__ = ["ChatTemplate", "OpenAIModel", "chatml"]

log = logging.getLogger(__name__)

ChatTemplate = Callable[[Sequence[Message]], str]
"""Renders messages into a prompt string ending where the assistant's reply starts."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def chatml(messages: Sequence[Message]) -> str:
    """ChatML (Qwen, SmolLM2, many fine-tunes): ``<|im_start|>role\\ncontent<|im_end|>\\n`` + assistant header."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


_BUILTIN_TEMPLATES: dict[str, ChatTemplate] = {"chatml": chatml}


def resolve_template(template: Any) -> ChatTemplate | None:
    """A template from ``None``, ``"chatml"``, a callable, a tokenizer object, a HF tokenizer path/id,
    or a ``.gguf`` file path (its embedded chat template)."""
    if template is None or callable(template):
        return template
    if hasattr(template, "apply_chat_template"):
        tok = template
    elif isinstance(template, str) and template in _BUILTIN_TEMPLATES:
        return _BUILTIN_TEMPLATES[template]
    elif isinstance(template, str):
        try:
            from transformers import AutoTokenizer

            if template.endswith(".gguf"):  # a GGUF file carries its tokenizer and chat template
                folder, _, file = template.replace("\\", "/").rpartition("/")
                tok = AutoTokenizer.from_pretrained(folder or ".", gguf_file=file)
            else:
                tok = AutoTokenizer.from_pretrained(template)
        except (ImportError, OSError, ValueError) as exc:
            raise InvalidRequestError(
                "chat_template",
                template,
                f"use 'chatml', a callable messages -> prompt, or a loadable HF tokenizer path ({exc})",
            ) from exc
    else:
        raise InvalidRequestError("chat_template", template, "use 'chatml', a callable, or a HF tokenizer path")

    def render(messages: Sequence[Message]) -> str:
        return tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    return render


class _Secret(str):
    """A string whose repr hides it (the API key must never show up in reprs or logs)."""

    def __repr__(self) -> str:
        return "'***'"


class OpenAIModel(LogprobModel):
    """An OpenAI-compatible chat server with token logprobs.

    ``base_url``/``api_key`` default to ``OPENAI_BASE_URL``/``OPENAI_API_KEY``. ``chat_template``
    (``"chatml"``, a callable, or a HF tokenizer path) enables ``prefill`` via ``/completions``.
    ``max_tokens_param="max_completion_tokens"`` for OpenAI reasoning models (llama.cpp only reads
    ``max_tokens``). ``extra_body`` is merged into every request body.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        chat_template: Any = None,
        max_tokens_param: str = "max_tokens",
        max_top_logprobs: int = 20,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        import httpx

        model = model or os.environ.get("OPENAI_MODEL")
        if not model or not isinstance(model, str):
            raise InvalidRequestError("model", model, "pass model='gpt-4o-mini' (or the spec 'openai:MODEL')")
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise InvalidRequestError(
                "max_tokens_param", max_tokens_param, "use 'max_tokens' or 'max_completion_tokens'"
            )
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidRequestError("timeout", timeout, "pass a positive number of seconds")
        self.name = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._api_key = _Secret(key) if key else None
        self.retry = retry or RetryPolicy()
        if max_retries is not None:
            self.retry = dataclasses.replace(self.retry, max_retries=max_retries)
        self.template = resolve_template(chat_template)
        self.max_tokens_param = max_tokens_param
        self.extra_body = dict(extra_body or {})
        self.capabilities = Capabilities(
            logprobs=True, full_distribution=False, prefill=self.template is not None, max_top_logprobs=max_top_logprobs
        )
        self.logprobs_hint = (
            f"The server at {self.base_url} ignored logprobs=True/top_logprobs. OpenAI and vLLM return "
            "them on chat completions; for llama.cpp use llama-server or llama-cpp-python[server] "
            ">= 0.3 (which need top_logprobs >= 1, sent by this adapter); OpenAI reasoning models "
            "(o1/o3/gpt-5 thinking) return no logprobs at all."
        )
        headers = {"Authorization": _Secret(f"Bearer {self._api_key}")} if self._api_key else {}
        self._client_args: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": headers,
            "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        }
        self._client = httpx.Client(**self._client_args)
        self._aclients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.name!r}, base_url={self.base_url!r}, prefill={self.capabilities.prefill})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    # -- request bodies ---------------------------------------------------------------------------
    def _payload(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.name,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.prefill:
            assert self.template is not None  # base class refuses prefill without the capability
            body["prompt"] = self.template(request.messages) + request.prefill
            body["max_tokens"] = request.max_tokens  # the legacy endpoint only knows max_tokens
            body["logprobs"] = max(1, request.top_logprobs)
            path = "/completions"
        else:
            body["messages"] = list(request.messages)
            body[self.max_tokens_param] = request.max_tokens
            body["logprobs"] = True
            body["top_logprobs"] = max(1, request.top_logprobs)  # llama.cpp: 0 means "no logprobs"
            path = "/chat/completions"
        body.update(self.extra_body)
        return path, body

    def _parse(self, body: Any, request: GenerationRequest) -> Generation:
        try:
            choice = body["choices"][0]
            if request.prefill:
                text = choice["text"]
            else:
                text = choice["message"]["content"] or ""
            logprobs = choice.get("logprobs")
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise MalformedResponseError(f"no choices[0] text in the response ({exc})", body) from exc
        tokens = parse_logprobs({"logprobs": logprobs}, top_k=request.top_logprobs)
        if tokens is None or (text and not tokens):
            raise LogprobsUnavailableError(self.name, self.logprobs_hint)
        usage = body.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return Generation(
            text=text,
            tokens=trim_to_text(tokens, text),
            finish_reason=choice.get("finish_reason") or "stop",
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cached_tokens=int(details.get("cached_tokens") or 0),
            ),
            model=self.name,
            prefill=request.prefill or "",
        )

    # -- HTTP with retries: the two loops differ only in how they send and sleep; _verdict decides --
    def _generate(self, request: GenerationRequest) -> Generation:
        import httpx

        path, payload = self._payload(request)
        attempts = self._attempt_log(path)
        while True:
            try:
                outcome: Any = self._client.post(path, json=payload)
            except httpx.TransportError as exc:
                outcome = exc
            done, value = _verdict(outcome, attempts)
            if done:
                return self._parse(value, request)
            time.sleep(value)

    async def _agenerate(self, request: GenerationRequest) -> Generation:
        import httpx

        path, payload = self._payload(request)
        attempts = self._attempt_log(path)
        client = self._async_client()
        while True:
            try:
                outcome: Any = await client.post(path, json=payload)
            except httpx.TransportError as exc:
                outcome = exc
            done, value = _verdict(outcome, attempts)
            if done:
                return self._parse(value, request)
            await asyncio.sleep(value)

    # -- streaming (SSE): adapters/openai_stream.py parses the events -------------------------------
    def _stream(self, request: GenerationRequest) -> Iterator[Generation]:
        from adapters.openai_stream import SSEDeltas, stream_sse

        path, payload = self._payload(request)
        parser = SSEDeltas(request, self.name, self.logprobs_hint)
        return stream_sse(self._client, path, payload, parser, self._attempt_log(path), _verdict)

    async def _astream(self, request: GenerationRequest) -> AsyncIterator[Generation]:
        from adapters.openai_stream import SSEDeltas, astream_sse

        path, payload = self._payload(request)
        parser = SSEDeltas(request, self.name, self.logprobs_hint)
        client = self._async_client()  # here: the event loop is running
        async for delta in astream_sse(client, path, payload, parser, self._attempt_log(path), _verdict):
            yield delta

    def _attempt_log(self, path: str) -> AttemptLog:
        return AttemptLog(self.retry, f"POST {self.base_url}{path}", self.base_url)

    def _async_client(self) -> Any:
        """One ``httpx.AsyncClient`` per event loop (a client cannot outlive its loop)."""
        import httpx

        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = httpx.AsyncClient(**self._client_args)
        return client


def _verdict(outcome: Any, attempts: AttemptLog) -> tuple[bool, Any]:
    """One attempt's result (a response, or the transport error it raised): ``(True, json_body)``
    to finish, or ``(False, seconds to wait)`` before the next try; raises when retries run out."""
    if isinstance(outcome, BaseException):
        wait = attempts.failed(None, _describe(outcome), connect=_is_connect(outcome))
    else:
        done, value = _check(outcome, attempts)
        if done:
            return True, value
        wait = value
    _log_retry(attempts)
    return False, wait


def _check(response: Any, attempts: AttemptLog) -> tuple[bool, Any]:
    """``(True, json_body)`` for a 2xx response, else ``(False, seconds to wait)`` (raises when done)."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            return True, response.json()
        except ValueError as exc:
            raise MalformedResponseError("the response body is not JSON", response.text[:300]) from exc
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:300]
    error = body.get("error", body) if isinstance(body, dict) else body
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return False, attempts.failed(status, f"HTTP {status}: {error}"[:300], retry_after, body)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_connect(exc: Exception) -> bool:
    import httpx

    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def _log_retry(attempts: AttemptLog) -> None:
    last = attempts.attempts[-1]
    log.warning("%s failed (%s); retry %d in %.2fs", attempts.what, last["error"], last["attempt"], last["wait"])

