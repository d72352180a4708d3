"""Reliability of the command line (issue 12 items 4-11, 17; issue 17 items 3-4): bad input and
faults end in a typed error, one line on stderr, a non-zero exit, and nothing foreign touched.

Each test names the fault class it covers. Models: ``hf:tiny-random`` (built in code), the fakes
of ``sc_chains.testing``, and scripted HTTP servers on 127.0.0.1 (``conftest.scripted_server``).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.errors import InvalidRequestError, SCChainsError
from sc_chains.cli import main
from sc_chains.cli.options import parse_sets, validate_chain_options
from sc_chains.outdir import MARKER
from conftest import chat_body, reply

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Six problems: ``What is i + 1?`` -> ``i + 1``."""
    f = tmp_path / "data.jsonl"
    f.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(6)))
    return f


def _eval(data: Path, out: Path, *extra: str, model: str = "hf:tiny-random") -> list[str]:
    return ["eval", "--dataset", f"jsonl:{data}", "--model", model, "--out", str(out), "--no-plots",
            "--no-progress", *extra]


def _datagen(data: Path, out: Path, *extra: str, kind: str = "score", model: str = "hf:tiny-random") -> list[str]:
    return ["datagen", kind, "--dataset", f"jsonl:{data}", "--model", model, "--out", str(out),
            "--no-progress", "--max-tokens", "4", *extra]


def _one_error_line(err: str, *needles: str) -> str:
    """stderr is exactly one ``sc-chains: error:`` line (no traceback) holding every needle."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sc-chains: error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- item 4: a folder with files sc-chains did not write --------------------------------------------
@pytest.mark.parametrize("name", ["results.jsonl", "summary.json"])
def test_eval_refuses_an_out_folder_with_foreign_files(data: Path, tmp_path: Path, capsys, name: str) -> None:
    """Fault: --out holds a results file another tool wrote; it must not be compacted away."""
    out = tmp_path / "theirs"
    out.mkdir()
    foreign = b'{"key": "mine", "status": "failed"}\n{"not": "ours"}\n'
    (out / name).write_bytes(foreign)
    assert main(_eval(data, out, "--chains", "baseline")) == 2
    _one_error_line(capsys.readouterr().err, name, "did not write", "another --out")
    assert (out / name).read_bytes() == foreign and not (out / MARKER).exists()


@pytest.mark.parametrize("name", ["raw.jsonl", "train.jsonl"])
def test_datagen_refuses_an_out_folder_with_foreign_files(data: Path, tmp_path: Path, capsys, name: str) -> None:
    """Fault: datagen --out holds a raw/train file sc-chains did not write."""
    out = tmp_path / "theirs"
    out.mkdir()
    (out / name).write_text('{"key": "x", "status": "failed"}\n')
    assert main(_datagen(data, out, "--limit", "1")) == 2
    _one_error_line(capsys.readouterr().err, name, "did not write")
    assert (out / name).read_text() == '{"key": "x", "status": "failed"}\n'


# -- item 5: the run identity, written at the start; a different resume is refused -----------------
def test_eval_resume_with_another_set_is_refused_and_options_are_recorded(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: a resume with another --set value (old results would pass as the new config)."""
    out = tmp_path / "run"
    assert main(_eval(data, out, "--chains", "baseline", "--limit", "2", "--set", "baseline.max_tokens=4")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chain_options"] == {"baseline": {"max_tokens": 4}}
    assert json.loads((out / "run.json").read_text())["options"] == {"baseline": {"max_tokens": 4}}
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "eval" and marker["identity"]["model"] == "hf:tiny-random"
    capsys.readouterr()
    assert main(_eval(data, out, "--chains", "baseline", "--limit", "2", "--set", "baseline.max_tokens=64")) == 2
    _one_error_line(capsys.readouterr().err, "options.baseline", "4", "64")
    # the same settings resume (nothing re-run); another limit extends the same run
    assert main(_eval(data, out, "--chains", "baseline", "--limit", "3", "--set", "baseline.max_tokens=4", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["run"]["skipped"] == 2


def test_eval_identity_is_on_disk_before_the_model_loads(data: Path, tmp_path: Path, capsys) -> None:
    """Fault: a run that dies before any item (here: an unknown model path) still left its identity."""
    out = tmp_path / "run"
    assert main(_eval(data, out, "--chains", "baseline", "--seed", "3", model="hf:/no/such/model")) == 2
    identity = json.loads((out / MARKER).read_text())["identity"]
    assert identity["seed"] == 3 and identity["model"] == "hf:/no/such/model"
    assert identity["options"]["baseline"] == {}


def test_datagen_resume_with_another_seed_or_alpha_is_refused(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: a datagen resume with another seed/alpha (the manifest would describe it wrongly)."""
    out = tmp_path / "dg"  # --format kto: every second attempt is a row (tiny-random is never right)
    assert main(_datagen(data, out, "--limit", "2", "--seed", "1", "--format", "kto")) == 0
    identity = json.loads((out / MARKER).read_text())["identity"]
    assert identity["config"]["seed"] == 1 and identity["models"] == {"model": "hf:tiny-random"}
    capsys.readouterr()
    assert main(_datagen(data, out, "--limit", "2", "--seed", "2", "--alpha", "3", "--format", "kto")) == 2
    _one_error_line(capsys.readouterr().err, "differing: config")
    assert main(_datagen(data, out, "--limit", "2", "--seed", "1", "--format", "kto")) == 0


def test_an_eval_folder_is_not_a_datagen_folder(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: --out of one kind of run reused for the other."""
    out = tmp_path / "run"
    assert main(_eval(data, out, "--chains", "baseline", "--limit", "1", "--set", "baseline.max_tokens=2")) == 0
    capsys.readouterr()
    assert main(_datagen(data, out, "--limit", "1")) == 2
    _one_error_line(capsys.readouterr().err, "kind", "'eval'", "'datagen'")


# -- item 6: --set keys and values, checked before any model loads ---------------------------------
@pytest.mark.parametrize(
    ("setting", "needles"),
    [
        ("leco.bogus=1", ["--set leco.bogus", "valid keys", "max_rethinks"]),
        ("baseline.max_tokens=abc", ["--set baseline.max_tokens", "'abc'"]),
        ("baseline.max_tokns=4", ["--set baseline.max_tokns", "did you mean 'max_tokens'"]),
        ("leco.max_rethinks=-1", ["--set leco.max_rethinks", "-1"]),
        ("s2a.variant=diagonal", ["--set s2a.variant", "diagonal"]),
        ("critique.max_turns=2", ["--set critique.max_turns", "score mode"]),
        ("s2a+leco.leco={\"k\": 0}", ["--set s2a+leco.leco.k", "0"]),
    ],
)
def test_eval_set_is_validated_before_the_model_loads(data: Path, tmp_path: Path, capsys, setting: str,
                                                      needles: list[str]) -> None:
    """Bad input: an unknown --set key, a typo, a value of the wrong type or out of range."""
    chain = setting.split(".", 1)[0]
    # a model path that does not exist: had it been loaded, the error would be about the model
    code = main(_eval(data, tmp_path / "o", "--chains", chain, "--set", setting, model="hf:/no/such/model"))
    assert code == 2
    _one_error_line(capsys.readouterr().err, *needles)
    assert not (tmp_path / "o").exists()


def test_datagen_leco_steps_set_is_validated(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: datagen leco-steps --set with an unknown key (was passed on unchecked)."""
    assert main(_datagen(data, tmp_path / "o", "--set", "max_rethinkz=2", kind="leco-steps")) == 2
    _one_error_line(capsys.readouterr().err, "max_rethinkz", "did you mean 'max_rethinks'")


def test_a_folder_from_before_the_marker_is_resumed(data: Path, tmp_path: Path, capsys) -> None:
    """Compatibility: an eval folder written before the marker (run.json + results.jsonl) resumes."""
    out = tmp_path / "old"
    assert main(_eval(data, out, "--chains", "baseline", "--limit", "2", "--set", "baseline.max_tokens=2")) == 0
    (out / MARKER).unlink()
    identity = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({k: identity[k] for k in ("dataset", "model", "model_options", "seed")}))
    capsys.readouterr()
    assert main(_eval(data, out, "--chains", "baseline", "--limit", "2", "--set", "baseline.max_tokens=2",
                      "--json")) == 0
    assert json.loads(capsys.readouterr().out)["run"]["skipped"] == 2 and (out / MARKER).exists()


def test_set_validation_api() -> None:
    assert parse_sets(["leco.max_rethinks=1", "s2a.rewrite=opinion"], ["leco", "s2a"]) == {
        "leco": {"max_rethinks": 1}, "s2a": {"rewrite": "opinion"}}
    with pytest.raises(InvalidRequestError) as e:
        validate_chain_options("oracle", {"temperature": 9})
    assert e.value.param == "--set oracle.temperature" and e.value.value == 9


# -- item 7: bad model specs in datagen, up front -----------------------------------------------------
def test_datagen_rejects_a_bad_scheme_up_front(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: datagen --model hg:tiny-random (scheme typo)."""
    assert main(_datagen(data, tmp_path / "o", model="hg:tiny-random")) == 2
    _one_error_line(capsys.readouterr().err, "hg:tiny-random", "hf:default")
    assert not (tmp_path / "o").exists()


def test_datagen_rejects_a_weak_model_that_does_not_load(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: datagen w2s --weak-model hf:tiny-radnom (name typo): not '0 ok, 3 failed'."""
    out = tmp_path / "o"
    code = main(_datagen(data, out, "--limit", "2", "--weak-model", "hf:tiny-radnom", kind="w2s"))
    assert code == 2
    _one_error_line(capsys.readouterr().err, "tiny-radnom")
    assert not (out / "raw.jsonl").exists()


# -- item 8: a server without logprobs ---------------------------------------------------------------
def test_eval_against_a_server_without_logprobs(data: Path, tmp_path: Path, capsys, scripted_server) -> None:
    """Fault: a server that ignores logprobs. baseline runs; leco is refused before any problem runs."""
    srv = scripted_server([reply(200, chat_body("The answer is 4.", logprobs=False))])
    common = ["--limit", "2", "--base-url", srv.base_url, "--model-option", "max_retries=0"]
    out = tmp_path / "both"
    assert main(_eval(data, out, "--chains", "baseline,leco", *common, model="openai:m")) == 1
    _one_error_line(capsys.readouterr().err, "leco need token logprobs", "baseline")
    assert not (out / "results.jsonl").exists() or not (out / "results.jsonl").read_text()
    assert len(srv.requests) == 1  # one 1-token probe, no problem run
    out = tmp_path / "base"
    assert main(_eval(data, out, "--chains", "baseline", *common, "--json", model="openai:m")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chains"]["baseline"]["failed"] == 0 and summary["chains"]["baseline"]["n"] == 2


# -- item 9: nothing succeeded, or nothing to do ------------------------------------------------------
def test_eval_where_every_item_failed_exits_1_with_the_first_reason(data: Path, tmp_path: Path, capsys,
                                                                    scripted_server) -> None:
    """Fault: every item fails (the server rejects every request): exit 1, the reason on stderr."""
    srv = scripted_server([reply(400, {"error": {"message": "model m is not served here"}})])
    code = main(_eval(data, tmp_path / "o", "--chains", "baseline", "--limit", "3", "--retries", "0",
                      "--base-url", srv.base_url, model="openai:m"))
    assert code == 1
    _one_error_line(capsys.readouterr().err, "all 3 items failed", "not served here")


def test_datagen_where_every_item_failed_exits_1(data: Path, tmp_path: Path, capsys, scripted_server) -> None:
    """Fault: every datagen item fails: exit 1 with the first failure's reason (the datagen
    "no training rows" line, which names it)."""
    srv = scripted_server([reply(400, {"error": {"message": "no such model"}})])
    code = main(_datagen(data, tmp_path / "o", "--limit", "2", "--retries", "0", "--base-url", srv.base_url,
                         model="openai:m"))
    assert code == 1
    _one_error_line(capsys.readouterr().err, "all 2 items failed", "no such model")


def test_an_empty_dataset_is_an_error(tmp_path: Path, capsys) -> None:
    """Bad input: an empty data file (n=0) for eval and datagen."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(_eval(empty, tmp_path / "e", "--chains", "baseline")) == 1
    _one_error_line(capsys.readouterr().err, "no problems (n=0")
    assert main(_datagen(empty, tmp_path / "d")) == 1
    _one_error_line(capsys.readouterr().err, "no problems (n=0")


# -- item 10: numeric arguments, before the model loads -----------------------------------------------
@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["datagen", "score", "--samples", "0"], "--samples"),
        (["datagen", "score", "--max-tokens", "0"], "--max-tokens"),
        (["datagen", "self-reward", "--judge-k", "0"], "--judge-k"),
        (["datagen", "score", "--concurrency", "0"], "--concurrency"),
        (["datagen", "score", "--limit", "0"], "--limit"),
        (["datagen", "score", "--retries", "-1"], "--retries"),
        (["eval", "--limit", "0"], "--limit"),
        (["eval", "--concurrency", "0"], "--concurrency"),
        (["eval", "--seed", "-1"], "--seed"),
        (["run", "leco", "q", "--max-tokens", "0"], "--max-tokens"),
        (["run", "leco", "q", "--max-rethinks", "-1"], "--max-rethinks"),
        (["demo", "--max-tokens", "0"], "--max-tokens"),
        (["generate", "hi", "--seed", str(2**70)], "--seed"),
        (["datagen", "score", "--seed", str(2**64)], "--seed"),
    ],
)
def test_numeric_arguments_are_checked_first(data: Path, tmp_path: Path, capsys, argv: list[str], flag: str) -> None:
    """Bad input: a number out of range (--samples 0 was treated as 1)."""
    extra: list[str] = []
    if argv[0] == "datagen":
        extra = ["--dataset", f"jsonl:{data}", "--out", str(tmp_path / "o")]
    elif argv[0] == "eval":
        extra = ["--dataset", f"jsonl:{data}", "--out", str(tmp_path / "o")]
    assert main([*argv, *extra, "--model", "hf:/no/such/model"]) == 2
    _one_error_line(capsys.readouterr().err, flag)
    assert not (tmp_path / "o").exists()


# -- item 11: the output folder, a full disk, bytes that are not UTF-8 ---------------------------------
def test_out_that_is_a_file(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: --out names an existing file."""
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    assert main(_eval(data, f, "--chains", "baseline")) == 2
    _one_error_line(capsys.readouterr().err, "is a file")
    assert main(_datagen(data, f)) == 2
    _one_error_line(capsys.readouterr().err, "is a file")
    assert f.read_text() == "keep me"


def test_out_that_cannot_be_created(data: Path, tmp_path: Path, capsys) -> None:
    """Bad input: --out below a file (mkdir fails)."""
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(_eval(data, f / "sub", "--chains", "baseline")) == 2
    _one_error_line(capsys.readouterr().err, "cannot be created")


def test_out_that_is_read_only(data: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """Fault: a read-only --out folder (as root, which writes anyway, the permission check is
    mocked: the one failure that cannot be caused for real there)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        import sc_chains.outdir

        monkeypatch.setattr(sc_chains.outdir.os, "access", lambda *_a, **_k: False)
    try:
        assert main(_datagen(data, ro)) == 2
        _one_error_line(capsys.readouterr().err, "not writable")
    finally:
        ro.chmod(0o755)


def test_a_full_disk_mid_write_is_one_line_and_the_rerun_repairs(data: Path, tmp_path: Path, capsys,
                                                                monkeypatch) -> None:
    """Fault: ENOSPC in the middle of a record (mocked: a disk cannot be filled safely here); half
    a line is left; the rerun repairs it and finishes with every record exactly once."""
    import sc_chains.runner as runner

    out = tmp_path / "o"
    real_write, writes = os.write, []

    def full_disk(fd: int, data_: bytes) -> int:
        writes.append(len(data_))
        if len(writes) == 3:  # the third record: half of it lands, then the disk is full
            real_write(fd, bytes(data_[: len(data_) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data_)

    monkeypatch.setattr(runner.os, "write", full_disk)
    args = _eval(data, out, "--chains", "baseline", "--concurrency", "1", "--set", "baseline.max_tokens=2")
    assert main(args) == 1
    _one_error_line(capsys.readouterr().err, "No space left on device", "rerun")
    raw = (out / "results.jsonl").read_bytes()
    assert raw.count(b"\n") == 2 and not raw.endswith(b"\n")  # two records and half a line
    monkeypatch.setattr(runner.os, "write", real_write)
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["run"]["skipped"] == 2 and summary["run"]["ok"] == 4
    keys = [json.loads(line)["key"] for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(keys) == 6 == len(set(keys))


def test_command_line_bytes_that_are_not_utf8(capsys) -> None:
    """Bad input: a non-UTF-8 argument (Python keeps its bytes as lone surrogates)."""
    assert main(["generate", "caf\udce9", "--model", "hf:tiny-random"]) == 2
    _one_error_line(capsys.readouterr().err, "not UTF-8")
    proc = subprocess.run([sys.executable, "-m", "sc_chains", "generate", b"caf\xe9", "--model", "hf:tiny-random"],
                          capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 2
    _one_error_line(proc.stderr.decode(errors="replace"), "not UTF-8")


def test_every_sc_chains_error_is_one_line(monkeypatch, capsys) -> None:
    """Fault: any SCChainsError subclass raised inside a command (a message with newlines too):
    one line, exit 2 for a usage error, 1 for a failed run."""
    import argparse

    import sc_chains.cli as cli

    class Usage(SCChainsError, ValueError):
        pass

    class Runtime(SCChainsError, RuntimeError):
        pass

    for exc, code in ((Usage("bad\nvalue"), 2), (Runtime("went\naway"), 1), (OSError(errno.EIO, "I/O error"), 1)):
        def boom(_args: argparse.Namespace, exc: BaseException = exc) -> int:
            raise exc

        parser = argparse.ArgumentParser()
        parser.set_defaults(func=boom)
        monkeypatch.setattr(cli, "build_parser", lambda parser=parser: parser)
        assert main([]) == code
        _one_error_line(capsys.readouterr().err, str(exc).split()[0])


# -- issue 17: run --set, top logprobs in the terminal, progress off-terminal ------------------------
def test_run_set_works_like_eval_set(capsys) -> None:
    """`sc-chains run leco "q" --set max_rethinks=1` applies; a bad key fails like eval --set."""
    assert main(["run", "leco", "What is 2 + 3?", "--model", "hf:tiny-random", "--max-tokens", "8",
                 "--set", "max_rethinks=1", "--set", "k=3", "--json"]) == 0
    config = json.loads(capsys.readouterr().out)["config"]
    assert config["max_rethinks"] == 1 and config["k"] == 3
    assert main(["run", "leco", "q", "--model", "hf:/no/such/model", "--set", "max_rethinkz=1"]) == 2
    _one_error_line(capsys.readouterr().err, "max_rethinkz", "did you mean 'max_rethinks'")
    assert main(["run", "critique", "q", "--model", "hf:/no/such/model", "--set", "max_turns=-2"]) == 2
    _one_error_line(capsys.readouterr().err, "max_turns", "-2")


def test_generate_shows_top_logprobs_in_the_terminal(capsys) -> None:
    """`generate --top-logprobs 2` prints each token's alternatives, not only with --json."""
    assert main(["generate", "hi", "--model", "hf:tiny-random", "--max-tokens", "3", "--top-logprobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "alternatives per token" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 3 and all(line.count("0.") >= 3 for line in rows), out


def test_progress_lines_when_stderr_is_not_a_terminal(data: Path, tmp_path: Path, capsys) -> None:
    """A long run into a log file shows how far it got (plain lines, not a live bar)."""
    args = ["eval", "--dataset", f"jsonl:{data}", "--model", "hf:tiny-random", "--out", str(tmp_path / "o"),
            "--no-plots", "--chains", "baseline", "--set", "baseline.max_tokens=2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "6 to run" in err and "6/6 (ok 6, failed 0)" in err


# -- item 17: Ctrl-C on a local model -----------------------------------------------------------------
def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


_LIBRARY = "import sys; from sc_chains.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.slow  # ~50 s each on a busy 2-core machine: two interpreters importing torch
@pytest.mark.parametrize(("command", "entry"), [("eval", "cli"), ("eval", "library"), ("datagen", "cli")])
def test_ctrl_c_stops_cleanly_with_exit_130_and_resumes(tmp_path: Path, command: str, entry: str) -> None:
    """Fault: SIGINT in the middle of a run on a local model (hf:tiny-random, a real subprocess):
    exit 130, no abort ("terminate called without an active exception": a batcher thread inside
    torch at interpreter teardown; it aborted 3 of 3 runs before the fix), a resume hint, every
    record whole, and the rerun finishes the rest without repeating any. ``cli``: the console
    entry (exits at once); ``library``: ``main(argv)`` returning 130 and the interpreter exiting
    normally (the batcher finishes its running batch and is joined)."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(40)))
    out = tmp_path / "o"
    if command == "eval":
        argv = _eval(data, out, "--chains", "baseline", "--concurrency", "2", "--set", "baseline.max_tokens=24")
        records = out / "results.jsonl"
    else:
        argv = _datagen(data, out, "--concurrency", "2", "--format", "kto", "--max-tokens", "16")  # last one wins
        records = out / "raw.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    start = [sys.executable, "-m", "sc_chains"] if entry == "cli" else [sys.executable, "-c", _LIBRARY]
    proc = subprocess.Popen([*start, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _lines(records) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no record in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err_b = proc.communicate(timeout=180)
    err = err_b.decode(errors="replace")
    assert proc.returncode == 130, err[-3000:]
    assert "terminate called" not in err and "Traceback" not in err, err[-3000:]
    assert "Rerun the same command to resume" in err and "--out" in err
    first = records.read_bytes()
    done = first.count(b"\n")
    assert 2 <= done < 40 and first.endswith(b"\n")
    rerun = subprocess.run([*start, *argv, "--limit", str(done + 1)], cwd=ROOT, env=env, capture_output=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()[-3000:]
    keys = [json.loads(line)["key"] for line in records.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == done + 1


# -- issue 17 item 3: demo.sh sets up once -----------------------------------------------------------
def test_demo_sh_runs_setup_only_when_the_project_changed(tmp_path: Path) -> None:
    """`scripts/demo.sh` re-runs pip (scripts/setup.sh) only on the first call and after
    pyproject.toml changed (a stamp keyed on its hash in .venv), not on every call."""
    import shutil

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "demo.sh", repo / "scripts" / "demo.sh")
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (repo / "scripts" / "setup.sh").write_text(  # stands in for pip: counts its runs, makes the entry point
        'echo ran >> setup.log\nmkdir -p .venv/bin\n'
        'printf "#!/bin/sh\\necho demo \\"\\$@\\"\\n" > .venv/bin/sc-chains\nchmod +x .venv/bin/sc-chains\n')

    def demo() -> str:
        proc = subprocess.run(["bash", "scripts/demo.sh", "--only", "leco"], cwd=repo, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert demo() == "demo demo --only leco\n"
    demo()
    assert (repo / "setup.log").read_text().count("ran") == 1
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    demo()
    demo()
    assert (repo / "setup.log").read_text().count("ran") == 2


# -- item 13 (runner part): the wait between retries of an item is capped ---------------------------
def test_runner_retry_waits_are_capped(tmp_path: Path, monkeypatch) -> None:
    """Bound: `--retries 12` doubled the wait without a cap (0.5 s ... ~1,000 s); now at most
    MAX_BACKOFF_S whatever backoff and retries are (asyncio.sleep is recorded, not waited)."""
    import asyncio

    import sc_chains.runner as runner

    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(runner.asyncio, "sleep", no_wait)

    def always_fails(_item: int) -> dict:
        raise ConnectionError("down")

    stats = asyncio.run(runner.arun_jobs([1], always_fails, tmp_path / "r.jsonl", key=str, retries=12,
                                         backoff=0.5, progress=False))
    assert stats.failed == 1 and len(waits) == 12
    assert waits[:3] == [0.5, 1.0, 2.0] and max(waits) == runner.MAX_BACKOFF_S


# -- item 14 (CLI part): generate and run take --timeout ---------------------------------------------
@pytest.mark.parametrize("command", [["generate", "hi"], ["run", "s2a", "What is 2 + 2?"]])
def test_timeout_bounds_a_call_to_a_hanging_server(scripted_server, capsys, command: list[str]) -> None:
    """Bound: against a server that takes 30 s to answer, `--timeout 1` fails in a few seconds
    (it took 256 s), one line, exit 1; --timeout on a local spec is a usage error."""
    srv = scripted_server([reply(200, chat_body("late"), delay=30)])
    start = time.monotonic()
    code = main([*command, "--model", "openai:m", "--base-url", srv.base_url, "--timeout", "1"])
    assert code == 1 and time.monotonic() - start < 25
    assert capsys.readouterr().err.startswith("sc-chains: error:")
    assert main([*command, "--model", "hf:tiny-random", "--timeout", "1"]) == 2
    _one_error_line(capsys.readouterr().err, "--timeout", "openai:")
