"""FakeLogprobChatModel: a scripted LangChain chat model with OpenAI-shaped logprobs."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from adapters.fake import FakeReply
from adapters.langchain import ChatModelAdapter, parse_logprobs
from sc_chains.testing import FakeLogprobChatModel


def test_text_reply_carries_openai_logprobs_and_usage() -> None:
    chat = FakeLogprobChatModel(replies=[FakeReply("a bad b", overrides={"bad": -3.0})])
    msg = chat.invoke("hello there")
    content = msg.response_metadata["logprobs"]["content"]
    assert [c["token"] for c in content] == ["a", " bad", " b"]
    assert [c["logprob"] for c in content] == [-0.05, -3.0, -0.05]
    assert content[1]["bytes"] == list(b" bad")
    assert msg.usage_metadata == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    assert [m.content for m in chat.calls[0]] == ["hello there"]


def test_stream_chunks_add_up_to_the_invoke_message() -> None:
    chat = FakeLogprobChatModel(replies=["Step 1: x\nThe answer is 2.", "Step 1: x\nThe answer is 2."])
    whole = chat.invoke("q")
    merged = None
    for chunk in chat.stream("q"):
        merged = chunk if merged is None else merged + chunk
    assert merged.content == whole.content
    assert merged.response_metadata["logprobs"] == whole.response_metadata["logprobs"]
    assert merged.usage_metadata == whole.usage_metadata


def test_tool_calls_bind_tools_and_top_logprobs() -> None:
    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}])
    chat = FakeLogprobChatModel(replies=[call, "ok"])
    bound = chat.bind_tools(["tool-a"])
    assert bound is chat and chat.bound_tools == ["tool-a"]
    streamed = None
    for chunk in chat.stream("q"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed.tool_calls[0]["args"] == {"a": 1, "b": 2}
    msg = chat.invoke("q", top_logprobs=3)
    assert len(msg.response_metadata["logprobs"]["content"][0]["top_logprobs"]) == 3
    assert chat.call_kwargs[-1]["top_logprobs"] == 3


async def test_async_callables_exceptions_and_no_logprobs() -> None:
    chat = FakeLogprobChatModel(replies=[lambda msgs: f"echo {msgs[-1].content}", ValueError("boom")])
    assert (await chat.ainvoke([HumanMessage("hi")])).content == "echo hi"
    with pytest.raises(ValueError, match="boom"):
        await chat.ainvoke("x")
    with pytest.raises(IndexError, match="reply queue is empty"):
        chat.invoke("y")
    plain = FakeLogprobChatModel(replies=["no logprobs here"], logprobs=False)
    assert "logprobs" not in plain.invoke("q").response_metadata


def test_the_langchain_adapter_reads_its_logprobs() -> None:
    chat = FakeLogprobChatModel(replies=[FakeReply("x y", logprobs=(-0.5, -1.5))])
    gen = ChatModelAdapter(chat).generate("q")
    assert gen.text == "x y" and [t.logprob for t in gen.tokens] == [-0.5, -1.5]
    assert parse_logprobs({"logprobs": None}) is None
