"""The critique-revise graph on the scripted fake: every mode, stop rule, critic and the HITL path."""

from __future__ import annotations

import json

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel, FakeReply
from graphs.critique import CritiqueConfig, answer_match_verifier, create_critique_graph
from graphs.critique.prompts import (
    ANSWER_INSTRUCTION,
    RCI_IMPROVE,
    RCI_REVIEW,
    SCORE_INSTRUCTION,
    SELF_REFINE_FEEDBACK,
    SELF_REFINE_REFINE,
)
from graphs.judge import Judge

Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"
FIRST = f"{Q}\n\n{ANSWER_INSTRUCTION}"


def msgs(req) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in req.messages]


def test_self_refine_stops_when_feedback_approves_with_exact_prompts() -> None:
    fake = FakeLogprobModel(
        ["3 + 4 = 8. The answer is 8.", "3 + 4 is 7, not 8.\nVerdict: incorrect",
         "3 + 4 = 7. The answer is 7.", "Correct.\nVerdict: correct"]
    )
    out = create_critique_graph(fake).invoke({"question": Q})
    assert out["stop_reason"] == "approved"
    assert out["answer"] == "7" and out["response"] == "3 + 4 = 7. The answer is 7."
    assert [t["answer"] for t in out["turns"]] == ["8", "7"]
    assert [t["approved"] for t in out["turns"]] == [False, True]
    assert msgs(fake.calls[0]) == [("user", FIRST)]
    assert msgs(fake.calls[1]) == [
        ("user", FIRST), ("assistant", "3 + 4 = 8. The answer is 8."), ("user", SELF_REFINE_FEEDBACK)
    ]
    assert msgs(fake.calls[2]) == [
        ("user", FIRST),
        ("assistant", "3 + 4 = 8. The answer is 8."),
        ("user", f"Feedback:\n3 + 4 is 7, not 8.\nVerdict: incorrect\n\n{SELF_REFINE_REFINE}"),
    ]
    assert out["usage"]["calls"] == 4
    u = out["usage"]
    for key in ("calls", "prompt_tokens", "completion_tokens"):
        assert u[key] == sum(t["usage"][key] for t in out["turns"])
    assert out["turns"][0]["usage"]["calls"] == 2  # the draft and its critique
    json.dumps(out)  # every state value is JSON-serialisable


def test_self_refine_history_grows_and_max_turns_bounds_the_loop() -> None:
    drafts = [f"Attempt {i} with different words each time number {i * 11}." for i in range(4)]
    script = []
    for i, d in enumerate(drafts):
        script += [d, f"Problem {i}. Verdict: incorrect"]
    fake = FakeLogprobModel(script)
    out = create_critique_graph(fake).invoke({"question": Q})
    assert out["stop_reason"] == "max_turns"
    assert len(out["turns"]) == 4 and out["usage"]["calls"] == 7  # the last draft is not critiqued
    last_revise = msgs(fake.calls[6])
    assert [c for r, c in last_revise if r == "assistant"] == drafts[:3]
    assert sum("Problem" in c for r, c in last_revise if r == "user") == 3
    assert out["attempt1_answer"] == "0" and out["attempt2_answer"] == "33"


def test_max_turns_counts_revisions() -> None:
    fake = FakeLogprobModel(["The answer is 8.", "Verdict: incorrect", "Now the answer is 7."])
    out = create_critique_graph(fake, max_turns=1).invoke({"question": Q})
    assert out["stop_reason"] == "max_turns" and len(out["turns"]) == 2 and len(fake.calls) == 3
    fake = FakeLogprobModel(["The answer is 8."])
    out = create_critique_graph(fake, max_turns=0).invoke({"question": Q})
    assert out["stop_reason"] == "max_turns" and len(fake.calls) == 1


def test_rci_uses_its_two_prompts_and_never_approves_itself() -> None:
    fake = FakeLogprobModel(
        ["The answer is 8.", "Verdict: correct", "I recounted: the answer is 7.", "Fine.",
         "Final check done, the answer is 7 apples."]
    )
    out = create_critique_graph(fake, mode="rci").invoke({"question": Q})
    assert msgs(fake.calls[1]) == [("user", FIRST), ("assistant", "The answer is 8."), ("user", RCI_REVIEW)]
    assert msgs(fake.calls[2]) == [
        ("user", FIRST), ("assistant", "The answer is 8."), ("user", RCI_REVIEW),
        ("assistant", "Verdict: correct"), ("user", RCI_IMPROVE),
    ]
    assert out["stop_reason"] == "max_turns" and len(out["turns"]) == 3
    assert all(t["approved"] is None for t in out["turns"][:2])


def test_score_two_attempt_protocol() -> None:
    fake = FakeLogprobModel(["3 + 4 = 8. The answer is 8.", "Let me redo it: 3 + 4 = 7. The answer is 7."])
    out = create_critique_graph(fake, mode="score").invoke({"question": Q})
    assert len(fake.calls) == 2
    assert msgs(fake.calls[1]) == [
        ("user", FIRST), ("assistant", "3 + 4 = 8. The answer is 8."), ("user", SCORE_INSTRUCTION)
    ]
    assert out["stop_reason"] == "max_turns"
    assert (out["attempt1_answer"], out["attempt2_answer"]) == ("8", "7")
    assert out["edit_distance"] == pytest.approx(out["turns"][1]["edit_distance"])
    assert 0 < out["edit_distance"] < 1


def test_collapse_stops_when_the_revision_does_not_change() -> None:
    fake = FakeLogprobModel(["The answer is 8.", "Verdict: incorrect", "The  answer is 8."])
    out = create_critique_graph(fake).invoke({"question": Q})
    assert out["stop_reason"] == "collapse" and out["turns"][1]["edit_distance"] == 0.0
    assert len(fake.calls) == 3


@pytest.mark.parametrize(("logprob", "reason", "calls"), [(-0.01, "confident", 1), (-1.0, "max_turns", 2)])
def test_confidence_gate(logprob: float, reason: str, calls: int) -> None:
    fake = FakeLogprobModel([FakeReply("The answer is 8.", logprob=logprob), "Redo: the answer is 7."])
    out = create_critique_graph(fake, mode="score", confidence_threshold=0.9).invoke({"question": Q})
    assert out["stop_reason"] == reason and len(fake.calls) == calls
    assert out["turns"][0]["confidence"] == pytest.approx(2.718281828 ** logprob)
    if reason == "confident":  # a confident draft keeps its answer: attempt 2 is attempt 1
        assert out["attempt2_answer"] == out["attempt1_answer"] == "8" and out["edit_distance"] == 0


@pytest.mark.parametrize(
    ("budget", "calls", "reason"),
    [(4, 1, "max_completion_tokens"), (6, 2, "max_completion_tokens"), (10, 3, "max_completion_tokens"),
     (10_000, 4, "approved")],
)
def test_completion_token_budget_stops_the_loop(budget: int, calls: int, reason: str) -> None:
    # generated tokens only (fake word tokens): draft 4, critique 2, revision 4, critique 2
    fake = FakeLogprobModel(["The answer is 8.", "Verdict: incorrect", "The answer is 7.", "Verdict: correct"])
    out = create_critique_graph(fake, max_completion_tokens=budget).invoke({"question": Q})
    assert len(fake.calls) == calls and out["stop_reason"] == reason
    if reason == "max_completion_tokens":  # prompt tokens, far over the budget, never counted
        assert out["usage"]["completion_tokens"] >= budget and out["usage"]["prompt_tokens"] > 3 * budget
    with pytest.raises(InvalidRequestError, match="max_completion_tokens"):
        create_critique_graph(fake, token_budget=budget)  # the old name is gone (it counted prompts too)


def test_answer_match_verifier_critic_stops_on_the_gold_answer() -> None:
    fake = FakeLogprobModel(["The answer is 8.", "Fixed: the answer is 7."])
    graph = create_critique_graph(fake, critic=answer_match_verifier, mode="rci")
    out = graph.invoke({"question": Q, "reference": "3 + 4 = 7\n#### 7"})
    assert out["stop_reason"] == "approved" and out["answer"] == "7" and len(fake.calls) == 2
    assert out["turns"][0]["critique"] == "The final answer (8) is not correct. Find the error and fix it."
    assert all("#### 7" not in c for req in fake.calls for _, c in msgs(req))  # gold never shown
    with pytest.raises(InvalidRequestError):
        create_critique_graph(FakeLogprobModel(["x"]), critic=answer_match_verifier).invoke({"question": Q})


def test_bool_verifier_and_message() -> None:
    fake = FakeLogprobModel(["draft one here", "draft two is different"])
    seen = []

    def verifier(question, response, reference):
        seen.append((question, response, reference))
        return "two" in response

    out = create_critique_graph(fake, critic=verifier).invoke({"question": Q})
    assert out["stop_reason"] == "approved" and seen[0] == (Q, "draft one here", None)
    assert "failed the check" in out["turns"][0]["critique"]


def test_another_model_critiques() -> None:
    actor = FakeLogprobModel(["The answer is 8.", "The answer is 7."])
    critic = FakeLogprobModel(["Off by one. Verdict: incorrect", "Verdict: correct"], name="critic")
    out = create_critique_graph(actor, critic=critic).invoke({"question": Q})
    assert out["stop_reason"] == "approved"
    assert len(actor.calls) == 2 and len(critic.calls) == 2
    assert msgs(critic.calls[1])[-2] == ("assistant", "The answer is 7.")


def test_judge_critic_approves_at_threshold() -> None:
    actor = FakeLogprobModel(["The answer is 8.", "The answer is 7, since 3 + 4 = 7."])
    jm = FakeLogprobModel(["Weak. Score: 2", "Weak. Score: 3", "Good. Score: 4", "Great. Score: 5"])
    judge = Judge(jm, k=2, temperature=0.7)
    out = create_critique_graph(actor, critic=judge, judge_threshold=4).invoke({"question": Q})
    assert out["stop_reason"] == "approved"
    assert [t["critique_score"] for t in out["turns"]] == [2.5, 4.5]
    assert out["turns"][0]["critique"] == "Weak. Score: 2"
    assert out["usage"]["calls"] == 6 and len(jm.calls) == 4


def _hitl(fake):
    return create_critique_graph(
        fake, mode="rci", interrupt_before_revise=True, checkpointer=InMemorySaver()
    )


def _decision(action: str, legacy: bool) -> dict:
    if legacy:
        return {"action": action, "critique": "3 + 4 is 7, not 8."}
    d: dict = {"type": action}
    if action == "edit":
        d["edited_action"] = {"name": "critique.revise", "args": {"critique": "3 + 4 is 7, not 8."}}
    return {"decisions": [d]}


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("action", ["approve", "edit", "reject"])
def test_human_in_the_loop(action: str, legacy: bool) -> None:
    fake = FakeLogprobModel(["The answer is 8.", "It looks fine.", "The answer is 7.", "ok"])
    graph = _hitl(fake)
    cfg = {"configurable": {"thread_id": action}}
    first = graph.invoke({"question": Q}, cfg)
    pending = first["__interrupt__"][0].value
    assert pending["draft"] == "The answer is 8." and pending["critique"] == "It looks fine."
    (request,) = pending["action_requests"]  # LangChain's HITL request shape
    assert request["args"] == {"draft": "The answer is 8.", "critique": "It looks fine."}
    assert pending["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    out = graph.invoke(Command(resume=_decision(action, legacy)), cfg)
    assert len(fake.calls) == (2 if action == "reject" else 4)  # no call ran twice (then a critique, paused)
    if action == "reject":
        assert out["stop_reason"] == "rejected" and len(fake.calls) == 2
        return
    expected = "3 + 4 is 7, not 8." if action == "edit" else "It looks fine."
    assert [c for r, c in msgs(fake.calls[2]) if r == "assistant"][-1] == expected
    again = out["__interrupt__"][0].value  # paused again before the second revision
    assert again["index"] == 1 and again["draft"] == "The answer is 7." and again["critique"] == "ok"
    out = graph.invoke(Command(resume=_decision("reject", legacy)), cfg)
    assert out["stop_reason"] == "rejected" and out["answer"] == "7" and len(fake.calls) == 4
    assert [t.get("review") for t in out["turns"]] == [action, "reject"]
    assert out["turns"][0]["critique"] == expected


def test_hitl_rejects_a_bad_resume_and_needs_a_checkpointer() -> None:
    graph = _hitl(FakeLogprobModel(["The answer is 8.", "hmm"]))
    cfg = {"configurable": {"thread_id": "bad"}}
    graph.invoke({"question": Q}, cfg)
    # a malformed decision is never approval: the pause is asked again, with the error (bounded)
    for bad in ({"action": "maybe"}, "yes", True, {"decisions": []}, {"decisions": [{"type": "edit"}]}):
        again = graph.invoke(Command(resume=bad), cfg)
        assert "resume" in again["__interrupt__"][0].value["error"]
    with pytest.raises(InvalidRequestError, match="resume"):
        graph.invoke(Command(resume="sixth"), cfg)
    with pytest.raises(InvalidRequestError):
        create_critique_graph(FakeLogprobModel(), interrupt_before_revise=True)


def test_invalid_setups() -> None:
    with pytest.raises(InvalidRequestError):
        create_critique_graph(FakeLogprobModel(), mode="score", critic=answer_match_verifier)
    with pytest.raises(InvalidRequestError):
        create_critique_graph(FakeLogprobModel(["x"])).invoke({"question": "  "})
    with pytest.raises(InvalidRequestError):
        create_critique_graph(FakeLogprobModel(), critic=42)
    with pytest.raises(InvalidRequestError):
        create_critique_graph(FakeLogprobModel(), max_turn=3)  # a typo is a typed error
    with pytest.raises(InvalidRequestError, match="question, response, reference"):
        create_critique_graph(FakeLogprobModel(), critic=lambda response: True)  # checked up front
    says_no = create_critique_graph(FakeLogprobModel(["The answer is 8."]), critic=lambda q, r, ref: "no")
    with pytest.raises(InvalidRequestError, match="verifier result"):
        says_no.invoke({"question": Q})  # the string "no" is not an approval


SCRIPT = ["The answer is 8.", "Verdict: incorrect", "Now: the answer is 7.", "Verdict: correct"]


async def test_async_equals_sync() -> None:
    sync = create_critique_graph(FakeLogprobModel(SCRIPT)).invoke({"question": Q})
    fake = FakeLogprobModel(SCRIPT)
    events = []
    graph = create_critique_graph(fake)
    async for mode, chunk in graph.astream({"question": Q}, stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(chunk["event"])
        else:
            final = chunk
    assert final == sync
    assert events == ["critique.draft", "critique.critique", "critique.revise", "critique.critique", "critique.done"]


def test_stream_and_checkpointer_sync() -> None:
    graph = create_critique_graph(FakeLogprobModel(SCRIPT), checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t"}}
    events = [e for e in graph.stream({"question": Q}, cfg, stream_mode="custom")]
    assert [e["event"] for e in events].count("critique.revise") == 1
    done = events[-1]
    assert (done["event"], done["stop_reason"], done["turns"], done["answer"]) == ("critique.done", "approved", 2, "7")
    assert done["usage"]["calls"] == 4
    assert graph.get_state(cfg).values["stop_reason"] == "approved"


# -- real models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    from adapters.specs import resolve_model

    return resolve_model("hf:tiny-random")


@pytest.mark.parametrize("mode", ["self-refine", "rci", "score"])
def test_tiny_random_end_to_end(tiny, mode: str) -> None:
    graph = create_critique_graph(tiny, mode=mode, max_tokens=12, critique_max_tokens=8)
    out = graph.invoke({"question": "What is 2 + 3?"})
    json.dumps(out)
    assert out["stop_reason"] in ("approved", "max_turns", "collapse", "max_completion_tokens", "echo")
    n = len(out["turns"])
    assert 1 <= n <= CritiqueConfig(mode=mode).turn_limit
    assert all(0 < t["confidence"] <= 1 for t in out["turns"])  # real token probabilities
    u = out["usage"]
    assert u["completion_tokens"] == sum(t["usage"]["completion_tokens"] for t in out["turns"])
    assert u["calls"] >= n


async def test_tiny_random_async_equals_sync_greedy(tiny) -> None:
    graph = create_critique_graph(tiny, mode="score", max_tokens=12)
    a, s = await graph.ainvoke({"question": "2 + 2?"}), graph.invoke({"question": "2 + 2?"})
    assert [t["text"] for t in a["turns"]] == [t["text"] for t in s["turns"]]
    assert a["stop_reason"] == s["stop_reason"]
    # cached_tokens differs: the second run reuses the KV cache of the first
    assert {k: v for k, v in a["usage"].items() if k != "cached_tokens"} == {
        k: v for k, v in s["usage"].items() if k != "cached_tokens"
    }
    # logprobs agree up to float noise (the async path runs the forward pass in another thread)
    assert [t["confidence"] for t in a["turns"]] == pytest.approx([t["confidence"] for t in s["turns"]], rel=1e-5)


def test_tiny_random_confidence_gate_at_one_and_tiny_threshold(tiny) -> None:
    # a threshold of 1e-6 gates every draft (stops as "confident"); 1.0 never does
    low = create_critique_graph(tiny, mode="score", max_tokens=8, confidence_threshold=1e-6)
    assert low.invoke({"question": "2 + 2?"})["stop_reason"] == "confident"
    high = create_critique_graph(tiny, mode="score", max_tokens=8, confidence_threshold=1.0)
    assert high.invoke({"question": "2 + 2?"})["stop_reason"] in ("max_turns", "collapse")


@pytest.mark.slow
def test_smollm2_score_and_self_refine_end_to_end() -> None:
    from sc_chains.critique import run_critique

    out = run_critique("What is 12 + 30?", model="hf:default", mode="score", max_tokens=96)
    assert len(out["turns"]) in (1, 2) and out["attempt1_response"]
    assert out["stop_reason"] in ("max_turns", "collapse")
    refine = run_critique("What is 12 + 30?", model="hf:default", max_turns=1, max_tokens=96,
                          critique_max_tokens=64)
    assert refine["stop_reason"] in ("approved", "max_turns", "collapse", "echo")
    assert refine["usage"]["calls"] >= 2


def test_cli_run_and_render() -> None:
    from rich.console import Console

    from sc_chains.cli.critique import cli_render, cli_run

    fake = FakeLogprobModel([FakeReply("The answer is 8.", logprob=-0.5), "Redo: the answer is 7."])
    result = cli_run(Q, fake, {"mode": "score", "max_tokens": 64})
    json.dumps(result)
    assert result["model"] == "fake-logprob-model" and result["stop_reason"] == "max_turns"
    console = Console(record=True, width=120)
    cli_render(result, console)
    shown = console.export_text()
    assert "turn 1  answer=8  confidence=0.607" in shown and "turn 2  answer=7" in shown
    assert "max_turns" in shown and "8 -> 7" in shown and "correction instruction" in shown
    with pytest.raises(InvalidRequestError):
        cli_run(Q, fake, {"max_rethinks": 2})
    critic_fake = FakeLogprobModel(["The answer is 8.", "Verdict: correct"])
    cli_run(Q, critic_fake, {"max_tokens": 7})
    assert [c.max_tokens for c in critic_fake.calls] == [7, 7]  # --max-tokens applies to critiques too


# -- the LCEL form: the review pause survives ----------------------------------------------------
@pytest.mark.parametrize("kind", ["approve", "reject"])
def test_lcel_chain_pauses_for_review_and_resumes(kind: str) -> None:
    from langchain_core.messages import AIMessage

    from sc_chains.testing import FakeLogprobChatModel
    from sc_chains.runnables import critique_chain

    chat = FakeLogprobChatModel(
        replies=["The answer is 8.", "Off by one.\nVerdict: incorrect", "The answer is 7.", "Verdict: correct"]
    )
    chain = critique_chain(chat, interrupt_before_revise=True, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": kind}}
    first = chain.invoke(Q, cfg)
    pending = first["__interrupt__"][0].value  # the pause, not the unreviewed draft as an answer
    assert pending["draft"] == "The answer is 8." and len(chat.calls) == 2
    out = chain.invoke(Command(resume={"decisions": [{"type": kind}]}), cfg)
    assert isinstance(out, AIMessage)
    if kind == "reject":
        assert out.content == "The answer is 8." and out.response_metadata["sc_chains"]["stop_reason"] == "rejected"
        assert len(chat.calls) == 2
    else:
        assert out.content == "The answer is 7." and out.response_metadata["sc_chains"]["stop_reason"] == "approved"
        assert len(chat.calls) == 4  # the draft and its critique were not run again


def test_stream_policies_in_messages_mode() -> None:
    """The draft (the answer here: approved) streams token by token; the critique only under "all"."""
    from test_graph_streaming import StreamingFake

    script = ["3 + 4 = 7. The answer is 7.", "Right.\nVerdict: correct"]
    chunks = list(create_critique_graph(StreamingFake(script)).stream({"question": Q}, stream_mode="messages"))
    texts = [c[0].text for c in chunks if c[0].text]
    assert len(texts) > 5 and "".join(texts) == script[0]
    assert all("sc_chains:critique-self-refine:draft" in c[1]["tags"] for c in chunks)
    every = create_critique_graph(StreamingFake(script), stream="all").stream({"question": Q}, stream_mode="messages")
    assert "".join(c[0].text for c in every) == script[0] + script[1]
    quiet = create_critique_graph(StreamingFake(script), stream="none")
    assert list(quiet.stream({"question": Q}, stream_mode="messages")) == []


def test_history_reaches_the_draft_critique_and_revision() -> None:
    fake = FakeLogprobModel(["The answer is 8.", "Verdict: incorrect", "The answer is 7.", "Verdict: correct"])
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello!"}]
    graph = create_critique_graph(fake, system_prompt="Check your sums.", checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "h"}}
    graph.invoke({"question": Q, "history": history}, cfg)
    head = [("system", "Be brief.\n\nCheck your sums."), ("user", "Hi"), ("assistant", "Hello!"), ("user", FIRST)]
    assert all(msgs(c)[:4] == head for c in fake.calls)  # draft, critiques and the revision
    fake.add("The answer is 42.", "Verdict: correct")
    graph.invoke({"question": "What is 6 times 7?"}, cfg)  # a later question without history gets none
    assert msgs(fake.calls[-2])[0] == ("system", "Check your sums.") and len(msgs(fake.calls[-2])) == 2
