"""One loop per method: the graph and the create_agent middleware drive the same code.

A scripted model runs through both drivers; the attempts, cuts, stop reasons, answers, events and
cost records must be identical. Then threads: a new question on a thread is a fresh run.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver
from middleware_scripts import DRAFT, RETHINK, REWRITE

from adapters.fake import FakeLogprobModel, FakeReply
from graphs.leco import create_leco_graph
from graphs.leco.prompts import USER_TEMPLATE
from graphs.s2a import create_s2a_graph
from graphs.s2a.filter import RELEVANCE_TOP_LOGPROBS
from sc_chains.testing import FakeLogprobChatModel
from sc_chains.middleware import LecoMiddleware, S2AMiddleware

Q = "Tom has 3 apples. I think the answer is 9. He buys 4 more. How many apples does he have?"


def _custom(stream: Any) -> list[dict[str, Any]]:
    return [item for mode, item in stream if mode == "custom"]


def test_leco_graph_and_middleware_make_the_same_run() -> None:
    script = [DRAFT, RETHINK, RETHINK]
    graph = create_leco_graph(FakeLogprobModel(script), prob_mode="true", regeneration="chat")
    g_events = [e for e in graph.stream({"question": Q}, stream_mode="custom")]
    fake = FakeLogprobModel(script)
    state = create_leco_graph(fake, prob_mode="true", regeneration="chat").invoke({"question": Q})

    chat = FakeLogprobChatModel(replies=script)
    agent = create_agent(chat, middleware=[LecoMiddleware(prob_mode="true")])
    user = {"messages": [{"role": "user", "content": USER_TEMPLATE.format(question=Q)}]}
    m_events = _custom(agent.stream(user, stream_mode=["custom", "values"]))
    chat2 = FakeLogprobChatModel(replies=script)
    out = create_agent(chat2, middleware=[LecoMiddleware(prob_mode="true")]).invoke(user)
    trace = out["messages"][-1].response_metadata["sc_chains"]["leco"]

    # the same conversation reached both models, call by call
    assert [[m["content"] for m in c.messages] for c in fake.calls] == [[m.text for m in c] for c in chat2.calls]
    # the same events (attempts with their step scores, cuts, the vote, the cost)
    assert [e["event"] for e in g_events] == ["leco.draft", *["leco.cut", "leco.rethink"] * 2, "leco.done"]
    assert m_events == g_events
    # the same records
    assert trace["stop_reason"] == state["stop_reason"] == "agreement"
    assert trace["answer"] == state["answer"] == "7" and trace["status"] == state["status"] == "corrected"
    assert trace["votes"] == state["vote"]
    assert [a["answer"] for a in trace["attempts"]] == state["candidates"]
    assert [a["cut_step"] for a in trace["attempts"][1:]] == [c["step"] for c in state["cuts"]]
    assert trace["cost"] == state["usage"]
    assert out["messages"][-1].content == state["response"]


def test_s2a_graph_and_middleware_make_the_same_rewrite() -> None:
    fake = FakeLogprobModel([REWRITE, "The answer is 7."])
    graph = create_s2a_graph(fake, answer_format="")
    g_events = list(graph.stream({"question": Q}, stream_mode="custom"))

    rewriter = FakeLogprobChatModel(replies=[REWRITE])
    model = FakeLogprobChatModel(replies=["The answer is 7."])
    agent = create_agent(model, middleware=[S2AMiddleware(rewriter)])
    m_events = _custom(agent.stream({"messages": [{"role": "user", "content": Q}]}, stream_mode=["custom", "values"]))

    g_rewrite = next(e for e in g_events if e["event"] == "s2a.rewrite")
    m_rewrite = {k: v for k, v in m_events[0].items() if k not in ("message_id", "kind")}
    assert m_rewrite == g_rewrite
    # the rewrite call saw the same prompt; the answering model saw the same composed text
    assert [m["content"] for m in fake.calls[0].messages] == [m.text for m in rewriter.calls[0]]
    assert fake.calls[1].messages[-1]["content"] == model.calls[0][-1].text == g_rewrite["prompt"]


S2A_P = "Tom has 3 apples. His sister Ann is 12 years old. He buys 4 more apples. How many apples does he have now?"
S2A_KEPT = "Tom has 3 apples. He buys 4 more apples. How many apples does he have now?"
S2A_ANSWER = "3 + 4 = 7.\nThe answer is 7."


@pytest.mark.parametrize("variant", ["filter", "fewshot"])
def test_s2a_variants_graph_and_middleware_make_the_same_run(variant: str) -> None:
    """The few-shot rewrite and the relevance filter: one loop, the same calls and events."""
    raw = ("Context related to the question (includes all content except unrelated sentences): Tom has 3 apples. "
           "He buys 4 more apples.\nDetailed question: How many apples does he have now?")
    cleaning = ["Yes", "No", "Yes"] if variant == "filter" else [raw]
    opts = {"mode": "filter"} if variant == "filter" else {"few_shot": True}
    fake = FakeLogprobModel([*cleaning, S2A_ANSWER])
    g_events = list(create_s2a_graph(fake, rewrite="irrelevant", answer_format="", **opts).stream(
        {"question": S2A_P}, stream_mode="custom"))

    rewriter = FakeLogprobChatModel(replies=list(cleaning))
    model = FakeLogprobChatModel(replies=[S2A_ANSWER])
    agent = create_agent(model, middleware=[S2AMiddleware(rewriter, rewrite="irrelevant", **opts)])
    m_events = _custom(agent.stream({"messages": [{"role": "user", "content": S2A_P}]}, stream_mode=["custom", "values"]))

    strip = lambda e: {k: v for k, v in e.items() if k not in ("message_id", "kind")}  # noqa: E731
    assert [strip(e) for e in m_events] == [e for e in g_events if e["event"] != "s2a.answer"]
    assert [e["event"] for e in m_events] == (["s2a.filter"] if variant == "filter" else []) + ["s2a.rewrite"]
    # the same cleaning calls reached both models, message by message; the same composed text
    assert [[m["content"] for m in c.messages] for c in fake.calls[:-1]] == [[m.text for m in c] for c in rewriter.calls]
    assert fake.calls[-1].messages[-1]["content"] == model.calls[0][-1].text
    if variant == "filter":  # bound for one greedy token with its top alternatives
        assert all(kw.get("top_logprobs") == RELEVANCE_TOP_LOGPROBS for kw in rewriter.call_kwargs)
        assert model.calls[0][-1].text.startswith(S2A_KEPT)


# -- threads: a new question on a thread is a fresh run -------------------------------------------
MUFFINS = "A baker makes 24 muffins and sells 9. How many muffins are left?"
TIMES = "What is 6 times 7?"


def _solver(request: Any) -> FakeReply:
    """Answers whichever question the request is about (the latest one mentioned)."""
    text = "\n".join(m["content"] for m in request.messages)
    if text.rfind("6 times 7") > text.rfind("muffins"):
        return FakeReply("Step 1: 6 * 7 = 42.\nStep 2: So it is 42.\nThe answer is 42.", overrides={"Step 2": -1.0})
    return FakeReply("Step 1: 24 - 9 = 15.\nStep 2: So 15 are left.\nThe answer is 15.", overrides={"Step 2": -1.0})


def _factories() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("leco", lambda m, **kw: create_leco_graph(m, **kw)),
        ("s2a", lambda m, **kw: create_s2a_graph(m, **kw)),
    ]
    try:
        from graphs.critique import create_critique_graph
    except ImportError:  # pragma: no cover - critique lands separately
        return out
    out.append(("critique", lambda m, **kw: create_critique_graph(m, **kw)))
    return out


@pytest.mark.parametrize(("name", "factory"), _factories(), ids=[n for n, _ in _factories()])
def test_a_second_question_on_a_thread_is_a_fresh_run(name: str, factory: Any) -> None:
    model = FakeLogprobModel(default=_solver)
    graph = factory(model, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": f"{name}-thread"}}
    first = graph.invoke({"question": MUFFINS}, cfg)
    calls_first = len(model.calls)
    second = graph.invoke({"question": TIMES}, cfg)
    assert first["answer"] == "15" and second["answer"] == "42"
    assert second["usage"]["calls"] == len(model.calls) - calls_first  # full budget, own cost only
    for key in ("candidates", "attempts", "turns"):
        if key in second:
            assert all("15" != (x if isinstance(x, str) else x.get("answer")) for x in second[key]), key
    history = [h.values for h in graph.get_state_history(cfg)]
    assert any(v.get("answer") == "15" and v.get("question") == MUFFINS for v in history)


def test_leco_middleware_in_a_multi_turn_conversation() -> None:
    chat = FakeLogprobChatModel(replies=[DRAFT, RETHINK, RETHINK, DRAFT, RETHINK, RETHINK])
    agent = create_agent(chat, middleware=[LecoMiddleware(prob_mode="true", max_corrections=2)],
                         checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "chat"}}
    one = agent.invoke({"messages": [{"role": "user", "content": Q}]}, cfg)
    two = agent.invoke({"messages": [{"role": "user", "content": "And with 4 more? " + Q}]}, cfg)
    t1 = one["messages"][-1].response_metadata["sc_chains"]["leco"]
    t2 = two["messages"][-1].response_metadata["sc_chains"]["leco"]
    # the second request has its own budget: both made two rethinks (max_corrections=2 per request)
    assert t1["corrections"] == t2["corrections"] == 2 and t2["stop_reason"] == "agreement"
    assert len(two["messages"]) == 4  # two user turns, two answers; no rethink prompt in the thread
    assert chat.calls[3][-1].text.startswith("And with 4 more?")  # the new draft saw the new question


def test_s2a_middleware_in_a_multi_turn_conversation() -> None:
    second = "Tom now has 7 apples. I believe it is 20. He gives away 2. How many are left?"
    rewrite2 = (
        "Unbiased text context (includes all content except user's bias): Tom now has 7 apples. He gives away 2.\n"
        "Question/Query (does not include user bias/preference): How many are left?"
    )
    rewriter = FakeLogprobChatModel(replies=[REWRITE, rewrite2])
    model = FakeLogprobChatModel(replies=["The answer is 7.", "The answer is 5."])
    agent = create_agent(model, middleware=[S2AMiddleware(rewriter, max_completion_tokens=200)],
                         checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "s2a-chat"}}
    agent.invoke({"messages": [{"role": "user", "content": Q}]}, cfg)
    out = agent.invoke({"messages": [{"role": "user", "content": second}]}, cfg)
    # the second turn rewrote only the new message, with the request's own budget
    assert len(rewriter.calls) == 2 and second in rewriter.calls[1][-1].text
    assert "I believe it is 20" not in model.calls[1][-1].text and "How many are left?" in model.calls[1][-1].text
    cost = out["messages"][-1].response_metadata["sc_chains"]["s2a"]
    assert cost["calls"] == 1 and cost["rewritten"] == 2  # this request's call; two turns rewritten so far
    private = agent.get_state(cfg).values["sc_chains_s2a"]["s2a"]
    assert {r["original"] for r in private["rewrites"].values()} == {Q, second}
