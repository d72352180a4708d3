"""The program critic's ``resolve="vote"``: a sampled second solution breaks the tie between
the draft and the executed program's answer (graph, middleware, the pure rule, the eval chain)."""

from __future__ import annotations

import pytest

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from graphs.critique import create_critique_graph
from graphs.critique.policy import replacement_stands
from graphs.critique.program import RESOLVE, ProgramCritic
from graphs.sandbox import SandboxLimits

ROOMY = SandboxLimits(timeout_s=60, cpu_s=20)  # generous: the machine may be busy
Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"
DRAFT = "3 + 4 = 8. The answer is 8."
PROGRAM = "```python\nprint(3 + 4)\n```"


def test_replacement_stands_unless_the_sample_sides_with_the_draft() -> None:
    assert replacement_stands("8", "7", "7") is True  # sample agrees with the program
    assert replacement_stands("8", "7", "8") is False  # sample agrees with the draft: 2 of 3
    assert replacement_stands("8", "7", "8.0") is False  # numerically equal answers agree
    assert replacement_stands("8", "7", "9") is True  # three-way split: the program
    assert replacement_stands("8", "7", None) is True  # a sample without an answer is no evidence
    assert replacement_stands(None, "7", "8") is True  # a draft without an answer has nothing to keep


def _run(sample: str):
    fake = FakeLogprobModel([DRAFT, PROGRAM, sample])
    graph = create_critique_graph(fake, critic=ProgramCritic(limits=ROOMY, resolve="vote"))
    events = list(graph.stream({"question": Q}, stream_mode=["custom", "values"]))
    out = [v for mode, v in events if mode == "values"][-1]
    names = [v["event"] for mode, v in events if mode == "custom"]
    return fake, out, names, events


def test_a_sample_that_agrees_with_the_draft_keeps_it() -> None:
    fake, out, names, events = _run("3 plus 4 is 8. The answer is 8.")
    assert out["stop_reason"] == "agreement" and out["answer"] == "8" and out["final"] == 0
    assert len(fake.calls) == 3 and fake.remaining == 0 and out["usage"]["calls"] == 3
    assert fake.calls[2].temperature and fake.calls[2].temperature > 0  # a *sampled* solution
    assert out["gate"]["sample_answer"] == "8" and out["gate"]["confirmed"] is False
    assert names == ["critique.draft", "critique.critique", "critique.gate", "critique.confirm", "critique.done"]
    confirm = next(v for mode, v in events if mode == "custom" and v["event"] == "critique.confirm")
    assert (confirm["index"], confirm["confirmed"]) == (0, False)


@pytest.mark.parametrize("sample", ["4 + 3 = 7. The answer is 7.", "The answer is 12."])
def test_the_program_wins_when_the_sample_does_not_side_with_the_draft(sample: str) -> None:
    fake, out, names, _ = _run(sample)
    assert out["stop_reason"] == "replaced" and out["answer"] == "7" and out["turns"][-1]["replaced"] is True
    assert len(fake.calls) == 3 and out["gate"]["confirmed"] is True
    assert names[-3:] == ["critique.confirm", "critique.replace", "critique.done"]


def test_no_sample_when_the_program_agrees() -> None:
    fake = FakeLogprobModel(["3 + 4 = 7. The answer is 7.", PROGRAM])
    out = create_critique_graph(fake, critic=ProgramCritic(limits=ROOMY, resolve="vote")).invoke({"question": Q})
    assert out["stop_reason"] == "approved" and len(fake.calls) == 2 and out["gate"] is None


def test_the_middleware_keeps_the_draft_the_sample_confirms() -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    from sc_chains.middleware import CritiqueReviseMiddleware
    from sc_chains.testing import FakeLogprobChatModel

    chat = FakeLogprobChatModel(replies=[DRAFT, PROGRAM, "The answer is 8."])
    mw = CritiqueReviseMiddleware(critic=ProgramCritic(limits=ROOMY, resolve="vote"))
    out = create_agent(chat, middleware=[mw]).invoke({"messages": [HumanMessage(Q)]})
    msg = out["messages"][-1]
    assert msg.text == DRAFT and len(chat.calls) == 3
    trace = msg.response_metadata["sc_chains"]["critique"]
    assert trace["stop_reason"] == "agreement" and trace["usage"]["calls"] == 3


def test_resolve_is_validated() -> None:
    assert RESOLVE == ("program", "vote", "revise")
    with pytest.raises(InvalidRequestError) as err:
        ProgramCritic(resolve="majority")  # type: ignore[arg-type]
    assert err.value.param == "resolve" and "'vote'" in str(err.value)


def test_the_eval_chain_runs_the_vote() -> None:
    import asyncio

    from sc_chains.eval.chains import CHAINS
    from sc_chains.datasets import Problem

    fake = FakeLogprobModel([DRAFT, PROGRAM, "The answer is 8."])
    problem = Problem(id="p1", question=Q, answer="7")
    out = asyncio.run(CHAINS["critique-program-vote"].run(fake, problem, {}))
    assert out["answer"] == "8" and out["answer_t1"] == "8" and out["correct_t1"] is False
