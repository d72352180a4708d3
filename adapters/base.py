"""The adapter interface: one required method, everything else derived.

Subclasses implement :meth:`LogprobModel._generate` (sync). Async defaults to running it in a
worker thread; adapters with a native async client override :meth:`LogprobModel._agenerate`.
The public :meth:`generate`/:meth:`agenerate` validate the request once, here, and check the
adapter's capabilities (``top_logprobs`` limit, ``prefill``) so every adapter rejects bad input
the same way.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from adapters.streaming import aiterate_in_thread, single_chunk
from adapters.tools import fallback_messages, has_tool_turns
from adapters.types import REQUEST_OPTIONS, Capabilities, Generation, GenerationRequest

__all__ = ["LogprobModel", "check_concurrency"]


class LogprobModel(ABC):
    """A model that returns text plus per-token logprobs.

    ``generate(messages, *, max_tokens, temperature, top_p, stop, seed, top_logprobs, prefill)``
    and its async twin ``agenerate``; ``batch``/``abatch`` with bounded concurrency.
    """

    name: str = "model"
    """A human-readable model name, used in errors and traces."""
    capabilities: Capabilities = Capabilities()
    """What this adapter can do."""
    logprobs_hint: str = "Use an adapter or server that returns token logprobs."
    """How to enable logprobs; shown in :class:`LogprobsUnavailableError`."""

    # -- the one method an adapter must write -------------------------------------------------
    @abstractmethod
    def _generate(self, request: GenerationRequest) -> Generation:
        """Run one validated request."""

    async def _agenerate(self, request: GenerationRequest) -> Generation:
        """Async twin; by default the sync path in a worker thread."""
        return await asyncio.to_thread(self._generate, request)

    def _stream(self, request: GenerationRequest) -> Iterator[Generation]:
        """Deltas of one validated request; by default the whole reply as one delta."""
        yield single_chunk(self._generate(request))

    async def _astream(self, request: GenerationRequest) -> AsyncIterator[Generation]:
        """Async twin: an overridden :meth:`_stream` driven by a thread of its own, otherwise
        :meth:`_agenerate`'s whole reply as one delta (the adapter's own async path)."""
        if type(self)._stream is LogprobModel._stream:
            yield single_chunk(await self._agenerate(request))
            return
        async for delta in aiterate_in_thread(lambda: self._stream(request), name=f"sc-chains-stream[{self.name}]"):
            yield delta

    # -- public API ------------------------------------------------------------------------------
    def request(self, messages: Any, **kwargs: Any) -> GenerationRequest:
        """Validate arguments into a :class:`GenerationRequest` (and check capabilities)."""
        unknown = sorted(set(kwargs) - set(REQUEST_OPTIONS))
        if unknown:
            raise InvalidRequestError(
                unknown[0], kwargs[unknown[0]], f"generate() takes only {', '.join(REQUEST_OPTIONS)} as options"
            )
        req = messages if isinstance(messages, GenerationRequest) else GenerationRequest.build(messages, **kwargs)
        caps = self.capabilities
        if not caps.tool_template and (req.tools or has_tool_turns(req.messages)):
            # no tools section in this model's template: the documented text format instead
            req = replace(req, messages=tuple(fallback_messages(req.messages, req.tools)), tools=())
        if req.top_logprobs > caps.max_top_logprobs:
            raise InvalidRequestError(
                "top_logprobs",
                req.top_logprobs,
                f"{self.name} returns at most {caps.max_top_logprobs} alternatives per token; "
                f"pass top_logprobs <= {caps.max_top_logprobs}",
            )
        if req.prefill and not caps.prefill:
            raise InvalidRequestError(
                "prefill",
                req.prefill[:60],
                f"{self.name} cannot continue an assistant text; check model.capabilities.prefill "
                "first and put the prefix in the user message instead",
            )
        return req

    def generate(self, messages: Any, **kwargs: Any) -> Generation:
        """Generate one reply. ``messages``: a string, message dicts, or LangChain messages."""
        return self._generate(self.request(messages, **kwargs))

    async def agenerate(self, messages: Any, **kwargs: Any) -> Generation:
        """Async :meth:`generate`."""
        return await self._agenerate(self.request(messages, **kwargs))

    def stream(self, messages: Any, **kwargs: Any) -> Iterator[Generation]:
        """Generate one reply as it is produced: an iterator of :class:`Generation` *deltas*.

        Each delta holds a text piece and that piece's tokens (offsets count from the start of
        the whole reply); ``finish_reason`` is ``None`` except on the last delta, which also
        carries the usage. ``adapters.streaming.join_chunks`` rebuilds what :meth:`generate`
        returns. The request is validated before the first delta (typed errors come at once).
        Adapters that cannot stream yield the whole reply as one delta.
        """
        request = self.request(messages, **kwargs)
        return self._stream(request)

    def astream(self, messages: Any, **kwargs: Any) -> AsyncIterator[Generation]:
        """Async :meth:`stream`."""
        request = self.request(messages, **kwargs)
        return self._astream(request)

    def batch(
        self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any
    ) -> list[Generation]:
        """Generate for many inputs, at most ``max_concurrency`` at once; results in input order."""
        requests = [self.request(m, **kwargs) for m in inputs]
        check_concurrency(max_concurrency)
        if max_concurrency == 1 or len(requests) <= 1:
            return [self._generate(r) for r in requests]
        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            return list(pool.map(self._generate, requests))

    async def abatch(
        self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any
    ) -> list[Generation]:
        """Async :meth:`batch`: bounded fan-out with a semaphore; results in input order."""
        requests = [self.request(m, **kwargs) for m in inputs]
        check_concurrency(max_concurrency)
        sem = asyncio.Semaphore(max_concurrency)

        async def one(r: GenerationRequest) -> Generation:
            async with sem:
                return await self._agenerate(r)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    def require_logprobs(self) -> None:
        """Raise :class:`LogprobsUnavailableError` if this adapter cannot give logprobs."""
        if not self.capabilities.logprobs:
            raise LogprobsUnavailableError(self.name, self.logprobs_hint)

    def checked(self, generation: Generation) -> Generation:
        """Return ``generation``, or raise if it came back without the logprobs we need."""
        if generation.tokens is None or (generation.text and not generation.tokens):
            raise LogprobsUnavailableError(self.name, self.logprobs_hint)
        return generation

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_concurrency(n: Any) -> None:
    """Raise :class:`InvalidRequestError` unless ``n`` (a ``max_concurrency``) is an int >= 1."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidRequestError("max_concurrency", n, "pass an integer >= 1")
