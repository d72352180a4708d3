"""Every Python example in the README runs, as written.

Two substitutions keep it offline and fast: ``hf:default`` becomes ``hf:tiny-random`` (the
end-to-end tests cover SmolLM2), and the llama.cpp URL becomes the test server's.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
SERVER_URL = "http://127.0.0.1:8000/v1"


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 4


def _params() -> list:
    """One per block; a block that talks to the llama.cpp server is marked ``slow`` and ``server``
    at collection, so the fast tier deselects it instead of starting the server."""
    return [pytest.param(i, marks=[pytest.mark.slow, pytest.mark.server]) if SERVER_URL in b else i
            for i, b in enumerate(BLOCKS)]


@pytest.mark.parametrize("index", _params())
def test_readme_example_runs(index: int, request: pytest.FixtureRequest, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    # the examples' tempfile.mkdtemp() folders land in this test's tmp_path (removed by pytest),
    # not in /tmp for good
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = BLOCKS[index].replace('"hf:default"', '"hf:tiny-random"')
    if SERVER_URL in code:
        code = code.replace(SERVER_URL, request.getfixturevalue("llama_server"))
    exec(compile(code, f"README.md[python block {index}]", "exec"), {"__name__": "readme"})
