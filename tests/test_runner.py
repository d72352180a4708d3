"""The JSONL job runner: durability under SIGKILL, resume, retries, concurrency bounds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from adapters.errors import InvalidRequestError
from sc_chains.runner import arun_jobs, read_records, run_jobs

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from sc_chains.runner import run_jobs

    def fn(i):
        time.sleep(0.03)
        return {"value": i * i, "pad": "x" * 2000}  # long lines: more chance to kill mid-write

    stats = run_jobs(range(int(sys.argv[2])), fn, sys.argv[1], key=str, concurrency=4,
                     progress=False)
    print("ok", stats.ok, "skipped", stats.skipped)
    """
)


def _lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode().split("\n")[:-1]]


def test_sigkill_mid_run_then_resume_keeps_every_key_exactly_once(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    out, n = tmp_path / "out.jsonl", 120
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(n)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= 15:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = read_records(out)
    assert 15 <= len(before) < n, "the kill must land mid-run"

    done = subprocess.run([sys.executable, str(script), str(out), str(n)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"skipped {len(before)}" in done.stdout  # finished records were not run again
    records = _lines(out)  # every line is valid JSON, the file ends with a newline
    keys = [r["key"] for r in records]
    assert sorted(keys, key=int) == [str(i) for i in range(n)]  # each key exactly once
    assert all(r["status"] == "ok" and r["value"] == int(r["key"]) ** 2 for r in records)


def test_trailing_partial_line_is_truncated_and_its_item_rerun(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"key": "0", "status": "ok", "v": 0}\n{"key": "1", "status": "o')
    stats = run_jobs(range(3), lambda i: {"v": i}, out, key=str, progress=False)
    assert (stats.skipped, stats.ok, stats.failed) == (1, 2, 0)
    assert sorted(r["key"] for r in _lines(out)) == ["0", "1", "2"]


def test_failures_are_recorded_after_retries_then_retried_on_next_run(tmp_path: Path) -> None:
    out, calls = tmp_path / "out.jsonl", []

    def flaky(i: int) -> dict:
        calls.append(i)
        if i == 2:
            raise ValueError(f"bad item {i}")
        return {"v": i}

    stats = run_jobs(range(4), flaky, out, key=str, retries=2, backoff=0.001, progress=False)
    assert (stats.ok, stats.failed) == (3, 1)
    assert calls.count(2) == 3  # one try + two retries
    failed = [r for r in _lines(out) if r["status"] == "failed"]
    assert failed == [{"key": "2", "status": "failed", "error": "ValueError: bad item 2", "attempts": 3}]

    stats = run_jobs(range(4), lambda i: {"v": i}, out, key=str, progress=False)
    assert (stats.skipped, stats.ok, stats.failed) == (3, 1, 0)
    records = _lines(out)
    assert sorted(r["key"] for r in records) == ["0", "1", "2", "3"]  # failed line compacted away
    assert all(r["status"] == "ok" for r in records)


async def test_async_fn_runs_with_bounded_concurrency(tmp_path: Path) -> None:
    active, peak = 0, 0

    async def fn(i: int) -> dict:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return {"v": i}

    stats = await arun_jobs(range(20), fn, tmp_path / "o.jsonl", key=str, concurrency=3,
                            progress=False)
    assert stats.ok == 20 and peak == 3


def test_bad_arguments_and_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="concurrency"):
        run_jobs([1], lambda i: {}, tmp_path / "o.jsonl", key=str, concurrency=0)
    with pytest.raises(InvalidRequestError, match="distinct key"):
        run_jobs([1, 1], lambda i: {}, tmp_path / "o.jsonl", key=str, progress=False)


def test_non_dict_result_is_a_failure_and_progress_bar_runs(tmp_path: Path) -> None:
    stats = run_jobs(range(2), lambda i: [i], tmp_path / "o.jsonl", key=str, retries=0,
                     progress=True)
    assert stats.failed == 2
    assert "returned list" in read_records(tmp_path / "o.jsonl")[0]["error"]
