"""Request coalescing: concurrent ``generate`` calls on one local model share forward passes.

A local model decodes a batch of rows in about the time of one row when the hardware is not
saturated (measured: 8 rows ~3x, 16 rows ~8x the tokens/s of one row on a 2-core CPU), but
callers such as an eval or a LangGraph app issue many independent single requests at once.
:class:`RequestBatcher` owns one worker thread: every request is queued; the worker takes the
first one, gathers whatever else arrives within ``wait_s`` (up to ``max_batch``), and runs them
together. A request that arrives alone runs alone, through the single-request path (which keeps
prefix KV-cache reuse), after at most ``wait_s`` of extra latency. The worker exits after
``idle_s`` without requests (so an unused model can be garbage-collected) and restarts on the
next one.

:class:`ContinuousBatcher` batches at the level of decoding steps instead (continuous, or
iteration-level, batching): its worker drives an :class:`Engine` that decodes every admitted
row one token per step; a row that finishes leaves at once (its caller gets the result) and
requests that arrived meanwhile join at the next step, up to ``max_batch`` rows. A short reply
no longer waits for the longest row of its batch, nor a new request for the batch to end.

At interpreter exit (a script ending after Ctrl-C, say) every worker finishes the batch it is
running, fails the requests still queued, and is joined (for at most :data:`EXIT_JOIN_S`), so
no worker is inside torch while the interpreter tears down (which aborted the process with
"terminate called without an active exception").
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, Union

__all__ = ["BatcherStats", "ContinuousBatcher", "Engine", "Progress", "RequestBatcher"]

R = TypeVar("R")
G = TypeVar("G")

EXIT_JOIN_S = 60.0
""":class:`ContinuousBatcher` batches at the level of decoding steps instead (continuous, or
iteration-level, batching): its worker drives an :class:`Engine` that decodes every admitted
row one token per step; a row that finishes leaves at once (its caller gets the result) and
requests that arrived meanwhile join at the next step, up to ``max_batch`` rows. A short reply
no longer waits for the longest row of its batch, nor a new request for the batch to end.

At interpreter exit, the longest wait for a worker to finish its running batch."""

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
    """What a batcher has run so far."""

    requests: int
    """Requests completed (or failed)."""
    batches: int
    """Static: runs of the batch function (a lone request counts as a batch of one).
    Continuous: busy periods (from an idle engine to an idle engine again)."""
    largest: int
    """The most requests decoding together."""
    steps: int = 0
    """Continuous only: decode steps run (one forward pass each)."""
    joined: int = 0
    """Continuous only: requests that joined rows already decoding (at a later step)."""

    @property
    def mean_batch(self) -> float:
        """Mean requests per batch (0.0 before the first)."""
        return self.requests / self.batches if self.batches else 0.0


Job = tuple[list[R], list[Future[G]]]
"""Items that must be admitted together (``n`` samples of one prompt), one future each."""


class _Worker(Generic[R, G]):
    """One worker thread fed by a queue: started on demand, exits after ``idle_s`` idle, joined at
    interpreter exit. A queue entry is a list of jobs submitted together."""

    def __init__(self, *, max_batch: int, wait_s: float, idle_s: float, name: str) -> None:
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.idle_s = idle_s
        self._name = name
        self._queue: queue.SimpleQueue[list[Job[R, G]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._requests = self._batches = self._largest = self._steps = self._joined = 0

    @property
    def stats(self) -> BatcherStats:
        """Counts so far; a request whose future has resolved is always counted."""
        with self._stats_lock:
            return BatcherStats(self._requests, self._batches, self._largest, self._steps, self._joined)

    def submit(self, item: R) -> Future[G]:
        """Queue ``item``; the future resolves to its result (or its error)."""
        return self.submit_jobs([[item]])[0][0]

    def submit_jobs(self, jobs: Sequence[Sequence[R]]) -> list[list[Future[G]]]:
        """Queue several jobs at once (a job's items are admitted together); one future per item."""
        entry: list[Job[R, G]] = [(list(items), [Future() for _ in items]) for items in jobs]
        self._queue.put(entry)
        self._ensure_worker()
        return [futs for _, futs in entry]

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

    def _loop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

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
                entry = self._queue.get_nowait()
            except queue.Empty:
                return
            _fail_jobs(entry)

    def _gather(self) -> list[Job[R, G]] | None:
        """Block up to ``idle_s`` for an entry, then take what arrives within ``wait_s`` (up to
        ``max_batch`` items); ``None`` when nothing came."""
        try:
            jobs = list(self._queue.get(timeout=self.idle_s))
        except queue.Empty:
            return None
        deadline = time.monotonic() + self.wait_s
        while sum(len(items) for items, _ in jobs) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                jobs += self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
        return jobs

    def _count(self, requests: int, *, batches: int = 0, rows: int = 0, steps: int = 0, joined: int = 0) -> None:
        with self._stats_lock:
            self._requests += requests
            self._batches += batches
            self._largest = max(self._largest, rows)
            self._steps += steps
            self._joined += joined


def _fail_jobs(jobs: Sequence[Job[R, G]]) -> None:
    for _, futs in jobs:
        for fut in futs:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(RuntimeError("the interpreter is exiting; the request was not run"))


def _started(jobs: Sequence[Job[R, G]]) -> list[Job[R, G]]:
    """The jobs with their cancelled items dropped (the rest are marked running)."""
    out = []
    for items, futs in jobs:
        kept = [(i, f) for i, f in zip(items, futs) if f.set_running_or_notify_cancel()]
        if kept:
            out.append(([i for i, _ in kept], [f for _, f in kept]))
    return out


class RequestBatcher(_Worker[R, G]):
    """Runs submitted items through ``run_batch`` in groups formed by arrival time (static batching).

    ``run_batch(items) -> results`` gets 1..``max_batch`` items and returns one result per item,
    in order. If it raises, every item of that group gets the exception.
    """

    def __init__(self, run_batch: Callable[[Sequence[R]], Sequence[G]], *, max_batch: int, wait_s: float,
                 idle_s: float = 1.0, name: str = "sc-chains-batcher") -> None:
        super().__init__(max_batch=max_batch, wait_s=wait_s, idle_s=idle_s, name=name)
        self._run = run_batch

    def _loop(self) -> None:
        backlog: deque[tuple[R, Future[G]]] = deque()  # items gathered past max_batch run next
        while True:
            if not backlog:
                gathered = None if _exiting.is_set() else self._gather()
                if gathered is None:
                    if self._retire():
                        return
                    continue
                backlog.extend(pair for items, futs in gathered for pair in zip(items, futs))
            group = [backlog.popleft() for _ in range(min(self.max_batch, len(backlog)))]
            if _exiting.is_set():
                _fail_jobs([([item for item, _ in group], [fut for _, fut in group])])
                continue
            group = [(item, fut) for item, fut in group if fut.set_running_or_notify_cancel()]
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
        self._count(len(group), batches=1, rows=len(group))
        for i, (_, fut) in enumerate(group):
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome[i])


Outcome = Union[G, BaseException]


@dataclass
class Progress(Generic[G]):
    """What one :meth:`Engine.advance` did."""

    finished: list[tuple[Future[G], Outcome[G]]]
    """Futures whose requests finished (or failed), with their results or errors."""
    stepped: bool
    """Whether a decode step ran (rows that finish at their prefill need none)."""


class Engine(Protocol[R, G]):
    """What :class:`ContinuousBatcher` drives (see :class:`adapters.hf.continuous.HFEngine`)."""

    @property
    def active(self) -> int:
        """Rows decoding now."""

    def advance(self, jobs: list[Job[R, G]]) -> Progress[G]:
        """Admit ``jobs`` (prefill; their rows join the running ones), then run one decode step.

        Must not raise: a failing job or row is reported through its own future's outcome."""

    def abort(self) -> list[Future[G]]:
        """Drop every running row (after an unexpected error); returns their futures."""


class ContinuousBatcher(_Worker[R, G]):
    """Continuous batching: admits queued jobs between decode steps while rows are running.

    Jobs are admitted in arrival order while they fit in ``max_batch`` rows (a job larger
    than ``max_batch`` runs when the engine is empty); the first job of an idle period waits
    ``wait_s`` for companions, later ones join at the next step.
    """

    def __init__(self, engine: Engine[R, G], *, max_batch: int, wait_s: float, idle_s: float = 1.0,
                 name: str = "sc-chains-batcher") -> None:
        super().__init__(max_batch=max_batch, wait_s=wait_s, idle_s=idle_s, name=name)
        self.engine = engine

    def _loop(self) -> None:
        pending: deque[Job[R, G]] = deque()
        while True:
            if _exiting.is_set():  # finish the running rows, run nothing new
                _fail_jobs(pending)
                pending.clear()
                self._fail_queued()
            elif not pending and not self.engine.active:
                gathered = self._gather()
                pending.extend(gathered or ())
            if not pending and not self.engine.active:
                if self._retire():
                    return
                continue
            self._drain(pending)
            self._advance(_started(self._admit(pending)))

    def _drain(self, pending: deque[Job[R, G]]) -> None:
        while not _exiting.is_set():
            try:
                pending.extend(self._queue.get_nowait())
            except queue.Empty:
                return

    def _admit(self, pending: deque[Job[R, G]]) -> list[Job[R, G]]:
        """Jobs from the front of ``pending`` that fit in the free rows."""
        room = self.max_batch - self.engine.active
        taken: list[Job[R, G]] = []
        while pending and (len(pending[0][0]) <= room or (not taken and not self.engine.active)):
            taken.append(pending.popleft())
            room -= len(taken[-1][0])
        return taken

    def _advance(self, jobs: list[Job[R, G]]) -> None:
        before = self.engine.active
        rows = before + sum(len(items) for items, _ in jobs)
        try:
            progress = self.engine.advance(jobs)
        except BaseException as exc:  # noqa: BLE001 - an engine bug: fail what it holds, keep serving
            futs = [f for _, fs in jobs for f in fs] + self.engine.abort()
            progress = Progress([(f, exc) for f in dict.fromkeys(futs) if not f.done()], False)
        joined = rows - before if before else 0
        # Count before resolving: a caller woken by its result must already see it in stats.
        self._count(len(progress.finished), batches=int(not before and rows > 0), rows=rows,
                    steps=int(progress.stepped), joined=joined)
        for fut, outcome in progress.finished:
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
