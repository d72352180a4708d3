"""kill -9 a real datagen process mid-run, rerun it: no record lost, duplicated or half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = r'''
import sys, time
from graphs.critique.prompts import SCORE_INSTRUCTION
from sc_chains.datagen import ScoreGenerator, run_datagen
from sc_chains.datasets import load_dataset
from sc_chains.testing import FakeLogprobModel

data, out, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])

def reply(req):
    time.sleep(delay)
    q = req.messages[0]["content"]
    n = int(q.split()[2].rstrip("?"))
    if req.messages[-1]["content"] == SCORE_INSTRUCTION:
        return f"Second look: {n} + 1.\nThe answer is {n + 1}."
    return f"First look.\nThe answer is {n + (n % 2)}."

problems = load_dataset("jsonl:" + data)
m = run_datagen(ScoreGenerator(FakeLogprobModel(default=reply)), problems, out,
                dataset={"name": "jsonl"}, concurrency=4, progress=False)
print(m["counts"]["ok"], m["run"]["skipped"])
'''

N = 40


def _start(tmp: Path, out: Path, delay: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, str(tmp / "job.py"), str(tmp / "data.jsonl"), str(out), str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _kill_after(proc: subprocess.Popen[bytes], raw: Path, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _lines(raw) < at_least:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the job wrote nothing in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _records(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "a half line was left at the end"
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


@pytest.mark.slow  # a subprocess run of several seconds (over 15 s on a busy machine)
def test_kill_and_resume(tmp_path):
    (tmp_path / "job.py").write_text(SCRIPT)
    with open(tmp_path / "data.jsonl", "w") as f:
        f.writelines(json.dumps({"question": f"What is {i}?", "answer": str(i + 1)}) + "\n" for i in range(N))
    out = tmp_path / "out"
    raw = out / "raw.jsonl"

    proc = _start(tmp_path, out, 0.08)
    _kill_after(proc, raw, 6)
    first = _lines(raw)
    assert 6 <= first < N
    with open(raw, "ab") as f:  # as if the kill had landed inside a write
        f.write(b'{"key": "data-39#0", "status": "ok", "kin')

    proc = _start(tmp_path, out, 0.08)
    _kill_after(proc, raw, first + 6)
    assert _lines(raw) < N

    proc = _start(tmp_path, out, 0.0)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    ok, skipped = map(int, stdout.split())
    assert ok == N and skipped >= first + 6

    records = _records(raw)
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == N  # none lost, none duplicated
    assert all(r["status"] == "ok" for r in records)

    # the resumed output equals an uninterrupted run's, record for record
    ref = tmp_path / "ref"
    proc = _start(tmp_path, ref, 0.0)
    proc.communicate(timeout=120)
    by_key = {r["key"]: r for r in _records(ref / "raw.jsonl")}
    assert {r["key"]: r for r in records} == by_key
    assert (out / "train.jsonl").read_text() == (ref / "train.jsonl").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["ok"] == N and manifest["counts"]["examples"] == N  # every r2 is 1
