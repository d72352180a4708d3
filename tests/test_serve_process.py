"""``sc-chains serve`` as a process: the CLI on hf:tiny-random with an API key, Ctrl-C and SIGTERM
draining in-flight requests, start-up errors as one line before any model loads."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
START_S = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **extra}
    return env


def _wait_healthy(proc: subprocess.Popen, port: int) -> dict[str, Any]:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start")


@pytest.mark.slow  # a subprocess run of several seconds (over 15 s on a busy machine)
def test_cli_serves_tiny_random_with_a_key_and_exits_cleanly_on_ctrl_c() -> None:
    pytest.importorskip("torch")
    port = _free_port()
    secret = "s3cret-key-for-the-test"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sc_chains", "serve", "--model", "hf:tiny-random", "--port", str(port),
         "--api-key-env", "SERVE_TEST_KEY", "--log-level", "info"],
        env=_env(SERVE_TEST_KEY=secret), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        health = _wait_healthy(proc, port)
        assert health["upstream"] == "hf:tiny-random" and "leco" in health["chains"]
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "leco", "messages": [{"role": "user", "content": "2+3?"}], "max_tokens": 8}
        assert httpx.post(url, json=body, timeout=60).status_code == 401
        r = httpx.post(url, json=body, timeout=120, headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["usage"]["completion_tokens"] >= 1 and data["sc_chains"]["cost"]["calls"] >= 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert secret not in out + err  # the key is never logged


SLOW_SERVER = textwrap.dedent("""
    import sys, time
    from sc_chains.server import ServerConfig, serve
    from sc_chains.testing import FakeLogprobModel

    def slow(request):
        time.sleep(float(sys.argv[2]))
        return "Step 1: 2 + 3 = 5\\nThe answer is 5."

    serve(FakeLogprobModel(default=slow), ServerConfig(port=int(sys.argv[1]), log_level="warning",
                                                      graceful_timeout_s=float(sys.argv[3])))
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_in_flight_requests_then_the_server_exits(tmp_path: Path, sig: int) -> None:
    script = tmp_path / "slow_server.py"
    script.write_text(SLOW_SERVER)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port), "1.5", "60"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result: dict[str, Any] = {}

    def client() -> None:
        body = {"model": "baseline", "messages": [{"role": "user", "content": "2+3?"}]}
        result["r"] = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60)

    try:
        _wait_healthy(proc, port)
        thread = threading.Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/health").json()["in_flight"] == 0:
            assert time.monotonic() < deadline, "the request never reached the server"
            time.sleep(0.02)
        proc.send_signal(sig)
        thread.join(timeout=60)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result["r"].status_code == 200  # finished, not cut off
    assert result["r"].json()["choices"][0]["message"]["content"].endswith("The answer is 5.")
    assert proc.returncode == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_cli_errors_are_one_line_before_any_model_loads(capsys: pytest.CaptureFixture[str]) -> None:
    # a real process once: its exit status and its whole stderr (no traceback, no warning)
    proc = subprocess.run([sys.executable, "-m", "sc_chains", "serve", "--model", "hf:does-not-exist/nowhere",
                           "--api-key-env", "SERVE_TEST_UNSET_VAR"], env=_env(), capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "SERVE_TEST_UNSET_VAR" in lines[0] and "Traceback" not in proc.stderr
    # the other checks through the same entry point, in this process
    from sc_chains.cli import main

    for args, named in [(["--port", "99999"], "port"), (["--request-timeout", "0"], "request_timeout_s")]:
        assert main(["serve", "--model", "hf:does-not-exist/nowhere", *args]) == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and named in lines[0] and "Traceback" not in err
