"""Per-token logprobs survive LangChain's v3 streaming protocol (issue 16 item 10)."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from langchain.agents import create_agent
from middleware_scripts import FINAL, add, leco_model, user

from adapters.hf.tiny import tiny_random_model
from sc_chains.chat_model import ChatLogprobModel
from sc_chains.testing import FakeLogprobChatModel
from sc_chains.middleware import LecoMiddleware

pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")


def same(a, b):
    """Same tokens, logprobs equal up to float noise (KV-cache reuse changes the last digits)."""
    assert [t["token"] for t in a] == [t["token"] for t in b]
    assert [t["logprob"] for t in a] == pytest.approx([t["logprob"] for t in b], abs=1e-4)
    return True


def models():
    return [
        FakeLogprobChatModel(default="The answer is 5."),
        ChatLogprobModel(tiny_random_model(), max_tokens=12, top_logprobs=2),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["fake", "tiny-random"])
def test_v3_output_keeps_every_token_logprob(index):
    chat = models()[index]
    invoked = chat.invoke("hi")
    out = chat.stream_events("hi", version="v3").output
    content = out.response_metadata["logprobs"]["content"]
    assert same(content, invoked.response_metadata["logprobs"]["content"]) and len(content) >= 2
    assert out.id and out.id.startswith("lc_run-")

    async def run():
        stream = await chat.astream_events("hi", version="v3")
        return await stream

    assert same(asyncio.run(run()).response_metadata["logprobs"]["content"], content)
    # the v1 path still adds the per-chunk lists up once (no doubling)
    chunks = list(chat.stream("hi"))
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert same(merged.response_metadata["logprobs"]["content"], content)


def test_leco_in_an_agent_under_stream_events_v3():
    agent = create_agent(leco_model(), tools=[add], middleware=[LecoMiddleware()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stream = agent.stream_events(user(), version="v3")
        events = list(stream)
    final = stream.output["messages"][-1]
    assert events and final.content == FINAL
    assert final.response_metadata["sc_chains"]["leco"]["status"] == "corrected"
