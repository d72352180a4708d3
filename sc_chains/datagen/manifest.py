"""``manifest.json``: what a datagen run was (to reproduce it) and what it produced.

Identity (refused if a rerun into the same folder differs): kind, dataset, models, generator
config (seed included); written into the folder's run marker (:mod:`sc_chains.outdir`) at the
start of a run, so a killed run is resumed only with the same settings. Everything else (counts, yield, tokens, timings) is recomputed from
``raw.jsonl`` after every run, so it describes the whole folder, not just the last run.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sc_chains.datagen.common import sum_usage
from sc_chains.outdir import RunMismatchError, prepare_out_dir

__all__ = ["DatagenMismatchError", "build_manifest", "check_identity", "read_manifest", "write_json_atomic"]

MANIFEST = "manifest.json"
IDENTITY_KEYS = ("kind", "dataset", "models", "config")


class DatagenMismatchError(RunMismatchError):
    """The output folder holds data of another kind, dataset, model or config."""


DATA_FILES = ("raw.jsonl", "train.jsonl", MANIFEST)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` (secrets scrubbed) via a temp file and ``os.replace`` (never half a file)."""
    from sc_chains.runner import scrub_record

    tmp = path.with_name(path.name + ".tmp")
    data = scrub_record(json.loads(json.dumps(data, default=str)))
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The folder's manifest, or ``None``."""
    p = out / MANIFEST
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


def legacy_identity(out: Path) -> dict[str, Any] | None:
    """The identity of a datagen folder written before the run marker (its manifest), or ``None``."""
    try:
        before = read_manifest(out)
    except (OSError, ValueError):
        return None
    if not isinstance(before, dict) or not all(k in before for k in IDENTITY_KEYS):
        return None
    return {k: before[k] for k in IDENTITY_KEYS}


def check_identity(out: Path, identity: Mapping[str, Any]) -> Path:
    """Make ``out`` ready and write the run's identity into its marker *before* the run
    (:func:`sc_chains.outdir.prepare_out_dir`): a folder with data files sc-chains did not write
    is refused (:class:`~sc_chains.outdir.ForeignFilesError`), a resume with another identity
    raises :class:`DatagenMismatchError` naming the differing keys."""
    ident = {k: identity.get(k) for k in IDENTITY_KEYS}
    return prepare_out_dir(out, "datagen", ident, data_files=DATA_FILES, legacy=legacy_identity,
                           mismatch=DatagenMismatchError)


def build_manifest(
    identity: Mapping[str, Any],
    *,
    records: Iterable[Mapping[str, Any]],
    failed: Iterable[Mapping[str, Any]],
    items: int,
    examples: int,
    usable: int,
    fmt: str,
    run: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict.

    ``records``: every ``ok`` record of the folder; ``failed``: the items recorded as failed;
    ``items``: how many items the run asked for; ``examples``: rows written to ``train.jsonl``;
    ``usable``: records that gave at least one row (``yield`` = usable / items);
    ``run``: this run's own numbers (skipped, ok, failed, seconds, backend, concurrency).
    """
    from sc_chains import __version__

    records, failed = list(records), list(failed)
    drops: dict[str, int] = {}
    for r in records:
        if r.get("drop"):
            drops[r["drop"]] = drops.get(r["drop"], 0) + 1
    return {
        **{k: identity[k] for k in IDENTITY_KEYS},
        "format": fmt,
        "sc_chains_version": __version__,
        "python": platform.python_version(),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": {"items": items, "ok": len(records), "failed": len(failed), "dropped": sum(drops.values()),
                   "drop_reasons": drops, "usable": usable, "examples": examples},
        "yield": usable / items if items else 0.0,
        "tokens": sum_usage(*(r.get("usage") for r in records)),
        "failures": [{"key": f["key"], "error": f.get("error")} for f in failed[:20]],
        "run": dict(run),
        "files": {"raw": "raw.jsonl", "train": "train.jsonl"},
        **dict(extra or {}),
    }
