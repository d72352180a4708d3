"""OpenAI-compatible servers (OpenAI, vLLM, llama.cpp) as a :class:`~adapters.base.LogprobModel`.

Chat requests go to ``/chat/completions`` with ``logprobs``/``top_logprobs``. With a chat
template configured, a ``prefill`` request renders the prompt itself and continues it through
the legacy ``/completions`` endpoint, so the reply's text is exactly the continuation. HTTP goes
through one pooled ``httpx`` client per instance (one async client per event loop, closed when
that loop shuts down); retries follow :class:`~adapters.retry.RetryPolicy` and are this module's
own (no SDK retries).

Secrets: the API key is validated and registered at construction
(:func:`adapters.secrets.clean_api_key`), credentials in ``base_url`` become HTTP basic auth and
leave the URL, and every error text and log line is scrubbed (:func:`adapters.secrets.scrub`).
Time: ``timeout`` bounds each attempt as a whole (connect, send, the full body), ``deadline``
the whole call, retries and waits included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from adapters.base import LogprobModel, check_concurrency
from adapters.errors import InvalidRequestError, MalformedResponseError
from adapters.langchain import parse_logprobs, reply_tokens
from adapters.openai_http import (
    _check_seconds,
    _checked_base_url,
    _Clock,
    _close_with_loop,
    _deadline_error,
    _Reply,
    _request_errors,
    _timeout,
    _verdict,
)
from adapters.retry import AttemptLog, RetryPolicy
from adapters.secrets import clean_api_key, install_log_scrubbing, scrub_record, split_url_credentials
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

    ``api_key`` is stripped of surrounding whitespace; a key with a control or non-ASCII
    character raises :class:`~adapters.errors.InvalidSecretError` (the key is not shown).
    ``user:password@`` in ``base_url`` becomes HTTP basic auth (when no ``api_key`` is set) and
    is removed from the URL. ``timeout``: seconds one attempt may take in all (connect, send,
    the whole response: a server that drips one byte a second fails at this bound).
    ``deadline``: seconds the whole call may take, retries and waits included (``None``: only
    the retries bound it); a call past it raises :class:`~adapters.errors.CallTimeoutError`.
    A reply without logprobs raises :class:`~adapters.errors.LogprobsUnavailableError` when the
    request asked for ``top_logprobs > 0``; otherwise (or always, with ``require_logprobs=False``)
    it has ``tokens=None``, and chains that need logprobs check with :meth:`checked` (LECO does).
    ``sample_n`` (default on): :meth:`batch`/:meth:`abatch` send ``k`` samples of one prompt
    (LECO's sampled rethinks, self-consistency) as one request with ``n=k``; a server that
    returns fewer choices (llama.cpp ignores ``n``) gets the rest as single requests, and every
    later batch of this instance goes as single requests.
    ``text_scores`` (default off): :meth:`score_texts` through ``/v1/completions`` with
    ``echo=true, max_tokens=0`` (:mod:`adapters.openai_score`), for servers that return prompt
    logprobs that way (vLLM, ``sc-chains serve``; not llama.cpp).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        chat_template: Any = None,
        max_tokens_param: str = "max_tokens",
        max_top_logprobs: int = 20,
        extra_body: Mapping[str, Any] | None = None,
        require_logprobs: bool = True,
        sample_n: bool = True,
        text_scores: bool = False,
    ) -> None:
        import httpx

        install_log_scrubbing()
        model = model or os.environ.get("OPENAI_MODEL")
        if not model or not isinstance(model, str):
            raise InvalidRequestError("model", model, "pass model='gpt-4o-mini' (or the spec 'openai:MODEL')")
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise InvalidRequestError(
                "max_tokens_param", max_tokens_param, "use 'max_tokens' or 'max_completion_tokens'"
            )
        for flag, value in (("require_logprobs", require_logprobs), ("sample_n", sample_n), ("text_scores", text_scores)):
            if not isinstance(value, bool):
                raise InvalidRequestError(flag, value, "pass True or False")
        self.require_logprobs_in_replies = require_logprobs
        self.sample_n = sample_n
        self._n_supported: bool | None = None  # False once the server returned fewer choices than n
        _check_seconds("timeout", timeout)
        if deadline is not None:
            _check_seconds("deadline", deadline)
        self.name = model
        key = clean_api_key(api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"))
        raw_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        if not isinstance(raw_url, str):
            raise InvalidRequestError("base_url", raw_url, "pass the server's /v1 root as a string")
        url, credentials = split_url_credentials(raw_url.strip())
        self.base_url = _checked_base_url(url.rstrip("/"))
        self._api_key = _Secret(key) if key else None
        self.timeout = float(timeout)
        self.deadline = None if deadline is None else float(deadline)
        self.retry = retry or RetryPolicy()
        if max_retries is not None:
            self.retry = dataclasses.replace(self.retry, max_retries=max_retries)
        self.template = resolve_template(chat_template)
        self.max_tokens_param = max_tokens_param
        self.extra_body = dict(extra_body or {})
        self.capabilities = Capabilities(
            logprobs=True, full_distribution=False, prefill=self.template is not None, max_top_logprobs=max_top_logprobs,
            text_scores=text_scores,
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
        if credentials and not self._api_key:
            self._client_args["auth"] = httpx.BasicAuth(*credentials)
        self._client = httpx.Client(**self._client_args)
        self._aclients: dict[Any, Any] = {}  # event loop -> (AsyncClient, its closer)
        self._aclients_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.name!r}, base_url={self.base_url!r}, prefill={self.capabilities.prefill})"

    @property
    def sends_n(self) -> bool:
        """Whether :meth:`batch` sends samples of one prompt as one ``n=k`` request now
        (``sample_n``, until the server returned fewer choices than asked)."""
        return self.sample_n and self._n_supported is not False

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
            raise MalformedResponseError(f"no choices[0] text in the response ({exc})", scrub_record(body)) from exc
        # a caller that asks for no alternatives (a plain chain-of-thought call) gets the text
        # from a server without logprobs; with top_logprobs > 0 the caller scores tokens
        required = self.require_logprobs_in_replies and request.top_logprobs > 0
        tokens = reply_tokens(parse_logprobs({"logprobs": logprobs}, top_k=request.top_logprobs), text, self,
                              required=required)
        usage = body.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return Generation(
            text=text,
            tokens=tokens,
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
    def _call(self, path: str, payload: dict[str, Any]) -> Any:
        """POST ``payload`` with retries within the time bounds; the JSON body of the 2xx reply."""
        attempts = self._attempt_log(path)
        clock = _Clock(self.timeout, self.deadline, attempts)
        while True:
            outcome = self._send(path, payload, clock.attempt_end())
            done, value = _verdict(outcome, attempts)
            if done:
                return value
            time.sleep(clock.wait(value))

    async def _acall(self, path: str, payload: dict[str, Any]) -> Any:
        """Async :meth:`_call`."""
        attempts = self._attempt_log(path)
        clock = _Clock(self.timeout, self.deadline, attempts)
        client = self._async_client()
        while True:
            outcome = await self._asend(client, path, payload, clock.attempt_end())
            done, value = _verdict(outcome, attempts)
            if done:
                return value
            await asyncio.sleep(clock.wait(value))

    def _generate(self, request: GenerationRequest) -> Generation:
        return self._parse(self._call(*self._payload(request)), request)

    async def _agenerate(self, request: GenerationRequest) -> Generation:
        return self._parse(await self._acall(*self._payload(request)), request)

    # -- scoring given text: /v1/completions with echo (adapters/openai_score.py) -----------------
    scoring_hint = ("pass text_scores=True (CLI: --model-option text_scores=true) when the server returns "
                    "prompt logprobs for echo=true, max_tokens=0 on /v1/completions (vLLM, sc-chains serve; "
                    "llama.cpp servers do not), or use a local model (hf:...)")

    def _score_texts(self, pairs: list[tuple[str, str]]) -> list[Generation]:
        """One echo request per pair, in order (``extra_body`` merged under the scoring fields)."""
        from adapters.openai_score import check_prefix, parse_echo, score_payload

        check_prefix(pairs)
        out = []
        for prefix, cont in pairs:
            body = self._call("/completions", {**self.extra_body, **score_payload(self.name, prefix, cont)})
            out.append(parse_echo(body, prefix, cont, self.name))
        return out

    # -- k samples of one prompt as one n=k request (adapters/openai_n.py) -------------------------
    def _groups(self, requests: Sequence[GenerationRequest]) -> list[list[GenerationRequest]]:
        from adapters.openai_n import sample_groups

        if not self.sends_n:
            return [[r] for r in requests]
        return [[requests[i] for i in g] for g in sample_groups(requests)]

    def _n_payload(self, group: Sequence[GenerationRequest]) -> tuple[str, dict[str, Any]]:
        path, payload = self._payload(group[0])
        return path, {**payload, "n": len(group)}

    def _parse_n(self, body: Any, group: Sequence[GenerationRequest]) -> list[Generation]:
        """The choices of an ``n`` reply as generations, the usage divided among them; fewer than
        asked marks the server as one that ignores ``n``."""
        from adapters.openai_n import split_usage

        choices = body.get("choices") if isinstance(body, Mapping) else None
        if not isinstance(choices, list) or not choices:
            raise MalformedResponseError("no choices in the response", scrub_record(body))
        ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, Mapping) else 0)[: len(group)]
        gens = [self._parse({**body, "choices": [c]}, r) for c, r in zip(ordered, group)]
        usage = split_usage(body.get("usage") or {}, [len(g.tokens) if g.tokens else None for g in gens])
        if len(gens) < len(group):
            self._n_supported = False
            log.info("%s returned %d of %d choices (n ignored): the rest go as single requests",
                     self.base_url, len(gens), len(group))
        return [dataclasses.replace(g, usage=u) for g, u in zip(gens, usage)]

    def _generate_n(self, group: Sequence[GenerationRequest]) -> list[Generation]:
        if len(group) == 1:
            return [self._generate(group[0])]
        gens = self._parse_n(self._call(*self._n_payload(group)), group)
        return gens + [self._generate(r) for r in group[len(gens):]]

    async def _agenerate_n(self, group: Sequence[GenerationRequest]) -> list[Generation]:
        if len(group) == 1:
            return [await self._agenerate(group[0])]
        gens = self._parse_n(await self._acall(*self._n_payload(group)), group)
        return gens + list(await asyncio.gather(*(self._agenerate(r) for r in group[len(gens):])))

    def batch(self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any) -> list[Generation]:
        """:meth:`LogprobModel.batch`, where each run of samples of one prompt (seeds ``seed + i``)
        goes as one request with ``n=k`` (``sample_n``; see :mod:`adapters.openai_n`)."""
        from concurrent.futures import ThreadPoolExecutor

        check_concurrency(max_concurrency)
        groups = self._groups([self.request(m, **kwargs) for m in inputs])
        if max_concurrency == 1 or len(groups) == 1:
            return [g for group in groups for g in self._generate_n(group)]
        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            return [g for part in pool.map(self._generate_n, groups) for g in part]

    async def abatch(self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any) -> list[Generation]:
        """Async :meth:`batch` (a semaphore bounds the requests in flight)."""
        check_concurrency(max_concurrency)
        groups = self._groups([self.request(m, **kwargs) for m in inputs])
        sem = asyncio.Semaphore(max_concurrency)

        async def one(group: list[GenerationRequest]) -> list[Generation]:
            async with sem:
                return await self._agenerate_n(group)

        return [g for part in await asyncio.gather(*(one(gr) for gr in groups)) for g in part]

    def _send(self, path: str, payload: dict[str, Any], end: float) -> Any:
        """One attempt read in full by ``end`` (monotonic): a :class:`_Reply`, or the transport error."""
        import httpx

        try:
            with _request_errors(), self._client.stream("POST", path, json=payload, timeout=_timeout(end)) as resp:
                chunks = []
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > end:
                        raise _deadline_error(self.timeout)
                return _Reply(resp.status_code, resp.headers, b"".join(chunks))
        except httpx.TransportError as exc:
            return exc

    async def _asend(self, client: Any, path: str, payload: dict[str, Any], end: float) -> Any:
        """Async :meth:`_send`; the attempt is cancelled at ``end`` exactly."""
        import httpx

        async def attempt() -> _Reply:
            with _request_errors():
                async with client.stream("POST", path, json=payload, timeout=_timeout(end)) as resp:
                    return _Reply(resp.status_code, resp.headers, await resp.aread())

        try:
            return await asyncio.wait_for(attempt(), max(end - time.monotonic(), 0.0))
        except httpx.TransportError as exc:
            return exc
        except asyncio.TimeoutError:
            return _deadline_error(self.timeout)

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
        """One ``httpx.AsyncClient`` per event loop, closed when that loop shuts down.

        A client cannot outlive its loop, and one per ``asyncio.run()`` must not pile up: each
        client is held by an async generator registered with its loop, whose ``finally`` closes
        the client when the loop's ``shutdown_asyncgens()`` runs (``asyncio.run`` does this).
        Entries of closed loops are dropped whenever a new loop asks.
        """
        import httpx

        loop = asyncio.get_running_loop()
        with self._aclients_lock:
            entry = self._aclients.get(loop)
            if entry is not None:
                return entry[0]
            for old in [lp for lp in self._aclients if lp.is_closed()]:
                del self._aclients[old]
            client = httpx.AsyncClient(**self._client_args)
            closer = _close_with_loop(client)
            step = closer.asend(None)  # registers the generator with the running loop
            try:
                step.send(None)  # runs to its first yield at once (no await before it)
            except StopIteration:
                pass
            self._aclients[loop] = (client, closer)
            return client

    async def aclose(self) -> None:
        """Close this event loop's async client and the sync client."""
        entry = self._aclients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()
        self._client.close()
