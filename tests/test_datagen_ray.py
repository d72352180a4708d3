"""``--backend ray``: the same per-item function on a local Ray cluster gives the same records."""

from __future__ import annotations

import json
import sys

import pytest

from adapters.errors import SCChainsError
from sc_chains.datagen import ScoreConfig, ScoreGenerator, run_datagen
from sc_chains.datagen.ray_backend import RayUnavailableError, ray_job
from sc_chains.datasets import Problem
from sc_chains.testing import FakeLogprobModel

PROBLEMS = [Problem(f"q{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(3)]


def _records(path):
    """Records by key, without ``cached_tokens`` (KV reuse depends on what a process saw before)."""
    out = {}
    for r in map(json.loads, path.read_text().splitlines()):
        r["usage"].pop("cached_tokens")
        out[r["key"]] = r
    return out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_backend_matches_local(tmp_path, ray_tmpdir):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'ray>=2.9'")
    from pathlib import Path

    before = set(Path("/tmp/ray").glob("session_*"))
    gen = ScoreGenerator("hf:tiny-random", ScoreConfig(max_tokens=10))
    local = run_datagen(gen, PROBLEMS, tmp_path / "local", dataset="unit", progress=False, concurrency=2)
    ray = run_datagen(gen, PROBLEMS, tmp_path / "ray", dataset="unit", progress=False, concurrency=2, backend="ray")
    assert ray["run"]["backend"] == "ray" and ray["counts"] == local["counts"]
    assert _records(tmp_path / "ray" / "raw.jsonl") == _records(tmp_path / "local" / "raw.jsonl")
    assert ray["tokens"]["completion_tokens"] == local["tokens"]["completion_tokens"] > 0
    assert list(Path(ray_tmpdir).glob("**/session_*")), "Ray kept its session files elsewhere"
    assert set(Path("/tmp/ray").glob("session_*")) == before


def test_ray_job_refuses_an_unpicklable_generator():
    pytest.importorskip("ray", reason="Ray is not installed")
    with pytest.raises(SCChainsError, match="cannot be pickled.*spec strings"):
        ray_job(ScoreGenerator(FakeLogprobModel()))  # the fake holds a threading.Lock


def test_missing_ray_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray is installed here; make its import fail
    with pytest.raises(RayUnavailableError, match=r"pip install 'ray>=2.9'"):
        run_datagen(ScoreGenerator(FakeLogprobModel()), PROBLEMS, tmp_path, dataset="unit", backend="ray",
                    progress=False)
