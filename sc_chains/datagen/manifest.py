"""``manifest.json``: what a datagen run was (to reproduce it) and what it produced.

Identity (refused if a rerun into the same folder differs): kind, dataset, models, generator
config (seed included). Everything else (counts, yield, tokens, timings) is recomputed from
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

from adapters.errors import SCChainsError
from sc_chains.datagen.common import sum_usage

__all__ = ["DatagenMismatchError", "build_manifest", "check_identity", "read_manifest", "write_json_atomic"]

MANIFEST = "manifest.json"
IDENTITY_KEYS = ("kind", "dataset", "models", "config")


class DatagenMismatchError(SCChainsError, ValueError):
    """The output folder holds data of another kind, dataset, model or config."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file and ``os.replace`` (never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The folder's manifest, or ``None``."""
    p = out / MANIFEST
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


def check_identity(out: Path, identity: Mapping[str, Any]) -> None:
    """Refuse to mix runs: raise :class:`DatagenMismatchError` if ``out`` holds another run's data."""
    before = read_manifest(out)
    if before is None or not (out / "raw.jsonl").exists():
        return
    old = json.loads(json.dumps({k: before.get(k) for k in IDENTITY_KEYS}))
    new = json.loads(json.dumps({k: identity.get(k) for k in IDENTITY_KEYS}))
    diff = [k for k in IDENTITY_KEYS if old[k] != new[k]]
    if diff:
        shown = "; ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in diff)
        raise DatagenMismatchError(
            f"{out} holds data of another run ({shown}); pass another --out folder or delete it to start over"
        )


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
