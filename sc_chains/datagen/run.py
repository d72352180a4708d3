"""Run a generator over problems: ``raw.jsonl`` (runner, resumable) -> ``train.jsonl`` + manifest.

Layout of ``out_dir``: ``raw.jsonl`` (one record per item with scores, rewards and the trace;
written by :mod:`sc_chains.runner`, so a killed run resumes with no record lost or duplicated),
``train.jsonl`` (TRL rows exported from every ``ok`` record, in item order; rewritten atomically
each run) and ``manifest.json`` (:mod:`sc_chains.datagen.manifest`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from adapters.errors import InvalidRequestError
from sc_chains.datagen.common import check_int
from sc_chains.datagen.exporters import examples
from sc_chains.datagen.manifest import build_manifest, check_identity, write_json_atomic
from sc_chains.datasets import Problem
from sc_chains.runner import arun_jobs, read_records

__all__ = ["BACKENDS", "run_datagen"]

BACKENDS = ("local", "ray")


def run_datagen(
    generator: Any,
    problems: Sequence[Problem],
    out_dir: str | os.PathLike[str],
    *,
    dataset: Mapping[str, Any] | str,
    fmt: str | None = None,
    sft_source: str = "both",
    concurrency: int = 4,
    retries: int = 2,
    backoff: float = 0.5,
    backend: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Generate training data with ``generator`` (a ``*Generator`` of :mod:`sc_chains.datagen`).

    ``dataset`` describes where ``problems`` came from (a name, or a dict with name/path/fields;
    part of the run's identity). ``fmt``: the TRL format (default: the generator's). Items already
    in ``raw.jsonl`` are not run again; a failing item is retried ``retries`` times, then recorded
    as failed (with its error) and skipped. Returns the manifest.
    """
    fmt = fmt or generator.default_format
    if fmt not in generator.formats:
        raise InvalidRequestError("format", fmt, f"{generator.kind} exports to one of {list(generator.formats)}")
    check_int("concurrency", concurrency, 1)
    if backend not in BACKENDS:
        raise InvalidRequestError("backend", backend, f"use one of {list(BACKENDS)}")
    identity = {"kind": generator.kind, "dataset": dataset if not isinstance(dataset, str) else {"name": dataset},
                "models": generator.labels(), "config": generator.describe()}
    out = check_identity(Path(out_dir), identity)  # the run's identity is on disk before any item runs
    items = generator.items(list(problems))
    kw: dict[str, Any] = {"key": generator.key, "concurrency": concurrency, "retries": retries,
                          "backoff": backoff, "progress": progress, "description": f"datagen {generator.kind}"}
    stats = _run_items(generator, items, out / "raw.jsonl", backend, ray_address, kw)
    manifest = _export(generator, items, out, identity, fmt, sft_source)
    manifest["run"] = {"skipped": stats.skipped, "ok": stats.ok, "failed": stats.failed,
                       "seconds": round(stats.seconds, 3), "backend": backend, "concurrency": concurrency,
                       "retries": retries}
    if command is not None:
        manifest["command"] = list(command)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _run_items(generator: Any, items: list[Any], raw: Path, backend: str, ray_address: str | None,
               kw: dict[str, Any]) -> Any:
    """Run every item not yet in ``raw`` (runner stats), in threads or on Ray."""
    if backend == "ray":
        from sc_chains.datagen.ray_backend import ray_job, ray_session

        with ray_session(ray_address):
            return asyncio.run(arun_jobs(items, ray_job(generator), raw, **kw))
    # own pool sized to the concurrency (asyncio's default pool has min(32, CPUs + 4) threads)
    pool = ThreadPoolExecutor(max_workers=kw["concurrency"], thread_name_prefix="datagen")

    async def job(item: Any) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(pool, generator, item)

    try:
        stats = asyncio.run(arun_jobs(items, job, raw, **kw))
    except BaseException:  # Ctrl-C or a write error: drop queued items, do not wait for running ones
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return stats


def _export(generator: Any, items: list[Any], out: Path, identity: Mapping[str, Any], fmt: str,
            sft_source: str) -> dict[str, Any]:
    """``train.jsonl`` (atomically) from every ``ok`` record of the folder; the manifest (no ``run``)."""
    keys = [generator.key(i) for i in items]
    by_key = {r["key"]: r for r in read_records(out / "raw.jsonl")}
    ok = [by_key[k] for k in keys if k in by_key and by_key[k].get("status") == "ok"]
    failed = [by_key[k] for k in keys if k in by_key and by_key[k].get("status") == "failed"]
    per_record = [examples(r, fmt, sft_source=sft_source) for r in ok]
    rows = [row for rs in per_record for row in rs]
    tmp = out / "train.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / "train.jsonl")
    return build_manifest(
        identity, records=ok, failed=failed, items=len(items), examples=len(rows),
        usable=sum(1 for rs in per_record if rs), fmt=fmt, run={},
        extra={"sft_source": sft_source} if generator.kind == "w2s" else None,
    )
