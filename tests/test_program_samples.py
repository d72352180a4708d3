"""The program critic with sampled programs (``samples=k``): program-aided self-consistency.
The pure vote on literals; real sandbox runs; the graph, the middleware and the eval chain."""

from __future__ import annotations

import asyncio

import pytest

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from graphs.critique import create_critique_graph
from graphs.critique.policy import program_vote
from graphs.critique.config import MAX_PROGRAM_SAMPLES, CritiqueConfig
from graphs.critique.program import ProgramCritic, vote_programs
from graphs.sandbox import ProgramResult, SandboxLimits

ROOMY = SandboxLimits(timeout_s=60, cpu_s=20)  # generous: the machine may be busy
Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


def ran(stdout: str, *, ok: bool = True) -> ProgramResult:
    return ProgramResult(stdout=stdout, stderr="" if ok else "Traceback\nValueError: x", exit_status=0 if ok else 1,
                         timed_out=False, killed_by_limit=None, duration_s=0.01)


def test_program_vote_on_literals() -> None:
    assert program_vote("8", ["7", "7", "8"]) is None  # 2 against 2: a tie keeps the draft
    assert program_vote("8", ["7", "7", "7"]) == 0  # the first program of the winning group
    assert program_vote("8", ["9", "7", "7"]) == 1
    assert program_vote("8", ["7", "9"]) is None  # a three-way tie keeps the draft (it votes first)
    assert program_vote("8", ["7", "8.0", "7", "8"]) is None  # 8 (draft + 2) beats 7 (2)
    assert program_vote("8", [None, None, "7"]) is None  # abstentions do not vote: 1-1 keeps the draft
    assert program_vote(None, [None, "7", "9", "9"]) == 2  # a draft without an answer does not vote
    assert program_vote("8", []) is None and program_vote("8", [None]) is None


def test_vote_programs_names_the_deciding_program() -> None:
    progs = ["print(8)", "print(7)", "print(3 + 4)", "raise ValueError", "print(7.0)"]
    runs = [ran("8\n"), ran("7\n"), ran("7\n"), ran("", ok=False), ran("7.0\n")]
    check = vote_programs("The answer is 8.", progs, runs)  # 7 (3 votes) beats 8 (the draft + 1)
    assert check.votes == ("8", "7", "7", None, "7")  # printed answers, normalised
    assert check.verdict == "disagree" and check.program_answer == "7" and check.program == "print(7)"
    kept = vote_programs("The answer is 8.", progs[:3], runs[:3])  # 8 (the draft + 1) ties 7: kept
    assert kept.verdict == "agree" and kept.program == "print(8)" and kept.revise is False
    split = vote_programs("The answer is 5.", progs[:2], runs[:2])  # 5, 8, 7: a tie, none agrees
    assert split.verdict == "split" and split.revise is False and split.program_answer == "8"
    none = vote_programs("The answer is 5.", ["raise ValueError"], [ran("", ok=False)])
    assert none.verdict == "failed" and none.votes == (None,)
    assert vote_programs("The answer is 5.", [], []).verdict == "no_program"


def test_sampled_critic_asks_for_n_programs_and_runs_each_in_the_sandbox() -> None:
    replies = [fence("print(3 + 4)"), fence("print(3 * 4)"), fence("a = 3\nb = 4\nprint(a + b)")]
    fake = FakeLogprobModel(replies)
    critic = ProgramCritic(fake, limits=ROOMY, samples=3, temperature=0.8, seed=5, max_tokens=200)
    draft = "3 + 4 = 8. The answer is 8."
    call = critic.ask(Q, draft, None)
    assert (call.n, call.temperature, call.seed, call.sampled, call.max_tokens) == (3, 0.8, 5, True, 200)
    c = critic.critique(Q, draft)
    assert [r.seed for r in fake.calls] == [5, 6, 7] and {r.temperature for r in fake.calls} == {0.8}
    assert c.approved is False and c.check.votes == ("7", "12", "7") and c.check.program_answer == "7"
    assert c.replacement.endswith("The answer is 7.") and "2 of 3 Python programs" in c.text


def test_sampled_critic_counts_the_drafts_own_program_and_keeps_a_majority_draft() -> None:
    fake = FakeLogprobModel([fence("print(7)"), fence("print(8)")])
    critic = ProgramCritic(fake, limits=ROOMY, samples=2)
    draft = f"{fence('print(3 + 4)')}\nThe answer is 7."
    assert critic.ask(Q, draft, None) is not None  # sampled programs are asked even with code of its own
    c = critic.critique(Q, draft)
    assert c.check.votes == ("7", "7", "8") and c.approved is True and c.check.verdict == "agree"
    assert "2 of 3 Python programs" in c.text


def test_sampling_options_are_validated() -> None:
    for bad in (0, MAX_PROGRAM_SAMPLES + 1, 2.0, True, "5"):
        with pytest.raises(InvalidRequestError, match="samples"):
            ProgramCritic(samples=bad)
    for bad in (0, -0.5, 2.5, "hot"):
        with pytest.raises(InvalidRequestError, match="temperature"):
            ProgramCritic(samples=3, temperature=bad)
    with pytest.raises(InvalidRequestError, match="ask_model"):
        ProgramCritic(samples=3, ask_model=False)


def test_the_graph_replaces_the_draft_with_the_winning_program() -> None:
    draft = "3 + 4 = 8. The answer is 8."
    fake = FakeLogprobModel([draft, fence("print(3 + 4)"), fence("print(9)"), fence("print(7)")])
    out = create_critique_graph(fake, critic=ProgramCritic(limits=ROOMY, samples=3, seed=0)).invoke({"question": Q})
    assert out["stop_reason"] == "replaced" and out["answer"] == "7" and out["attempt1_answer"] == "8"
    assert out["usage"]["calls"] == 4 and [c.seed for c in fake.calls[1:]] == [0, 1, 2]
    assert out["response"].startswith("```python\nprint(3 + 4)\n```")


def test_the_graph_keeps_the_draft_on_a_split() -> None:
    draft = "3 + 4 = 8. The answer is 8."
    fake = FakeLogprobModel([draft, fence("print(7)"), fence("print(9)")])
    out = create_critique_graph(fake, critic=ProgramCritic(limits=ROOMY, samples=2)).invoke({"question": Q})
    assert out["stop_reason"] == "approved" and out["answer"] == "8" and len(fake.calls) == 3


def test_the_middleware_samples_programs_from_a_chat_model_critic() -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    from sc_chains.middleware import CritiqueReviseMiddleware
    from sc_chains.testing import FakeLogprobChatModel

    chat = FakeLogprobChatModel(replies=["3 + 4 = 8. The answer is 8.", fence("print(7)"), fence("print(3 + 4)"),
                                         fence("print(9)")])
    mw = CritiqueReviseMiddleware(critic=ProgramCritic(limits=ROOMY, samples=3, seed=0))
    agent = create_agent(chat, middleware=[mw])
    out = agent.invoke({"messages": [HumanMessage(Q)]})
    msg = out["messages"][-1]
    assert msg.text.endswith("The answer is 7.") and len(chat.calls) == 4
    assert msg.response_metadata["sc_chains"]["critique"]["usage"]["calls"] == 4
    chat = FakeLogprobChatModel(replies=["3 + 4 = 8. The answer is 8.", fence("print(7)"), fence("print(3 + 4)"),
                                         fence("print(9)")])
    out = asyncio.run(create_agent(chat, middleware=[mw]).ainvoke({"messages": [HumanMessage(Q)]}))
    assert out["messages"][-1].text.endswith("The answer is 7.") and len(chat.calls) == 4


def test_the_eval_chain_votes_five_programs() -> None:
    from sc_chains.datasets import Problem
    from sc_chains.eval.chains import PROGRAM_SAMPLES, get_chain

    chain = get_chain("critique-program-sc")
    assert chain.two_attempt and PROGRAM_SAMPLES == 5
    fake = FakeLogprobModel(["The answer is 8."] + [fence("print(3 + 4)")] * PROGRAM_SAMPLES)
    out = asyncio.run(chain.run(fake, Problem(id="p", question=Q, answer="7"), {}))
    assert out["answer"] == "7" and out["correct"] is True and out["answer_t1"] == "8"
    assert out["usage"]["calls"] == 1 + PROGRAM_SAMPLES


def test_the_config_field_reaches_the_program_critic() -> None:
    draft = "3 + 4 = 8. The answer is 8."
    fake = FakeLogprobModel([draft, fence("print(3 + 4)"), fence("print(7)"), fence("print(9)")])
    graph = create_critique_graph(fake, critic="program", program_samples=3, seed=4)
    out = graph.invoke({"question": Q})
    assert out["stop_reason"] == "replaced" and out["answer"] == "7"
    assert [(c.seed, c.temperature) for c in fake.calls[1:]] == [(4, 0.7), (5, 0.7), (6, 0.7)]
    for bad in (0, MAX_PROGRAM_SAMPLES + 1, 1.5):
        with pytest.raises(InvalidRequestError, match="program_samples"):
            CritiqueConfig(program_samples=bad)
