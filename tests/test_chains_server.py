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
    assert score["usage"]["calls"] == 2 and score["stop_reason"]
    assert "attempt1_answer" in score
