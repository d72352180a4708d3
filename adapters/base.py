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

from adapters.errors import InvalidRequestError, LogprobsUnavailableError, ScoringUnavailableError
from adapters.streaming import aiterate_in_thread, single_chunk
from adapters.tools import fallback_messages, has_tool_turns
from adapters.types import REQUEST_OPTIONS, Capabilities, Generation, GenerationRequest

__all__ = ["LogprobModel", "MAX_SCORE_PAIRS", "check_concurrency", "check_score_pairs"]


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

    # -- scoring given text (no generation) ------------------------------------------------------
    scoring_hint: str = ("use a local Hugging Face model (hf:...), which scores text with one forward "
                         "pass, or a method setting that does not need it")
    """How to get text scores; shown in :class:`ScoringUnavailableError`."""

    def _score_texts(self, pairs: list[tuple[str, str]]) -> list[Generation]:
        """Score validated ``(prefix, continuation)`` pairs (adapters with ``text_scores``)."""
        raise ScoringUnavailableError(self.name, self.scoring_hint)

    def _score_request(self, pairs: Any) -> list[tuple[str, str]]:
        checked = check_score_pairs(pairs)
        if not self.capabilities.text_scores:
            raise ScoringUnavailableError(self.name, self.scoring_hint)
        return checked

    def score_texts(self, pairs: Sequence[tuple[str, str]]) -> list[Generation]:
        """The logprob of each ``continuation`` token after its ``prefix``, without generating.

        Raw text (no chat template): the model reads ``prefix`` then ``continuation``, tokenized
        apart (an empty prefix starts from the model's start token). One :class:`Generation` per
        pair, in order: ``text`` is the continuation, ``tokens`` its tokens with their logprobs
        (``sum(t.logprob for t in g.tokens)`` is ``log P(continuation | prefix)``), ``usage``
        counts every token read as prompt tokens. At most :data:`MAX_SCORE_PAIRS` pairs.
        Raises :class:`ScoringUnavailableError` unless ``capabilities.text_scores``.
        """
        return self._score_texts(self._score_request(pairs))

    async def ascore_texts(self, pairs: Sequence[tuple[str, str]]) -> list[Generation]:
        """Async :meth:`score_texts` (a worker thread)."""
        return await asyncio.to_thread(self._score_texts, self._score_request(pairs))

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


MAX_SCORE_PAIRS = 64
"""The most ``(prefix, continuation)`` pairs one :meth:`LogprobModel.score_texts` call takes."""


def check_score_pairs(pairs: Any) -> list[tuple[str, str]]:
    """``pairs`` as a list of ``(prefix, continuation)`` strings (1 to :data:`MAX_SCORE_PAIRS`,
    each continuation non-empty); raises :class:`InvalidRequestError` naming the bad value."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or not 1 <= len(pairs) <= MAX_SCORE_PAIRS:
        size = len(pairs) if isinstance(pairs, Sequence) else pairs
        raise InvalidRequestError("pairs", size, f"pass a list of 1 to {MAX_SCORE_PAIRS} (prefix, continuation) pairs")
    out = []
    for i, pair in enumerate(pairs):
        ok = isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
        if not ok or not pair[1]:
            raise InvalidRequestError(f"pairs[{i}]", pair, "pass (prefix, continuation): two strings, "
                                      "the continuation non-empty")
        out.append((pair[0], pair[1]))
    return out


def check_concurrency(n: Any) -> None:
    """Raise :class:`InvalidRequestError` unless ``n`` (a ``max_concurrency``) is an int >= 1."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidRequestError("max_concurrency", n, "pass an integer >= 1")
