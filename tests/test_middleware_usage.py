"""Token counts when the server sends no usage while streaming (issue 16 item 6): the middleware
counts the reply's tokens locally, says so, and its token budget still fires."""

from __future__ import annotations

import asyncio

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from middleware_scripts import DRAFT, RETHINK, REWRITE, add, user

from adapters.fake import FakeReply
from sc_chains.middleware import CritiqueReviseMiddleware, LecoMiddleware, S2AMiddleware
from sc_chains.middleware._calls import estimate_tokens
from sc_chains.testing import FakeLogprobChatModel


def _last_ai(agent, cfg) -> AIMessage:
    return [m for m in agent.get_state(cfg).values["messages"] if isinstance(m, AIMessage)][-1]


def _stream_messages(agent, cfg) -> list:
    return list(agent.stream(user(), cfg, stream_mode="messages"))


def test_the_fake_streams_without_usage_when_asked() -> None:
    chat = FakeLogprobChatModel(replies=["The answer is 7.", "The answer is 7."], stream_usage=False)
    assert chat.invoke("q").usage_metadata["output_tokens"] > 0  # invoke outside a stream: usage
    merged = None
    for chunk in chat.stream("q"):
        merged = chunk if merged is None else merged + chunk
    assert merged.usage_metadata is None and merged.text == "The answer is 7."


def test_leco_budget_fires_in_stream_mode_without_server_usage() -> None:
    n_draft = len(FakeReply(DRAFT.text).token_logprobs())
    for usage in (True, False):
        model = FakeLogprobChatModel(replies=[DRAFT, RETHINK, RETHINK], stream_usage=usage)
        mw = LecoMiddleware(max_completion_tokens=n_draft)  # the draft alone spends it
        agent = create_agent(model, tools=[add], middleware=[mw], checkpointer=InMemorySaver())
        cfg = {"configurable": {"thread_id": f"leco-{usage}"}}
        _stream_messages(agent, cfg)
        final = _last_ai(agent, cfg)
        trace = final.response_metadata["sc_chains"]["leco"]
        assert trace["stop_reason"] == "max_completion_tokens" and len(model.calls) == 1
        # counted from the reply's logprob tokens: the same figure the server would report
        assert final.usage_metadata["output_tokens"] == n_draft
        assert trace.get("usage_estimated") == (None if usage else 1)
        assert final.response_metadata.get("usage_estimated") is (None if usage else True)


def test_leco_counts_in_astream_events_without_server_usage() -> None:
    model = FakeLogprobChatModel(replies=[DRAFT, RETHINK, RETHINK], stream_usage=False)
    agent = create_agent(model, middleware=[LecoMiddleware(max_corrections=2)], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "events"}}

    async def run() -> None:
        async for _ in agent.astream_events(user(), cfg, version="v2"):
            pass

    asyncio.run(run())
    final = _last_ai(agent, cfg)
    trace = final.response_metadata["sc_chains"]["leco"]
    assert trace["usage_estimated"] == 3 and trace["calls"] == 2
    spent = sum(len(FakeReply(r if isinstance(r, str) else r.text).token_logprobs()) for r in (DRAFT, RETHINK, RETHINK))
    assert trace["cost"]["completion_tokens"] == spent  # every call's tokens counted, none read 0
    assert agent.get_state(cfg).values["sc_chains_leco"]["leco"]["output_tokens"] == spent


def test_text_without_logprobs_or_usage_is_estimated_from_characters() -> None:
    # S2A's rewriter streams no usage and no logprobs: the documented estimate (4 chars a token)
    rewriter = FakeLogprobChatModel(replies=[REWRITE], stream_usage=False, logprobs=False)
    model = FakeLogprobChatModel(replies=["The answer is 7."], stream_usage=False)
    agent = create_agent(model, middleware=[S2AMiddleware(rewriter)], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "s2a"}}
    _stream_messages(agent, cfg)
    cost = _last_ai(agent, cfg).response_metadata["sc_chains"]["s2a"]
    assert cost["usage_estimated"] == 1 and cost["output_tokens"] == estimate_tokens(REWRITE)
    assert estimate_tokens("abcde") == 2 and estimate_tokens("") == 0


def test_critique_budget_fires_in_stream_mode_without_server_usage() -> None:
    draft = "The answer is 8."
    model = FakeLogprobChatModel(replies=[draft, "The answer is 7."], stream_usage=False)
    critic = FakeLogprobChatModel(default="The answer is wrong: 3 + 4 = 7.", stream_usage=False)
    mw = CritiqueReviseMiddleware(critic, max_corrections=3, max_completion_tokens=5)
    agent = create_agent(model, middleware=[mw], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "critique"}}
    _stream_messages(agent, cfg)
    trace = _last_ai(agent, cfg).response_metadata["sc_chains"]["critique"]
    assert trace["stop_reason"] == "max_completion_tokens" and trace["usage"]["completion_tokens"] >= 5
    assert trace["usage_estimated"] >= 1 and len(model.calls) <= 2
