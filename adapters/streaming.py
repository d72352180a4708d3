"""Streaming vocabulary: generations arrive as *deltas*, and helpers to drive or join them.

:meth:`LogprobModel.stream <adapters.base.LogprobModel.stream>` yields :class:`Generation`
deltas: each holds a piece of text (``text``), the tokens of that piece (``tokens``; their
``offset`` counts from the start of the *whole* reply, so they can be appended to a list as
they come), and ``finish_reason=None`` until the last delta, which carries the finish reason
and the :class:`Usage`. :func:`join_chunks` turns the deltas back into the one
:class:`Generation` that ``generate`` returns.

:func:`iterate_in_thread` / :func:`aiterate_in_thread` drive a blocking iterator (a local
model's decode loop, which holds the model's lock while it runs) in a thread of its own, so the
lock is taken and released by one thread, a consumer that stops early never leaves it held,
and an asyncio consumer never blocks its event loop. The producer never waits for the consumer
(the queue holds at most one item per generated token, bounded by ``max_tokens``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from adapters.types import Generation, TokenLogprob, Usage

__all__ = ["aiterate_in_thread", "is_last_chunk", "iterate_in_thread", "join_chunks", "single_chunk"]

T = TypeVar("T")

_POLL_S = 1.0
"""How often a waiting consumer checks that its producer thread is still alive."""


def is_last_chunk(chunk: Generation) -> bool:
    """Whether ``chunk`` is a stream's last delta (it carries ``finish_reason`` and usage)."""
    return chunk.finish_reason is not None


def single_chunk(gen: Generation) -> Generation:
    """A whole generation as a stream of one delta (it is also the last)."""
    return gen if gen.finish_reason is not None else replace(gen, finish_reason="stop")


def join_chunks(chunks: Iterable[Generation]) -> Generation:
    """The whole :class:`Generation` from a stream's deltas (text and tokens concatenated).

    Tokens are ``None`` only when no delta carried any token list. Finish reason, usage, model
    and prefill come from the last delta that has them.
    """
    text: list[str] = []
    tokens: list[TokenLogprob] = []
    any_tokens = False
    finish, usage, model, prefill = "length", Usage(), "", ""
    for chunk in chunks:
        text.append(chunk.text)
        if chunk.tokens is not None:
            any_tokens = True
            tokens.extend(chunk.tokens)
        if chunk.finish_reason is not None:
            finish, usage = chunk.finish_reason, chunk.usage
        model = chunk.model or model
        prefill = chunk.prefill or prefill
    return Generation(
        text="".join(text),
        tokens=tuple(tokens) if any_tokens else None,
        finish_reason=finish,
        usage=usage,
        model=model,
        prefill=prefill,
    )


class _Done:
    """End-of-stream marker (with the producer's exception, if it raised)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _produce(factory: Callable[[], Iterator[T]], put: Callable[[Any], None], cancel: threading.Event) -> None:
    """Run the iterator to its end (or until ``cancel``), handing every item to ``put``."""
    error: BaseException | None = None
    it: Any = None
    try:
        it = factory()
        for item in it:
            put(item)
            if cancel.is_set():
                break
    except BaseException as exc:  # handed to the consumer, re-raised there
        error = exc
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # runs the iterator's finally blocks (releases its locks) in this thread
        put(_Done(error))


def _check_producer(thread: threading.Thread, empty: bool, name: str) -> None:
    """Raise when the producer thread is gone and left nothing to read (a poll timed out)."""
    if not thread.is_alive() and empty:
        raise RuntimeError(f"{name}: the producer thread ended without a result")


def _finished(item: Any) -> bool:
    """Whether ``item`` ends the stream (re-raising the producer's error, if any)."""
    if isinstance(item, _Done):
        if item.error is not None:
            raise item.error
        return True
    return False


def iterate_in_thread(factory: Callable[[], Iterator[T]], *, name: str = "sc-chains-stream") -> Iterator[T]:
    """Iterate ``factory()`` in a new daemon thread; yield its items here as they come."""
    q: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()
    thread = threading.Thread(target=_produce, args=(factory, q.put, cancel), name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = q.get(timeout=_POLL_S)
            except queue.Empty:
                _check_producer(thread, q.empty(), name)
                continue
            if _finished(item):
                return
            yield item
    finally:
        cancel.set()


async def aiterate_in_thread(factory: Callable[[], Iterator[T]], *, name: str = "sc-chains-stream") -> AsyncIterator[T]:
    """Async :func:`iterate_in_thread`: the items arrive on the running event loop."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(q.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            cancel.set()

    thread = threading.Thread(target=_produce, args=(factory, put, cancel), name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(q.get(), timeout=_POLL_S)
            except asyncio.TimeoutError:
                _check_producer(thread, q.empty(), name)
                continue
            if _finished(item):
                return
            yield item
    finally:
        cancel.set()
