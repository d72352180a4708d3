"""Run a generator over problems: ``raw.jsonl`` (runner, resumable) -> ``train.jsonl`` + manifest.

Layout of ``out_dir``: ``raw.jsonl`` (one record per item with scores, rewards and the trace;
written by :mod:`sc_chains.runner`, so a killed run resumes with no record lost or duplicated),
``train.jsonl`` (TRL rows exported from every ``ok`` record, in item order; rewritten atomically
each run), ``manifest.json`` (:mod:`sc_chains.datagen.manifest`) and, with ``hf_dataset=True``
(CLI ``--hf-dataset``), ``hf_dataset/``: the same rows as a ``datasets`` folder
(``Dataset.save_to_disk``; read it back with ``datasets.load_from_disk``).

A run that yields no row writes no ``train.jsonl`` (an empty file makes
``datasets.load_dataset("json", ...)`` fail with a bare ``StopIteration``): the manifest says
``"status": "empty"`` with the reason and the fix, a :class:`NoTrainingRowsWarning` is issued
(shown on stderr by default), and the CLI prints one error line and exits with status 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import warnings
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

__all__ = ["BACKENDS", "HF_DATASET_DIR", "NoTrainingRowsWarning", "empty_reason", "run_datagen", "save_hf_dataset"]

BACKENDS = ("local", "ray")
HF_DATASET_DIR = "hf_dataset"
"""The ``datasets`` folder written next to ``train.jsonl`` when asked for."""


class NoTrainingRowsWarning(UserWarning):
    """A datagen run that wrote no training row (the manifest's ``empty_reason`` says why)."""


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
    hf_dataset: bool = False,
) -> dict[str, Any]:
    """Generate training data with ``generator`` (a ``*Generator`` of :mod:`sc_chains.datagen`).

    ``dataset`` describes where ``problems`` came from (a name, or a dict with name/path/fields;
    part of the run's identity). ``fmt``: the TRL format (default: the generator's). Items already
    in ``raw.jsonl`` are not run again; a failing item is retried ``retries`` times, then recorded
    as failed (with its error) and skipped. ``hf_dataset``: also write ``hf_dataset/``
    (needs the ``datasets`` library). Returns the manifest (``status`` ``"ok"`` or ``"empty"``).
    """
    fmt = fmt or generator.default_format
    if fmt not in generator.formats:
        raise InvalidRequestError("format", fmt, f"{generator.kind} exports to one of {list(generator.formats)}")
    check_int("concurrency", concurrency, 1)
    if backend not in BACKENDS:
        raise InvalidRequestError("backend", backend, f"use one of {list(BACKENDS)}")
    out = Path(out_dir)
    hf_dataset = hf_dataset or (out / HF_DATASET_DIR / "dataset_info.json").is_file()  # keep it in sync
    if hf_dataset:
        _require_datasets()
    identity = {"kind": generator.kind, "dataset": dataset if not isinstance(dataset, str) else {"name": dataset},
                "models": generator.labels(), "config": generator.describe()}
    out = check_identity(out, identity)  # the run's identity is on disk before any item runs
    items = generator.items(list(problems))
    kw: dict[str, Any] = {"key": generator.key, "concurrency": concurrency, "retries": retries,
                          "backoff": backoff, "progress": progress, "description": f"datagen {generator.kind}"}
    stats = _run_items(generator, items, out / "raw.jsonl", backend, ray_address, kw)
    manifest = _export(generator, items, out, identity, fmt, sft_source, hf_dataset, progress)
    manifest["run"] = {"skipped": stats.skipped, "ok": stats.ok, "failed": stats.failed,
                       "seconds": round(stats.seconds, 3), "backend": backend, "concurrency": concurrency,
                       "retries": retries}
    if command is not None:
        manifest["command"] = list(command)
    _mark_yield(manifest, generator.kind, fmt, hf_dataset)
    write_json_atomic(out / "manifest.json", manifest)
    if manifest["status"] == "empty":
        warnings.warn(f"datagen {generator.kind} wrote no training rows in {out}: {manifest['empty_reason']}",
                      NoTrainingRowsWarning, stacklevel=2)
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
            sft_source: str, hf_dataset: bool, progress: bool) -> dict[str, Any]:
    """``train.jsonl`` (and ``hf_dataset/``) from every ``ok`` record of the folder; the manifest
    (without ``run``)."""
    keys = [generator.key(i) for i in items]
    by_key = {r["key"]: r for r in read_records(out / "raw.jsonl")}
    ok = [by_key[k] for k in keys if k in by_key and by_key[k].get("status") == "ok"]
    failed = [by_key[k] for k in keys if k in by_key and by_key[k].get("status") == "failed"]
    per_record = [examples(r, fmt, sft_source=sft_source) for r in ok]
    rows = [row for rs in per_record for row in rs]
    _write_rows(out, rows, hf_dataset, progress)
    return build_manifest(
        identity, records=ok, failed=failed, items=len(items), examples=len(rows),
        usable=sum(1 for rs in per_record if rs), fmt=fmt, run={},
        extra={"sft_source": sft_source} if generator.kind == "w2s" else None,
    )


def _write_rows(out: Path, rows: list[dict[str, Any]], hf_dataset: bool, progress: bool) -> None:
    """``train.jsonl`` (atomically) and ``hf_dataset/``; with no rows, neither (stale ones removed)."""
    train = out / "train.jsonl"
    if not rows:
        train.unlink(missing_ok=True)
        shutil.rmtree(out / HF_DATASET_DIR, ignore_errors=True)
        return
    tmp = out / "train.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, train)
    if hf_dataset:
        save_hf_dataset(rows, out / HF_DATASET_DIR, progress=progress)


def _mark_yield(manifest: dict[str, Any], kind: str, fmt: str, hf_dataset: bool) -> None:
    """Set ``status`` (and ``empty_reason`` when no row was written) and the files that exist."""
    files = dict(manifest.get("files") or {})
    if hf_dataset:
        files["hf_dataset"] = HF_DATASET_DIR
    if manifest["counts"]["examples"]:
        manifest["status"] = "ok"
    else:
        manifest["status"] = "empty"
        manifest["empty_reason"] = empty_reason(manifest, kind, fmt)
        files = {k: v for k, v in files.items() if k not in ("train", "hf_dataset")}
    manifest["files"] = files


def empty_reason(manifest: Mapping[str, Any], kind: str, fmt: str) -> str:
    """Why a run gave no training row, and what to do about it (from the manifest's counts)."""
    c = manifest["counts"]
    if not c["items"]:
        return "the dataset has no problems (n=0); check --dataset/--limit"
    if c["failed"] and not c["ok"]:
        first = (manifest.get("failures") or [{}])[0].get("error")
        return (f"all {c['items']} items failed; first error: {first}. Fix that error and rerun the same "
                "command (failed items are retried)")
    parts = [f"{c['ok']} of {c['items']} items ran"]
    if c["failed"]:
        parts.append(f"{c['failed']} failed")
    if c["drop_reasons"]:
        parts.append("dropped: " + ", ".join(f"{k} x{v}" for k, v in sorted(c["drop_reasons"].items())))
    hint = "use a stronger model, more problems (--limit) or more samples (--samples)"
    if kind == "score" and fmt != "kto":
        parts.append("no second attempt was correct (the SFT formats keep only r2 = 1)")
        hint += ", or --format kto (keeps every second attempt, labelled)"
    if kind == "leco-steps":
        hint += "; leco-steps needs final answers that match the gold answer"
    return "; ".join(parts) + f". To get rows: {hint}"


def _require_datasets() -> None:
    try:
        import datasets  # noqa: F401
    except ImportError as exc:
        raise InvalidRequestError("hf_dataset", True, "needs the datasets library: pip install "
                                  "'sc-chains[train]', or drop --hf-dataset (train.jsonl loads anywhere)") from exc


def save_hf_dataset(rows: list[dict[str, Any]], folder: Path, *, progress: bool = True) -> None:
    """``rows`` as a ``datasets`` folder (``Dataset.save_to_disk``), swapped in when complete."""
    from datasets import Dataset
    from datasets import utils as hf_utils

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    quiet = not progress and not hf_utils.are_progress_bars_disabled()
    if quiet:
        hf_utils.disable_progress_bars()
    try:
        Dataset.from_list(rows).save_to_disk(str(tmp))
    finally:
        if quiet:
            hf_utils.enable_progress_bars()
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
