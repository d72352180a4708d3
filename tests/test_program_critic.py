"""The sandbox (real subprocesses, real limits) and the program-execution critic."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from graphs.critique import create_critique_graph
from graphs.critique.critics import Critic
from graphs.critique.program import (
    PROGRAM_INSTRUCTION,
    ProgramCritic,
    compare_program,
    draft_answer,
    make_program_verifier,
    printed_answer,
    program_verifier,
)
from graphs.sandbox import ProgramResult, SandboxLimits, extract_program, run_program

ROOMY = SandboxLimits(timeout_s=60, cpu_s=20)  # generous: the machine may be busy


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


# -- the sandbox -------------------------------------------------------------------------------
def test_clean_run_reports_stdout_and_status() -> None:
    r = run_program("print(6 * 7)\n", ROOMY)
    assert r.ok and r.stdout == "42\n" and r.exit_status == 0
    assert not r.timed_out and r.killed_by_limit is None


def test_error_exit_status_and_stderr() -> None:
    r = run_program("raise SystemExit(3)", ROOMY)
    assert r.exit_status == 3 and not r.ok
    r = run_program("1 / 0", ROOMY)
    assert r.exit_status == 1 and "ZeroDivisionError" in r.stderr


def test_wall_clock_timeout_kills_the_group() -> None:
    r = run_program("import time\nwhile True:\n    time.sleep(1)", SandboxLimits(timeout_s=1.0))
    assert r.timed_out and r.exit_status == -9 and not r.ok
    assert r.duration_s < 30


def test_cpu_limit_stops_a_busy_loop() -> None:
    r = run_program("while True:\n    pass", SandboxLimits(cpu_s=1, timeout_s=60))
    assert r.killed_by_limit == "cpu" and not r.timed_out and not r.ok


def test_memory_bomb_hits_the_address_space_limit() -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))"
    r = run_program(code, SandboxLimits(memory_mb=256, timeout_s=60, cpu_s=20))
    assert r.killed_by_limit == "memory" and "MemoryError" in r.stderr and not r.ok


def test_huge_output_is_capped_and_the_program_killed() -> None:
    r = run_program("while True:\n    print('x' * 1000)", SandboxLimits(output_bytes=5000, timeout_s=60))
    assert r.killed_by_limit == "output" and len(r.stdout) == 5000 and not r.ok
    assert not r.timed_out


def test_file_size_limit() -> None:
    r = run_program("open('big', 'w').write('x' * 10**6)", SandboxLimits(file_bytes=1000, timeout_s=60))
    assert r.killed_by_limit == "file_size" and not r.ok


def test_fork_bomb_is_bounded() -> None:
    code = (
        "import os, time\nn = 0\nfor _ in range(200):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
        "    n += 1\nprint(n)"
    )
    r = run_program(code, SandboxLimits(max_processes=8, timeout_s=60))
    if "processes" not in r.isolation:
        pytest.skip("no process-count limit on this platform (root without a writable pids cgroup)")
    assert r.exit_status == 0, r.stderr
    assert int(r.stdout.strip()) <= 8
    assert r.duration_s < 30  # the sleeping children did not keep the run alive


def test_environment_secrets_are_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SC_CHAINS_TEST_SECRET", "hunter2-do-not-leak")
    code = "import os\nprint(sorted(os.environ))\nprint(os.environ.get('SC_CHAINS_TEST_SECRET'))"
    r = run_program(code, ROOMY)
    assert r.ok and "hunter2" not in r.stdout and r.stdout.splitlines()[-1] == "None"
    assert "SC_CHAINS_TEST_SECRET" not in r.stdout


def test_files_land_in_a_temporary_folder_that_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = "import os\nopen('notes.txt', 'w').write('hi')\nprint(os.getcwd())\nprint(os.listdir('.'))"
    r = run_program(code, ROOMY)
    assert r.ok, r.stderr
    workdir, listing = r.stdout.splitlines()
    assert "notes.txt" in listing and Path(workdir) != tmp_path
    assert not Path(workdir).exists()  # deleted afterwards
    assert not (tmp_path / "notes.txt").exists()


def test_network_is_off_where_enforceable() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=5)\nprint('connected')"
        r = run_program(code, ROOMY)
    finally:
        server.close()
    if "network" not in r.isolation:
        pytest.skip("no network namespace here (unshare unavailable)")
    assert "connected" not in r.stdout and r.exit_status != 0
    assert "OSError" in r.stderr or "Error" in r.stderr


def test_bad_limits_and_code_raise_typed_errors() -> None:
    with pytest.raises(InvalidRequestError, match="timeout_s"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(InvalidRequestError, match="memory_mb"):
        SandboxLimits(memory_mb=10**6)
    with pytest.raises(InvalidRequestError, match="python"):
        SandboxLimits(python="python3")
    with pytest.raises(InvalidRequestError, match="code"):
        run_program("   ")


# -- pure pieces -------------------------------------------------------------------------------
def test_extract_program_tags_untagged_and_last_expression() -> None:
    assert extract_program("no code here") is None
    assert extract_program(f"Step 1\n{fence('print(2 + 2)')}\nThe answer is 4.") == "print(2 + 2)\n"
    assert extract_program("```\nx = 3\nx * 2\n```") == "x = 3\nprint(x * 2)\n"  # untagged, parses
    assert extract_program("```\nThe answer is 4\n```") is None  # untagged prose is not code
    two = fence("def f(a):\n    return a * 3") + "\nthen\n" + fence("print(f(5))")
    assert extract_program(two) == "def f(a):\n    return a * 3\nprint(f(5))\n"


def test_answers_of_the_draft_and_the_output() -> None:
    draft = fence("total = 17 + 25\nprint(total)") + "\nSo she has 42 left. The answer is 42."
    assert draft_answer(draft) == "42"
    assert draft_answer(fence("x = 99")) is None  # a number inside code is not the answer
    assert printed_answer("working...\n\n  42.0 \n") == "42"
    assert printed_answer("") is None


def _res(stdout: str = "", status: int = 0, timed_out: bool = False) -> ProgramResult:
    return ProgramResult(stdout, "", status, timed_out, None, 0.1)


def test_compare_program_policy_on_literals() -> None:
    d = "3 + 4 = 7. The answer is 7."
    assert compare_program(d, "print(7)", _res("7\n")).verdict == "agree"
    c = compare_program(d, "print(8)", _res("8\n"))
    assert c.verdict == "disagree" and c.revise and (c.draft_answer, c.program_answer) == ("7", "8")
    assert compare_program(d, None, None).verdict == "no_program"
    assert compare_program(d, "x", _res("", status=1)).verdict == "failed"
    assert compare_program(d, "x", _res("8\n", timed_out=True)).verdict == "failed"
    assert compare_program(d, "x", _res("\n")).verdict == "no_output"
    assert compare_program("I am not sure.", "print(7)", _res("7\n")).verdict == "disagree"
    assert not any(compare_program(d, p, r).revise for p, r in [(None, None), ("x", _res("", 1))])


# -- the critic --------------------------------------------------------------------------------
Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def test_critic_runs_the_drafts_own_program_without_a_call() -> None:
    fake = FakeLogprobModel([])
    critic = ProgramCritic(fake, limits=ROOMY)
    assert isinstance(critic, Critic)
    good = f"{fence('print(3 + 4)')}\nThe answer is 7."
    assert critic.ask(Q, good, None) is None
    c = critic.critique(Q, good)
    assert c.approved is True and c.check.verdict == "agree" and not fake.calls
    bad = f"{fence('print(3 + 4)')}\nThe answer is 8."
    c = critic.read(Q, bad, None, None)
    assert c.approved is False and c.check.verdict == "disagree"
    assert "printed 7" in c.text and "your final answer is 8" in c.text


def test_critic_asks_for_a_program_when_the_draft_has_none() -> None:
    fake = FakeLogprobModel([fence("apples = 3 + 4\nprint(apples)")])
    critic = ProgramCritic(fake, limits=ROOMY, max_tokens=200)
    draft = "3 + 4 = 8. The answer is 8."
    call = critic.ask(Q, draft, None)
    assert call.target == "critic" and call.max_tokens == 200 and call.temperature == 0.0
    assert call.messages[-1]["content"] == f"{Q}\n\n{PROGRAM_INSTRUCTION}"  # a side call
    c = critic.critique(Q, draft)
    assert len(fake.calls) == 1 and fake.calls[0].messages[-1]["content"] == call.messages[-1]["content"]
    assert c.approved is False and c.check.program_answer == "7"
    assert "apples = 3 + 4" in c.text  # the model's program is shown to the reviser


def test_critic_without_signal_keeps_the_draft() -> None:
    fake = FakeLogprobModel(["I cannot write code for this."])
    c = ProgramCritic(fake, limits=ROOMY).critique(Q, "The answer is 8.")
    assert c.approved is True and c.check.verdict == "no_program" and "No external check" in c.text
    c = ProgramCritic(limits=ROOMY).read(Q, f"{fence('1/0')}\nThe answer is 8.", None, None)
    assert c.approved is True and c.check.verdict == "failed" and "ZeroDivisionError" in c.text
    assert ProgramCritic(ask_model=False, limits=ROOMY).ask(Q, "The answer is 8.", None) is None


def test_source_model_always_asks_and_validation() -> None:
    critic = ProgramCritic(source="model", limits=ROOMY)
    assert critic.ask(Q, f"{fence('print(7)')}\nThe answer is 7.", None) is not None
    with pytest.raises(InvalidRequestError, match="source"):
        ProgramCritic(source="both")
    with pytest.raises(InvalidRequestError, match="ask_model"):
        ProgramCritic(source="model", ask_model=False)
    with pytest.raises(InvalidRequestError, match="model"):
        critic.critique(Q, "The answer is 7.")  # a call is needed and there is no model


def test_critique_graph_revises_only_on_disagreement() -> None:
    program = fence("print(3 + 4)")
    fake = FakeLogprobModel(["3 + 4 = 8. The answer is 8.", program, "3 + 4 = 7. The answer is 7.", program])
    out = create_critique_graph(fake, critic=ProgramCritic(limits=ROOMY, resolve="revise")).invoke({"question": Q})
    assert out["stop_reason"] == "approved" and out["answer"] == "7"
    assert [t["approved"] for t in out["turns"]] == [False, True]
    assert len(fake.calls) == 4 and fake.remaining == 0
    assert fake.calls[1].messages[-1]["content"] == f"{Q}\n\n{PROGRAM_INSTRUCTION}"


def test_by_default_the_program_answer_replaces_a_disagreeing_draft() -> None:
    program = fence("print(3 + 4)")
    fake = FakeLogprobModel(["3 + 4 = 8. The answer is 8.", program])
    events = list(create_critique_graph(fake, critic=ProgramCritic(limits=ROOMY)).stream(
        {"question": Q}, stream_mode=["custom", "values"]))
    out = [v for mode, v in events if mode == "values"][-1]
    assert out["stop_reason"] == "replaced" and out["answer"] == "7" and len(fake.calls) == 2
    last = out["turns"][-1]
    assert last["replaced"] is True and last["usage"]["calls"] == 0 and out["usage"]["calls"] == 2
    assert out["response"] == "```python\nprint(3 + 4)\n```\nThe program printed 7.\nThe answer is 7."
    assert out["attempt2_answer"] == "7" and out["attempt1_answer"] == "8"
    replace = next(v for mode, v in events if mode == "custom" and v["event"] == "critique.replace")
    assert (replace["index"], replace["answer"], replace["stop_reason"]) == (1, "7", "replaced")


def test_the_middleware_answers_with_the_program_result() -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    from sc_chains.middleware import CritiqueReviseMiddleware
    from sc_chains.testing import FakeLogprobChatModel

    chat = FakeLogprobChatModel(replies=["3 + 4 = 8. The answer is 8.", fence("print(3 + 4)")])
    mw = CritiqueReviseMiddleware(critic=ProgramCritic(limits=ROOMY))
    out = create_agent(chat, middleware=[mw]).invoke({"messages": [HumanMessage(Q)]})
    msg = out["messages"][-1]
    assert msg.text.endswith("The program printed 7.\nThe answer is 7.") and len(chat.calls) == 2
    trace = msg.response_metadata["sc_chains"]["critique"]
    assert trace["stop_reason"] == "replaced" and trace["usage"]["calls"] == 2


def test_critique_graph_keeps_a_draft_whose_program_agrees() -> None:
    draft = f"{fence('print(3 + 4)')}\nThe answer is 7."
    fake = FakeLogprobModel([draft])
    out = create_critique_graph(fake, critic=ProgramCritic(limits=ROOMY)).invoke({"question": Q})
    assert out["stop_reason"] == "approved" and out["answer"] == "7" and len(fake.calls) == 1


def test_program_verifier_as_a_reward_without_gold() -> None:
    assert program_verifier(Q, f"{fence('print(3 + 4)')}\nThe answer is 7.", None)[0] is True
    ok, msg = program_verifier(Q, f"{fence('print(3 + 4)')}\nThe answer is 8.", None)
    assert ok is False and "printed 7" in msg
    assert program_verifier(Q, "The answer is 7.", None)[0] is False  # nothing to verify with
    verify = make_program_verifier(SandboxLimits(timeout_s=1.0))
    ok, msg = verify(Q, fence("while True:\n    pass") + "\nThe answer is 7.", None)
    assert ok is False and "failed" in msg


def test_datagen_score_with_the_program_reward() -> None:
    from sc_chains.datagen.score import ScoreConfig, ScoreGenerator
    from sc_chains.datasets import Problem

    wrong, right = fence("print(3 + 4)") + "\nThe answer is 8.", fence("print(3 + 4)") + "\nThe answer is 7."
    gen = ScoreGenerator(FakeLogprobModel([wrong, right]), ScoreConfig(reward="program"))
    rec = gen((Problem("p1", Q, "no gold here"), 0))  # the reference is not used
    assert (rec["r1"], rec["r2"], rec["transition"]) == (0.0, 1.0, "i->c")
    assert gen.describe()["reward"] == "program"
    with pytest.raises(InvalidRequestError, match="reward"):
        ScoreConfig(reward="judge")
