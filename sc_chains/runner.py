"""A resumable, concurrent job runner that appends one JSON record per item to a JSONL file.

Durability: each record is written as one full line with a single ``os.write`` on an
``O_APPEND`` descriptor, then ``fsync``. A ``kill -9`` at any moment leaves at most one trailing
partial line (no final ``"\\n"``); the next run truncates it away before doing anything else.

Resume: items whose key already has an ``"ok"`` record are skipped. A failed item (after
``retries`` retries with exponential backoff) is recorded as ``{"key", "status": "failed",
"error", "attempts"}`` and the run goes on. On the next run failed items are tried again: at
start the file is compacted (atomically: temp file + ``os.replace``) to drop failed records and
duplicate keys, so the file always holds every key at most once, and exactly once after a run
that finished.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from adapters.errors import InvalidRequestError

__all__ = ["RunStats", "arun_jobs", "read_records", "run_jobs"]

T = TypeVar("T")
JobFn = Callable[[T], "dict[str, Any] | Awaitable[dict[str, Any]]"]


@dataclass(frozen=True)
class RunStats:
    """What one run did."""

    path: str
    """The JSONL file."""
    skipped: int
    """Items already done in an earlier run (not run again)."""
    ok: int
    """Items that succeeded in this run."""
    failed: int
    """Items recorded as failed in this run."""
    seconds: float
    """Wall time of this run."""

    @property
    def run(self) -> int:
        return self.ok + self.failed


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete, valid JSON line of ``path`` (a trailing partial line is ignored)."""
    p = Path(path)
    if not p.exists():
        return []
    data = p.read_bytes()
    records = []
    for raw in data.split(b"\n")[:-1]:  # the last piece is "" or a partial line
        if raw.strip():
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "key" in rec:
                records.append(rec)
    return records


def _prepare(path: Path) -> set[str]:
    """Repair and compact ``path``; return the keys already done (status ``ok``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):  # a kill mid-write: drop the partial last line
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
            os.fsync(f.fileno())
        data = data[: data.rfind(b"\n") + 1]
    done: set[str] = set()
    kept: list[bytes] = []
    lines = [raw for raw in data.split(b"\n")[:-1] if raw.strip()]
    for raw in lines:
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("status") == "ok" and rec.get("key") not in done:
            done.add(rec["key"])
            kept.append(raw)
    if len(kept) != len(lines):  # failed records, duplicates or garbage: rewrite atomically
        tmp = path.with_name(path.name + ".compact.tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(line + b"\n" for line in kept))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return done


def _append(fd: int, record: dict[str, Any]) -> None:
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    view = memoryview(line)
    while view:  # os.write on a regular file writes it all; loop for the theoretical short write
        view = view[os.write(fd, view) :]
    os.fsync(fd)


async def arun_jobs(
    items: Iterable[T],
    fn: JobFn[T],
    out_path: str | os.PathLike[str],
    *,
    key: Callable[[T], str],
    concurrency: int = 4,
    retries: int = 2,
    backoff: float = 0.5,
    progress: bool = True,
    description: str = "jobs",
) -> RunStats:
    """Run ``fn(item)`` for every item not yet done; append ``{"key", "status": "ok", **result}``.

    ``fn`` may be sync (run in a worker thread) or async. ``key(item)`` must be unique per item.
    At most ``concurrency`` items run at once. See the module docstring for durability/resume.
    """
    for name, value, low in (("concurrency", concurrency, 1), ("retries", retries, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InvalidRequestError(name, value, f"pass an integer >= {low}")
    path = Path(out_path)
    done = _prepare(path)
    todo, seen, skipped = [], set(), 0
    for item in items:
        k = key(item)
        if k in seen:
            raise InvalidRequestError("key", k, "every item needs a distinct key")
        seen.add(k)
        if k in done:
            skipped += 1
        else:
            todo.append((k, item))
    counts = {"ok": 0, "failed": 0}
    start = time.perf_counter()
    is_async = inspect.iscoroutinefunction(fn)

    async def call(item: T) -> dict[str, Any]:
        if is_async:
            return await fn(item)  # type: ignore[misc]
        result = await asyncio.to_thread(fn, item)
        return await result if inspect.isawaitable(result) else result

    async def one(k: str, item: T) -> None:
        errors = []
        for attempt in range(retries + 1):
            try:
                result = await call(item)
                if not isinstance(result, dict):
                    raise TypeError(f"job function returned {type(result).__name__}, not a dict")
                record = {"key": k, "status": "ok", **{x: v for x, v in result.items()
                                                       if x not in ("key", "status")}}
                break
            except Exception as exc:  # noqa: BLE001 - recorded, then the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")
                if attempt < retries:
                    await asyncio.sleep(backoff * 2**attempt)
        else:
            record = {"key": k, "status": "failed", "error": errors[-1], "attempts": len(errors)}
        _append(fd, record)  # the event loop thread is the only writer: no interleaving
        counts[record["status"]] += 1
        bar.advance(counts)

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    bar = _Bar(progress, description, len(todo), skipped)
    try:
        with bar:
            sem = asyncio.Semaphore(concurrency)
            tasks = set()
            for k, item in todo:
                await sem.acquire()
                task = asyncio.create_task(one(k, item))
                task.add_done_callback(lambda _t: sem.release())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
    finally:
        os.close(fd)
    return RunStats(str(path), skipped, counts["ok"], counts["failed"], time.perf_counter() - start)


def run_jobs(items: Iterable[T], fn: JobFn[T], out_path: str | os.PathLike[str], **kw: Any) -> RunStats:
    """Sync wrapper of :func:`arun_jobs` (same arguments); call it outside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_jobs(items, fn, out_path, **kw))
    raise RuntimeError("run_jobs() was called inside a running event loop; await arun_jobs() instead")


class _Bar:
    """A rich progress bar with rate, ETA and yield (share of successes); a no-op when off."""

    def __init__(self, enabled: bool, description: str, total: int, skipped: int) -> None:
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("yield {task.fields[yield_]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        note = f" ({skipped} done before)" if skipped else ""
        self.task = self.progress.add_task(description + note, total=total, rate="-", yield_="-")

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self, counts: dict[str, int]) -> None:
        if self.progress is None:
            return
        n = counts["ok"] + counts["failed"]
        elapsed = self.progress.tasks[0].elapsed or 1e-9
        self.progress.update(self.task, advance=1, rate=f"{n / elapsed:.2f}/s",
                             yield_=f"{counts['ok'] / n:.0%}")
