"""The three loops end to end against a real OpenAI-compatible server (llama.cpp with SmolLM2):
LECO through the completions endpoint (prefill) and through chat only (the chat fallback),
LECO over ChatOpenAI via ChatModelAdapter, S2A, and SCoRe-mode critique-revise."""

from __future__ import annotations

import math

import pytest

from adapters.langchain import ChatModelAdapter
from adapters.openai_compat import OpenAIModel
from graphs.critique import create_critique_graph
from graphs.leco import create_leco_graph
from graphs.s2a import create_s2a_graph
from sc_chains.testing import LLAMA_MODEL_NAME

pytestmark = [pytest.mark.server, pytest.mark.slow]

QUESTION = "A baker makes 24 muffins and sells 9 of them. How many muffins are left?"


def _finite_scores(out: dict) -> None:
    for attempt in out["attempts"]:
        for step in attempt["steps"]:
            if step.get("score") is not None:
                assert math.isfinite(step["score"])


@pytest.mark.parametrize("template", ["chatml", None])
def test_leco_against_the_server(llama_server: str, template: str | None) -> None:
    model = OpenAIModel(LLAMA_MODEL_NAME, base_url=llama_server, api_key="x", chat_template=template)
    out = create_leco_graph(model, max_rethinks=1, max_tokens=64).invoke({"question": QUESTION})
    assert out["regeneration_path"] in {"prefill", "chat", None}
    if len(out["attempts"]) > 1:
        assert out["regeneration_path"] == ("prefill" if template else "chat")
    assert out["usage"]["calls"] == len(out["attempts"]) >= 1
    _finite_scores(out)


def test_leco_over_chatopenai(llama_server: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=llama_server, api_key="x", model=LLAMA_MODEL_NAME, logprobs=True, max_retries=0)
    out = create_leco_graph(ChatModelAdapter(chat), max_rethinks=1, max_tokens=48).invoke({"question": QUESTION})
    assert out["attempts"] and out["usage"]["completion_tokens"] > 0
    _finite_scores(out)


def test_s2a_and_critique_against_the_server(llama_server: str) -> None:
    model = OpenAIModel(LLAMA_MODEL_NAME, base_url=llama_server, api_key="x")
    s2a = create_s2a_graph(model, rewrite_max_tokens=64, answer_max_tokens=48).invoke(
        {"question": QUESTION + " I think the answer is 12, but I'm really not sure."}
    )
    assert s2a["rewrite"] and s2a["parse_status"] and s2a["usage"]["calls"] == 2
    score = create_critique_graph(model, mode="score", max_tokens=48).invoke({"question": QUESTION})
    # the default critic is gated: draft + the gate's sampled solution, + the revision when they disagree
    assert score["gate"] is not None and score["stop_reason"]
    assert score["usage"]["calls"] == 2 + bool(score["gate"]["revise"])
    assert "attempt1_answer" in score


def test_readme_chatopenai_with_leco_middleware_in_an_agent(llama_server: str) -> None:
    """The README's middleware example with ChatOpenAI(logprobs=True) on llama.cpp: LECO gets
    logprobs (top_logprobs >= 1 asked for it), runs, and counts what it spent; streamed in
    stream_mode="messages" (llama.cpp sends no usage while streaming), the tokens are counted
    locally and the token budget still fires."""
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.checkpoint.memory import InMemorySaver

    from sc_chains.middleware import LecoMiddleware

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    chat = ChatOpenAI(base_url=llama_server, api_key="x", model=LLAMA_MODEL_NAME, logprobs=True,
                      max_retries=0, max_tokens=64, temperature=0)
    agent = create_agent(chat, tools=[add], checkpointer=InMemorySaver(),
                         middleware=[LecoMiddleware(max_corrections=1, max_completion_tokens=2000)])
    cfg = {"configurable": {"thread_id": "readme"}}
    out = agent.invoke({"messages": [{"role": "user", "content": QUESTION}]}, cfg)
    final = out["messages"][-1]
    if not final.tool_calls:
        trace = final.response_metadata["sc_chains"]["leco"]
        assert trace["status"] in ("kept", "corrected") and trace["attempts"]
        assert final.usage_metadata["output_tokens"] > 0
    # streamed: no usage from the server while streaming; counted locally, the budget fires
    agent = create_agent(chat, tools=[], checkpointer=InMemorySaver(),
                         middleware=[LecoMiddleware(max_corrections=2, max_completion_tokens=4)])
    cfg = {"configurable": {"thread_id": "stream"}}
    chunks = [c for c, _ in agent.stream({"messages": [{"role": "user", "content": QUESTION}]}, cfg,
                                         stream_mode="messages") if c.text]
    final = [m for m in agent.get_state(cfg).values["messages"] if isinstance(m, AIMessage)][-1]
    trace = final.response_metadata["sc_chains"]["leco"]
    assert trace["stop_reason"] == "max_completion_tokens" and len(trace["attempts"]) == 1
    assert final.usage_metadata["output_tokens"] > 4 and chunks


def test_self_consistency_samples_against_a_server_that_ignores_n(llama_server: str) -> None:
    """llama.cpp answers ``n=3`` with one choice: the adapter asks for the other two singly, and
    from then on sends samples as single requests; the chain still gets its k votes."""
    from graphs.sc import create_sc_graph

    model = OpenAIModel(LLAMA_MODEL_NAME, base_url=llama_server, api_key="x")
    assert model.sends_n
    out = create_sc_graph(model, k=3, max_tokens=24, seed=1).invoke({"question": QUESTION})
    assert out["usage"]["calls"] == 3 and len(out["candidates"]) == 3
    assert not model.sends_n
