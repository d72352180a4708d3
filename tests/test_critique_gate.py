"""Do no harm by default: the default critic revises only when a second sampled solution
disagrees with the draft; ``critic="self"`` is the explicit, ungated intrinsic critique."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from middleware_scripts import user

from adapters.errors import InvalidRequestError
from graphs.critique import CritiqueConfig, answer_match_verifier, create_critique_graph
from graphs.critique.critics import uses_gate
from graphs.critique.policy import gate_revises
from sc_chains.middleware import CritiqueReviseMiddleware
from sc_chains.testing import FakeLogprobChatModel, FakeLogprobModel

Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def test_gate_revises_only_on_evidence_against_the_draft() -> None:
    assert gate_revises("7", "8") is True
    assert gate_revises("7", "7.0") is False
    assert gate_revises("7", None) is False  # a sample without an answer is no evidence
    assert gate_revises(None, "7") is True  # a draft without an answer has nothing to lose
    assert gate_revises(None, None) is True


def test_which_critics_are_gated() -> None:
    cfg = CritiqueConfig()
    assert uses_gate(None, cfg) is True
    assert uses_gate("self", cfg) is False  # the explicit opt-in to ungated intrinsic critique
    assert uses_gate(answer_match_verifier, cfg) is False  # an external signal needs no gate
    assert uses_gate("program", cfg) is False
    assert uses_gate(answer_match_verifier, CritiqueConfig(gate="disagreement")) is True
    assert uses_gate(None, CritiqueConfig(gate="off")) is False
    with pytest.raises(InvalidRequestError) as err:
        CritiqueConfig(gate="maybe")
    assert err.value.param == "gate"
    with pytest.raises(InvalidRequestError) as err:
        CritiqueConfig(gate_temperature=0)
    assert err.value.param == "gate_temperature"


def test_agreement_keeps_the_draft_without_any_critique() -> None:
    fake = FakeLogprobModel(["3 + 4 = 7. The answer is 7.", "4 + 3 = 7. The answer is 7."])
    events = list(create_critique_graph(fake, seed=0).stream({"question": Q}, stream_mode=["custom", "values"]))
    out = [v for mode, v in events if mode == "values"][-1]
    custom = [v for mode, v in events if mode == "custom"]
    assert out["answer"] == "7" and out["stop_reason"] == "agreement" and len(out["turns"]) == 1
    assert out["gate"] == {"draft_answer": "7", "sample_answer": "7", "revise": False,
                           "sample": "4 + 3 = 7. The answer is 7.", "confirmed": None}
    assert [c.temperature for c in fake.calls] == [0.0, 0.7]  # the second solution is sampled
    assert fake.calls[1].messages == fake.calls[0].messages and fake.calls[1].seed == 9
    assert out["usage"]["calls"] == 2
    gate = next(e for e in custom if e["event"] == "critique.gate")
    assert gate["revise"] is False and gate["stop_reason"] == "agreement"


def test_disagreement_runs_the_usual_critique_and_revision() -> None:
    fake = FakeLogprobModel(["3 + 4 = 8. The answer is 8.", "3 + 4 = 7. The answer is 7.",
                             "3 + 4 is 7, not 8.\nVerdict: incorrect", "3 + 4 = 7. The answer is 7.",
                             "Verdict: correct"])
    out = create_critique_graph(fake).invoke({"question": Q})
    assert out["gate"]["revise"] is True and out["gate"]["sample_answer"] == "7"
    assert out["answer"] == "7" and out["stop_reason"] == "approved" and len(out["turns"]) == 2
    assert out["usage"]["calls"] == 5 and fake.remaining == 0


def test_a_sample_without_an_answer_keeps_the_draft() -> None:
    fake = FakeLogprobModel(["The answer is 8.", "I am not sure."])
    out = create_critique_graph(fake).invoke({"question": Q})
    assert out["answer"] == "8" and out["stop_reason"] == "agreement" and len(fake.calls) == 2


def test_critic_self_is_the_old_ungated_intrinsic_critique() -> None:
    fake = FakeLogprobModel(["The answer is 7.", "It is wrong.\nVerdict: incorrect", "The answer is 8.",
                             "Verdict: correct"])
    out = create_critique_graph(fake, critic="self").invoke({"question": Q})
    assert out["gate"] is None and out["answer"] == "8"  # the harm the gate exists to prevent
    assert [c.temperature for c in fake.calls] == [0.0] * 4


def test_score_mode_is_gated_too() -> None:
    same = FakeLogprobModel(["The answer is 7.", "The answer is 7."])
    out = create_critique_graph(same, mode="score").invoke({"question": Q})
    assert len(out["turns"]) == 1 and out["attempt2_answer"] == out["attempt1_answer"] == "7"
    differ = FakeLogprobModel(["The answer is 8.", "The answer is 7.", "The answer is 7."])
    out = create_critique_graph(differ, mode="score").invoke({"question": Q})
    assert (out["attempt1_answer"], out["attempt2_answer"]) == ("8", "7") and out["stop_reason"] == "max_turns"


def test_a_verifier_critic_is_not_gated_unless_asked() -> None:
    fake = FakeLogprobModel(["The answer is 7."])
    out = create_critique_graph(fake, critic=answer_match_verifier).invoke({"question": Q, "reference": "7"})
    assert out["gate"] is None and len(fake.calls) == 1 and out["stop_reason"] == "approved"
    fake = FakeLogprobModel(["The answer is 7.", "The answer is 7."])
    out = create_critique_graph(fake, critic=answer_match_verifier, gate="disagreement").invoke(
        {"question": Q, "reference": "7"})
    assert out["stop_reason"] == "agreement" and len(fake.calls) == 2


def test_the_middleware_default_is_gated() -> None:
    agree = FakeLogprobChatModel(replies=["The answer is 7.", "The answer is 7."])
    out = create_agent(agree, middleware=[CritiqueReviseMiddleware()]).invoke(user())
    msg = out["messages"][-1]
    assert msg.content == "The answer is 7." and len(agree.calls) == 2
    assert msg.response_metadata["sc_chains"]["critique"]["stop_reason"] == "agreement"
    differ = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7.", "Wrong sum.\nVerdict: incorrect",
                                           "The answer is 7.", "Verdict: correct"])
    out = create_agent(differ, middleware=[CritiqueReviseMiddleware()]).invoke(user())
    assert out["messages"][-1].content == "The answer is 7." and len(differ.calls) == 5


def test_the_middleware_gate_samples_with_the_gate_temperature() -> None:
    # the gate's second solution is a sampled call: the agent's request carries gate_temperature
    # (and the seed), while the draft and the revision keep the agent's own settings
    chat = FakeLogprobChatModel(replies=["The answer is 7.", "The answer is 7."])
    mw = CritiqueReviseMiddleware(gate_temperature=0.9, seed=5)
    create_agent(chat, middleware=[mw]).invoke(user())
    draft, gate = chat.call_kwargs
    assert "temperature" not in draft and "seed" not in draft
    assert gate["temperature"] == 0.9 and isinstance(gate["seed"], int)


# -- the confirmation step: a revision stands only when the gate's sample agrees with it ------


def test_confirmed_final_is_a_two_of_three_vote_with_ties_to_the_draft() -> None:
    from graphs.critique.policy import confirmed_final

    assert confirmed_final(["8", "7"], "7", 1) == 1  # revision and sample agree: it stands
    assert confirmed_final(["8", "9"], "7", 1) == 0  # three different answers: the draft
    assert confirmed_final(["8", "8.0"], "7", 1) == 0  # the revision kept the draft's answer
    assert confirmed_final(["8", "7", "9"], "7", 2) == 1  # the latest confirmed revision
    assert confirmed_final(["8", "7", "9", "7.00"], "7", 3) == 3
    assert confirmed_final(["8", "7", "7"], "7", 1) == 1  # never past the loop's kept draft
    assert confirmed_final(["8", None], "7", 1) == 0  # a revision without an answer is not confirmed
    assert confirmed_final([None, "9"], "7", 1) == 1  # a draft without an answer has nothing to lose
    assert confirmed_final(["8"], "7", 0) == 0


UNCONFIRMED = ["3 + 4 = 8. The answer is 8.", "3 + 4 = 7. The answer is 7.",
               "Something is off.\nVerdict: incorrect", "3 + 4 = 9. The answer is 9.", "Verdict: correct"]


def test_an_unconfirmed_revision_gives_the_first_draft_back() -> None:
    fake = FakeLogprobModel(UNCONFIRMED)
    events = list(create_critique_graph(fake).stream({"question": Q}, stream_mode=["custom", "values"]))
    out = [v for mode, v in events if mode == "values"][-1]
    assert out["answer"] == "8" and out["final"] == 0 and len(out["turns"]) == 2
    assert out["turns"][1]["answer"] == "9" and out["stop_reason"] == "approved"
    assert out["gate"]["confirmed"] is False and out["attempt2_answer"] == "8"
    confirm = next(v for mode, v in events if mode == "custom" and v["event"] == "critique.confirm")
    assert (confirm["index"], confirm["revision"], confirm["confirmed"]) == (0, 1, False)
    done = next(v for mode, v in events if mode == "custom" and v["event"] == "critique.done")
    assert done["answer"] == "8"


def test_gate_confirm_false_lets_the_revision_stand() -> None:
    out = create_critique_graph(FakeLogprobModel(UNCONFIRMED), gate_confirm=False).invoke({"question": Q})
    assert out["answer"] == "9" and out["final"] == 1 and out["gate"]["confirmed"] is None
    with pytest.raises(InvalidRequestError) as err:
        CritiqueConfig(gate_confirm="yes")
    assert err.value.param == "gate_confirm"


def test_a_confirmed_revision_stands_and_is_recorded() -> None:
    out = create_critique_graph(FakeLogprobModel(UNCONFIRMED[:3] + ["The answer is 7.", "Verdict: correct"])).invoke(
        {"question": Q})
    assert out["answer"] == "7" and out["final"] == 1 and out["gate"]["confirmed"] is True


def test_the_middleware_answers_with_the_draft_when_the_revision_is_unconfirmed() -> None:
    chat = FakeLogprobChatModel(replies=list(UNCONFIRMED))
    out = create_agent(chat, middleware=[CritiqueReviseMiddleware()]).invoke(user())
    msg = out["messages"][-1]
    assert msg.content == "3 + 4 = 8. The answer is 8." and len(chat.calls) == 5
    trace = msg.response_metadata["sc_chains"]["critique"]
    assert trace["turns"][1]["answer"] == "9" and trace["revisions"] == 1
    loose = FakeLogprobChatModel(replies=list(UNCONFIRMED))
    out = create_agent(loose, middleware=[CritiqueReviseMiddleware(gate_confirm=False)]).invoke(user())
    assert out["messages"][-1].content == "3 + 4 = 9. The answer is 9."
