"""Request coalescing: concurrent ``generate`` calls on one local model run as one batch.

A local model decodes a batch of rows in about the time of one row when the hardware is not
saturated (measured: 8 rows ~3x, 16 rows ~8x the tokens/s of one row on a 2-core CPU), but
callers such as an eval or a LangGraph app issue many independent single requests at once.
:class:`RequestBatcher` owns one worker thread: every request is queued; the worker takes the
first one, gathers whatever else arrives within ``wait_s`` (up to ``max_batch``), and runs them
together. A request that arrives alone runs alone, through the single-request path (which keeps
prefix KV-cache reuse), after at most ``wait_s`` of extra latency. The worker exits after
``idle_s`` without requests (so an unused model can be garbage-collected) and restarts on the
next one.

At interpreter exit (a script ending after Ctrl-C, say) every worker finishes the batch it is
running, fails the requests still queued, and is joined (for at most :data:`EXIT_JOIN_S`), so
no worker is inside torch while the interpreter tears down (which aborted the process with
"terminate called without an active exception").
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BatcherStats", "RequestBatcher"]

R = TypeVar("R")
G = TypeVar("G")

EXIT_JOIN_S = 60.0
"""At interpreter exit, the longest wait for a worker to finish its running batch."""

_exiting = threading.Event()
_workers: set[threading.Thread] = set()
_workers_lock = threading.Lock()


def _stop_workers() -> None:
    """Interpreter exit: stop taking requests, let running batches finish, join the workers."""
    _exiting.set()
    with _workers_lock:
        threads = list(_workers)
    deadline = time.monotonic() + EXIT_JOIN_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


try:  # runs before the interpreter joins non-daemon threads and tears down (like concurrent.futures)
    threading._register_atexit(_stop_workers)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):  # pragma: no cover - other interpreters
    import atexit

    atexit.register(_stop_workers)


@dataclass(frozen=True)
class BatcherStats:
    """What a :class:`RequestBatcher` has run so far."""

    requests: int
    """Requests completed (or failed)."""
    batches: int
    """Runs of the batch function (a lone request counts as a batch of one)."""
    largest: int
    """The largest batch run."""

    @property
    def mean_batch(self) -> float:
        """Mean requests per batch (0.0 before the first)."""
        return self.requests / self.batches if self.batches else 0.0


class RequestBatcher(Generic[R, G]):
    """Runs submitted items through ``run_batch`` in groups formed by arrival time.

    ``run_batch(items) -> results`` gets 1..``max_batch`` items and returns one result per item,
    in order. If it raises, every item of that group gets the exception.
    """

    def __init__(self, run_batch: Callable[[Sequence[R]], Sequence[G]], *, max_batch: int, wait_s: float,
                 idle_s: float = 1.0, name: str = "sc-chains-batcher") -> None:
        self._run = run_batch
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.idle_s = idle_s
        self._name = name
        self._queue: queue.SimpleQueue[tuple[R, Future[G]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._requests = self._batches = self._largest = 0

    @property
    def stats(self) -> BatcherStats:
        """Counts so far; a request whose future has resolved is always counted."""
        with self._stats_lock:
            return BatcherStats(self._requests, self._batches, self._largest)

    def submit(self, item: R) -> Future[G]:
        """Queue ``item``; the future resolves to its result (or its group's exception)."""
        fut: Future[G] = Future()
        self._queue.put((item, fut))
        self._ensure_worker()
        return fut

    @property
    def running(self) -> bool:
        """Whether the worker thread is up (it exits after ``idle_s`` without requests)."""
        with self._start_lock:
            return self._thread is not None

    def _ensure_worker(self) -> None:
        with self._start_lock:  # always locked: the worker decides to exit under this lock
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                with _workers_lock:
                    _workers.add(self._thread)
                self._thread.start()

    def _retire(self) -> bool:
        """Called by an idle worker: exit unless a request slipped in (at interpreter exit:
        exit, failing what is queued)."""
        with self._start_lock:
            if _exiting.is_set():
                self._fail_queued()
            elif not self._queue.empty():
                return False
            with _workers_lock:
                _workers.discard(threading.current_thread())
            self._thread = None
            return True

    def _fail_queued(self) -> None:
        while True:
            try:
                _, fut = self._queue.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(RuntimeError("the interpreter is exiting; the request was not run"))

    def _gather(self) -> list[tuple[R, Future[G]]] | None:
        try:
            group = [self._queue.get(timeout=self.idle_s)]
        except queue.Empty:
            return None
        deadline = time.monotonic() + self.wait_s
        while len(group) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                group.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return group

    def _loop(self) -> None:
        while True:
            gathered = None if _exiting.is_set() else self._gather()
            if gathered is None:
                if self._retire():
                    return
                continue
            group = [(item, fut) for item, fut in gathered if fut.set_running_or_notify_cancel()]
            if group:
                self._run_group(group)

    def _run_group(self, group: list[tuple[R, Future[G]]]) -> None:
        outcome: BaseException | list[G]
        try:
            outcome = list(self._run([item for item, _ in group]))
            if len(outcome) != len(group):
                raise RuntimeError(f"batch function returned {len(outcome)} results for {len(group)} items")
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the group
            outcome = exc
        # Count before resolving: a caller woken by its result must already see it in stats.
        with self._stats_lock:
            self._requests += len(group)
            self._batches += 1
            self._largest = max(self._largest, len(group))
        for i, (_, fut) in enumerate(group):
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome[i])
