"""Shared fixtures: a real llama.cpp server (session-wide) and a scripted HTTP server.

The llama.cpp server runs ``python -m llama_cpp.server`` on the embedded SmolLM2 GGUF on a free
127.0.0.1 port. Without ``llama-cpp-python[server]`` its tests skip (or fail when ``CI`` is set).
The scripted server answers a fixed sequence of HTTP responses (rate limits, 5xx, dropped
connections, malformed JSON): real HTTP for failures a real server will not produce on demand.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.errors import EmbeddedModelMissingError
from sc_chains.testing import llama_server as start_llama_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Hypothesis keeps its example database and caches in ./.hypothesis by default, which would be the
# repository: no test writes into the repo tree, so they live in the system's temp folder (one per
# user, kept between runs; pytest-xdist workers share it safely).
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), f"sc-chains-hypothesis-{os.getuid()}"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a llama.cpp server running SmolLM2."""
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    try:
        with start_llama_server(log_path=log_path) as base_url:
            yield base_url
    except (ModuleNotFoundError, EmbeddedModelMissingError) as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def smollm2() -> Any:
    """The embedded SmolLM2 (``hf:default``), loaded once for every slow test that asks for it."""
    from adapters.specs import resolve_model

    return resolve_model("hf:default")


@pytest.fixture(scope="module")
def tiny() -> Any:
    """The tiny random HF model (``hf:tiny-random``), built once per test module."""
    pytest.importorskip("torch")
    from adapters.hf.tiny import tiny_random_model

    return tiny_random_model()


@pytest.fixture
def ray_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A short temporary folder for a local Ray cluster's session files (``RAY_TMPDIR``), removed
    afterwards, so no ``/tmp/ray/session_*`` is left behind (short: Ray's socket paths must fit
    in 107 bytes)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="ray")
    monkeypatch.setenv("RAY_TMPDIR", path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- a scripted HTTP server ---------------------------------------------------------------------

DROP = "drop"
"""A script step that closes the connection without answering."""


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None, delay: float = 0.0) -> dict:
    """One scripted answer: ``body`` (dict -> JSON, str -> raw text), extra headers, a delay."""
    return {"status": status, "body": body if body is not None else {}, "headers": headers or {}, "delay": delay}


def chat_body(text: str = "Hi there", logprob: float = -0.1, logprobs: bool = True) -> dict:
    """A minimal OpenAI chat completion whose tokens are the words of ``text``."""
    words = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
    content = [{"token": w, "logprob": logprob, "bytes": None, "top_logprobs": [{"token": w, "logprob": logprob}]} for w in words]
    return {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": {"content": content} if logprobs else None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": len(words), "prompt_tokens_details": {"cached_tokens": 2}},
    }


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client that hung up on purpose is fine


class ScriptedServer:
    """Answers requests with ``script`` in order (the last step repeats); records every request."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                step = server._record(self, raw)
                if step == DROP:
                    self.close_connection = True
                    return
                time.sleep(step["delay"])
                body = step["body"]
                data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                self.send_response(step["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in step["headers"].items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _record(self, handler: BaseHTTPRequestHandler, raw: bytes) -> Any:
        with self._lock:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            self.requests.append(
                {"time": time.monotonic(), "path": handler.path, "client_port": handler.client_address[1], "headers": dict(handler.headers), "json": body}
            )
            i = min(len(self.requests), len(self.script)) - 1
            return self.script[i]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted_server() -> Iterator[Any]:
    """Factory: ``scripted_server([reply(429, headers={"Retry-After": "0.2"}), reply(200, chat_body())])``."""
    servers: list[ScriptedServer] = []

    def make(script: list[Any]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()
