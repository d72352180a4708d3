"""Output folders of ``eval`` and ``datagen``: ours, usable, and holding one run's configuration.

A run writes the marker file ``.sc-chains-run.json`` into its folder *before* anything else:
``{"tool": "sc-chains", "kind": "eval"|"datagen", "identity": {...}, "created": ...}``. So:

- a folder holding a data file (``results.jsonl``, ``raw.jsonl``, ``train.jsonl``...) but no
  marker holds files sc-chains did not write: the run is refused (:class:`ForeignFilesError`),
  never cleaned up, because the resume clean-up would drop their lines;
- a resume whose identity (model, model options, chain/generator settings, seed, dataset)
  differs from the marker's is refused, naming the differing keys (:class:`RunMismatchError`);
- a folder that is a file, cannot be created or is read-only fails up front
  (:class:`OutputFolderError`).

Folders from sc-chains versions before the marker (an eval folder with ``run.json``, a datagen
folder with ``manifest.json``) are recognised by those files and adopted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from adapters.errors import SCChainsError

__all__ = ["ForeignFilesError", "OutputFolderError", "OutputWriteError", "RunMismatchError"]

MARKER = ".sc-chains-run.json"
"""The file that marks a folder as written by an sc-chains run (and holds its identity)."""


class OutputFolderError(SCChainsError, ValueError):
    """``--out`` is a file, cannot be created, or cannot be written."""

    def __init__(self, path: Any, reason: str, fix: str) -> None:
        self.path, self.reason, self.fix = str(path), reason, fix
        super().__init__(f"output folder {self.path!r} {reason}: {fix}")


class ForeignFilesError(SCChainsError, FileExistsError):
    """The output folder holds data files that no sc-chains run wrote (no marker)."""

    def __init__(self, path: Any, files: list[str]) -> None:
        self.path, self.files = str(path), files
        super().__init__(
            f"{self.path} holds {', '.join(files)} that sc-chains did not write (no {MARKER} in the "
            "folder); a run would rewrite them. Pass another --out folder, or move those files away"
        )


class RunMismatchError(SCChainsError, ValueError):
    """The output folder holds a run with another configuration; ``differing`` names the keys."""

    def __init__(self, path: Any, differing: Mapping[str, tuple[Any, Any]]) -> None:
        self.path, self.differing = str(path), dict(differing)
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in self.differing.items())
        super().__init__(
            f"{self.path} holds results of another run (differing: {shown}); rerun with the same "
            "settings to resume, or pass another --out folder (or delete this one) to start over"
        )


class OutputWriteError(SCChainsError, OSError):
    """Writing a record failed (a full disk, a lost mount); the records before it are intact."""

    def __init__(self, path: Any, exc: OSError) -> None:
        self.path, self.reason = str(path), exc.strerror or str(exc)
        super().__init__(exc.errno, f"cannot write {self.path}: {self.reason}. Free space (or fix the "
                                    "folder) and rerun the same command: it resumes, and a half-written "
                                    "last line is repaired")

    def __str__(self) -> str:
        return str(self.args[1])


def _jsonable(x: Any) -> Any:
    """``x`` as plain JSON values, secrets (API keys, URL credentials) scrubbed."""
    from sc_chains.runner import scrub_record

    return scrub_record(json.loads(json.dumps(x, default=str)))


def read_marker(out: Path) -> dict[str, Any] | None:
    """The marker of ``out`` (``None`` when there is none or it is not ours)."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "sc-chains" else None


def _make_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputFolderError(out, "is a file", "pass a folder path for --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFolderError(out, f"cannot be created ({exc.strerror or exc})",
                                "pass a folder you may write to for --out") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputFolderError(out, "is not writable", "pass a folder you may write to for --out")


def _has_data(out: Path, names: Iterable[str]) -> list[str]:
    return [n for n in names if (out / n).is_file() and (out / n).stat().st_size > 0]


def _write_marker(out: Path, kind: str, identity: Mapping[str, Any], created: str | None) -> None:
    data = {"tool": "sc-chains", "kind": kind, "identity": _jsonable(dict(identity)),
            "created": created or time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = out / (MARKER + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, out / MARKER)
    except OSError as exc:
        raise OutputFolderError(out, f"cannot be written ({exc.strerror or exc})",
                                "pass a folder you may write to for --out, with free space") from None


def prepare_out_dir(
    out: str | os.PathLike[str],
    kind: str,
    identity: Mapping[str, Any],
    *,
    data_files: Iterable[str],
    legacy: Callable[[Path], Mapping[str, Any] | None] | None = None,
    merge: Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[dict[str, Any], dict[str, Any]]] | None = None,
    mismatch: type[RunMismatchError] = RunMismatchError,
) -> Path:
    """Make ``out`` ready for a ``kind`` run with ``identity``; write the marker first.

    ``data_files``: the names this kind of run writes (present without a marker: refused).
    ``legacy(out)``: the identity of a pre-marker folder of ours, or ``None``. ``merge(old, new)``
    returns ``(identity to write, differing keys)``; default: every key must be equal.
    ``mismatch``: the :class:`RunMismatchError` subclass raised for a differing identity.
    """
    path = Path(out)
    _make_folder(path)
    marker = read_marker(path)
    before = marker.get("identity") if marker else (legacy(path) if legacy else None)
    if marker is not None and marker.get("kind") != kind:
        raise mismatch(path, {"kind": (marker.get("kind"), kind)})
    if before is None:
        present = _has_data(path, data_files)
        if present:
            raise ForeignFilesError(path, present)
        _write_marker(path, kind, identity, None)
        return path
    new = _jsonable(dict(identity))
    if merge is not None:
        merged, diff = merge(before, new)
    else:
        merged = new
        diff = {k: (before.get(k), new.get(k)) for k in sorted(set(before) | set(new))
                if before.get(k) != new.get(k)}
    if diff and _has_data(path, data_files):
        raise mismatch(path, diff)
    _write_marker(path, kind, merged, (marker or {}).get("created"))
    return path
