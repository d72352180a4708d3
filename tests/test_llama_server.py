"""The llama.cpp server helper shipped in sc_chains.testing: a server that cannot start is a clear error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sc_chains.testing import llama_server

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs llama-cpp-python[server]"),
]


def test_a_server_that_dies_raises_with_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"this is not a GGUF file")
    with pytest.raises(RuntimeError, match="exited") as info:
        with llama_server(bad, log_path=tmp_path / "server.log", timeout=60):
            pass  # pragma: no cover
    assert (tmp_path / "server.log").exists() and len(str(info.value)) > len("llama.cpp server exited")
