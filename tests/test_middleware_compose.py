"""The three middleware together, sync and async, with a checkpointer, HITL, retry/fallback,
in either order, and the streaming policy as seen in ``stream_mode="messages"``."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import (
    HumanInTheLoopMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt
from middleware_scripts import DRAFT, FINAL, RETHINK, REWRITE, add, leco_model, user

from sc_chains.testing import FakeLogprobChatModel
from sc_chains.middleware import CritiqueReviseMiddleware, LecoMiddleware, S2AMiddleware


def _stack(**kw):
    rewriter = FakeLogprobChatModel(replies=[REWRITE])
    critic = FakeLogprobChatModel(replies=["Verdict: correct"])
    model = leco_model()
    mws = [S2AMiddleware(rewriter), CritiqueReviseMiddleware(critic=critic), LecoMiddleware()]
    return model, rewriter, critic, create_agent(model, tools=[add], middleware=[*kw.pop("extra", []), *mws], **kw)


def _summary(out: dict) -> list:
    return [(m.type, m.content, m.response_metadata.get("sc_chains")) for m in out["messages"]]


async def test_all_three_together_sync_and_async_give_the_same_result() -> None:
    model, rewriter, critic, agent = _stack()
    sync = agent.invoke(user())
    _, _, _, agent2 = _stack()
    asyn = await agent2.ainvoke(user())
    assert _summary(sync) == _summary(asyn)
    final = sync["messages"][-1]
    assert final.content == FINAL
    sc = final.response_metadata["sc_chains"]
    assert set(sc) == {"s2a", "leco", "critique"}
    assert sc["leco"]["stop_reason"] == "agreement" and sc["critique"]["stop_reason"] == "approved"
    assert sc["critique"]["calls"] == 1 and sc["s2a"]["calls"] == 1
    assert len(rewriter.calls) == 1 and len(critic.calls) == 1 and len(model.calls) == 4
    assert critic.calls[0][-2].content == FINAL  # the critic saw LECO's answer, not its drafts
    # the final message's usage is everything the turn spent: its 3 LECO calls, critic, rewrite
    calls = [*model.calls[1:], *critic.calls, *rewriter.calls]
    spent = sum(FakeLogprobChatModel(default="x").invoke(c).usage_metadata["input_tokens"] for c in calls)
    assert final.usage_metadata["input_tokens"] == spent


def test_order_decides_who_wraps_whom() -> None:
    critic = FakeLogprobChatModel(default="Verdict: correct")
    model = leco_model(with_tool=False)
    agent = create_agent(model, middleware=[LecoMiddleware(), CritiqueReviseMiddleware(critic=critic)])
    assert agent.invoke(user())["messages"][-1].content == FINAL
    # LECO outside: each of its calls (draft, two rethinks) went through the critique loop
    assert len(critic.calls) == 3
    assert critic.calls[0][-2].content == DRAFT.text


def test_interrupt_and_resume_with_human_in_the_loop() -> None:
    hitl = HumanInTheLoopMiddleware(interrupt_on={"add": True})
    model, rewriter, critic, agent = _stack(extra=[hitl], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "hitl"}}
    first = agent.invoke(user(), cfg)
    assert "__interrupt__" in first and first["messages"][-1].tool_calls
    out = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg)
    assert out["messages"][-1].content == FINAL
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai"]
    assert len(rewriter.calls) == 1 and len(critic.calls) == 1 and len(model.calls) == 4


def test_interrupt_inside_a_critic_is_not_swallowed() -> None:
    def ask_a_person(question: str, answer: str, reference: str | None) -> bool:
        return bool(interrupt({"answer": answer}))

    model = FakeLogprobChatModel(default="The answer is 7.")
    agent = create_agent(
        model, middleware=[CritiqueReviseMiddleware(critic=ask_a_person)], checkpointer=InMemorySaver()
    )
    cfg = {"configurable": {"thread_id": "ask"}}
    first = agent.invoke(user(), cfg)
    assert first["__interrupt__"][0].value == {"answer": "The answer is 7."}
    out = agent.invoke(Command(resume=True), cfg)
    assert out["messages"][-1].response_metadata["sc_chains"]["critique"]["stop_reason"] == "approved"


def test_retry_and_fallback_middleware_in_the_same_list() -> None:
    flaky = FakeLogprobChatModel(replies=[RuntimeError("flaky"), DRAFT, RETHINK, RETHINK])
    retry = ModelRetryMiddleware(max_retries=1, initial_delay=0, jitter=False)
    out = create_agent(flaky, middleware=[retry, LecoMiddleware()]).invoke(user())
    assert out["messages"][-1].content == FINAL and len(flaky.calls) == 4
    broken = FakeLogprobChatModel(default=RuntimeError("down"))
    backup = leco_model(with_tool=False)
    out = create_agent(broken, middleware=[LecoMiddleware(), ModelFallbackMiddleware(backup)]).invoke(user())
    assert out["messages"][-1].content == FINAL and len(backup.calls) == 3


@pytest.mark.parametrize("stream", ["final", "all"])
def test_streaming_policy_in_messages_mode(stream: str) -> None:
    model = leco_model(with_tool=False)
    agent = create_agent(model, middleware=[LecoMiddleware(stream=stream)])
    texts: dict[str, str] = {}
    events = []
    for mode, item in agent.stream(user(), stream_mode=["messages", "custom"]):
        if mode == "messages":
            chunk, _meta = item
            texts[chunk.id] = texts.get(chunk.id, "") + chunk.text
        else:
            events.append(item["event"])
    streamed = list(texts.values())
    assert FINAL in streamed  # the final answer always reaches the messages stream
    drafts = [t for t in streamed if "= 8" in t]
    if stream == "final":
        assert drafts == [] and len(streamed) == 1
    else:
        assert drafts == [DRAFT.text]
    assert events == ["leco.draft", "leco.cut", "leco.rethink", "leco.cut", "leco.rethink", "leco.done"]


async def test_streaming_policy_async_and_s2a_rewrite_hidden() -> None:
    rewriter = FakeLogprobChatModel(replies=[REWRITE])
    model = FakeLogprobChatModel(replies=["The answer is 7."])
    agent = create_agent(model, middleware=[S2AMiddleware(rewriter)])
    texts, events = [], []
    async for mode, item in agent.astream(user(), stream_mode=["messages", "custom"]):
        if mode == "messages":
            texts.append(item[0].text)
        else:
            events.append(item)
    assert "".join(texts) == "The answer is 7."  # the rewrite call did not stream
    assert events[0]["event"] == "s2a.rewrite" and events[0]["removed"] == ["I think the answer is 9."]
