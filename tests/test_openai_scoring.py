"""Text scoring over HTTP: ``OpenAIModel(text_scores=True)`` -> ``/v1/completions`` with echo.

The reply parsing on literals (OpenAI's legacy shape, llama.cpp's echo-less shape); then a real
``sc-chains serve`` on 127.0.0.1 over the tiny random HF model: the scores that come back are the
model's own forward pass, the ``openai`` SDK reads the reply, bad requests get a 400 naming the
field, and the S2A question filter runs through the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from adapters.errors import (InvalidRequestError, MalformedResponseError, ScoringUnavailableError,
                             ServerRejectedRequestError)
from adapters.openai_compat import OpenAIModel
from adapters.openai_score import parse_echo, score_payload
from sc_chains.server.config import ServerConfig
from sc_chains.server.run import running_server
from sc_chains.testing import FakeLogprobModel

PREFIX, CONT = "Tom has 3 apples.", " How many?"


def _reply(offsets: list[int], values: list[float | None], text: str = PREFIX + CONT) -> dict[str, Any]:
    return {"choices": [{"text": text, "logprobs": {"text_offset": offsets, "token_logprobs": values,
                                                    "tokens": ["?"] * len(offsets)}}],
            "usage": {"prompt_tokens": len(offsets)}}


def test_score_payload_is_the_echo_form() -> None:
    assert score_payload("m", "ab", "cd") == {"model": "m", "prompt": "abcd", "echo": True, "max_tokens": 0,
                                              "logprobs": 1, "temperature": 0.0}


def test_parse_echo_keeps_the_continuations_tokens_by_offset() -> None:
    # "Tom| has| 3| apples|.| How| many|?" then a generated token past the end (ignored)
    offsets = [0, 3, 7, 9, 16, 17, 21, 26, 27]
    values = [None, -1.0, -2.0, -3.0, -0.5, -4.0, -0.25, -0.125, -9.0]
    gen = parse_echo(_reply(offsets, values, PREFIX + CONT + "\n"), PREFIX, CONT, "m")
    assert gen.text == CONT
    assert [(t.token, t.logprob, t.offset) for t in gen.tokens] == [(" How", -4.0, 0), (" many", -0.25, 4), ("?", -0.125, 9)]
    assert gen.usage.prompt_tokens == 9


def test_parse_echo_counts_a_straddling_token_with_the_continuation() -> None:
    # "ab|cd|ef" scored as prefix "abc" + continuation "def": the token "cd" straddles
    gen = parse_echo(_reply([0, 2, 4], [None, -1.5, -2.5], "abcdef"), "abc", "def", "m")
    assert [(t.token, t.logprob, t.offset) for t in gen.tokens] == [("d", -1.5, 0), ("ef", -2.5, 1)]


@pytest.mark.parametrize("reply", [
    _reply([27], [-0.5], PREFIX + CONT + "\n"),                 # llama.cpp: the generated token only
    _reply([0, 3, 17, 21], [None, -1.0, None, -0.5]),            # a continuation token without a logprob
    _reply([19, 21], [-1.0, -0.5]),                              # tokens before the continuation's start missing
    _reply([0, 3], [None, -1.0], "Tom has"),                     # no echo of the prompt
])
def test_parse_echo_refuses_a_reply_without_prompt_logprobs(reply: dict) -> None:
    with pytest.raises(ScoringUnavailableError, match="echo=true"):
        parse_echo(reply, PREFIX, CONT, "m")


def test_parse_echo_refuses_a_reply_without_logprobs() -> None:
    with pytest.raises(MalformedResponseError):
        parse_echo({"choices": [{"text": PREFIX + CONT}]}, PREFIX, CONT, "m")


def test_text_scores_is_opt_in_and_validated() -> None:
    off = OpenAIModel("m", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert off.capabilities.text_scores is False
    with pytest.raises(ScoringUnavailableError, match="text_scores=True"):
        off.score_texts([(PREFIX, CONT)])  # refused before any request
    with pytest.raises(InvalidRequestError, match="text_scores"):
        OpenAIModel("m", base_url="http://127.0.0.1:9/v1", api_key="k", text_scores="yes")  # type: ignore[arg-type]
    on = OpenAIModel("m", base_url="http://127.0.0.1:9/v1", api_key="k", text_scores=True)
    with pytest.raises(InvalidRequestError, match="non-empty prefix"):
        on.score_texts([("", CONT)])  # refused before any request


@pytest.fixture(scope="module")
def served(tiny) -> Iterator[str]:  # noqa: ANN001
    with running_server(tiny) as url:
        yield url


def test_scores_over_http_are_the_models_forward_pass(tiny, served: str) -> None:  # noqa: ANN001
    model = OpenAIModel("s2a", base_url=served, api_key="unused", text_scores=True)
    pairs = [(PREFIX, CONT), ("ab cd ", "ef gh?")]
    got = model.score_texts(pairs)
    assert asyncio.run(model.ascore_texts(pairs)) == got
    for (prefix, cont), gen in zip(pairs, got):
        # the server scores the whole prompt from the model's start token
        whole = tiny.score_texts([("", prefix + cont)])[0]
        want = [t for t in whole.tokens if t.offset >= len(prefix)]
        assert gen.text == cont and "".join(t.token for t in gen.tokens) == cont
        assert [t.logprob for t in gen.tokens] == pytest.approx([t.logprob for t in want], abs=1e-4)
        assert gen.usage.prompt_tokens == len(whole.tokens)
    with pytest.raises(ServerRejectedRequestError, match="model_not_found"):
        OpenAIModel("nope", base_url=served, api_key="unused", text_scores=True).score_texts(pairs)


def test_the_openai_sdk_reads_the_echo_reply(served: str) -> None:
    client = openai.OpenAI(base_url=served, api_key="unused", max_retries=0)
    out = client.completions.create(model="baseline", prompt=PREFIX + CONT, echo=True, max_tokens=0, logprobs=1)
    lp = out.choices[0].logprobs
    assert out.choices[0].text == PREFIX + CONT and out.usage.completion_tokens == 0
    assert lp.token_logprobs[0] is None and all(v < 0 for v in lp.token_logprobs[1:])
    assert "".join(lp.tokens) == PREFIX + CONT and lp.text_offset[0] == 0
    assert lp.top_logprobs[1] == {lp.tokens[1]: lp.token_logprobs[1]}


@pytest.mark.parametrize("body, param", [
    ({"echo": False}, "echo"),
    ({"max_tokens": 5}, "max_tokens"),
    ({"logprobs": 5}, "logprobs"),
    ({"prompt": ["a", "b"]}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"stream": True}, "stream"),
])
def test_the_endpoint_refuses_what_it_does_not_do(served: str, body: dict, param: str) -> None:
    base = {"model": "s2a", "prompt": PREFIX, "echo": True, "max_tokens": 0, "logprobs": 1}
    r = httpx.post(served + "/completions", json={**base, **body}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_the_endpoint_needs_the_key_and_an_upstream_that_scores() -> None:
    body = {"model": "s2a", "prompt": PREFIX, "echo": True, "max_tokens": 0}
    with running_server(FakeLogprobModel(default="x"), ServerConfig(api_key="sekret")) as url:
        assert httpx.post(url + "/completions", json=body, timeout=30).status_code == 401
        r = httpx.post(url + "/completions", json=body, headers={"Authorization": "Bearer sekret"}, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["code"] == "scoring_unavailable"
        assert "sekret" not in r.text


def test_the_question_filter_runs_through_the_server(served: str) -> None:
    from graphs.s2a import create_s2a_graph
    from graphs.s2a.likelihood import question_gains, question_pairs

    model = OpenAIModel("s2a", base_url=served, api_key="unused", text_scores=True)
    context, question = "Ann has 3 apples. Bob's cat is 9 years old. She buys 2 more.", "How many apples does she have?"
    out = create_s2a_graph(model, mode="filter", filter_signal="question", answer_max_tokens=2).invoke(
        {"question": f"{context} {question}"})
    scores = out["sentence_scores"]
    assert [s["text"] for s in scores] == ["Ann has 3 apples.", "Bob's cat is 9 years old.", "She buys 2 more."]
    replies = model.score_texts(question_pairs([s["text"] for s in scores], question))
    assert [s["score"] for s in scores] == pytest.approx(question_gains(replies), abs=1e-4)
    assert out["removed"] == [s["text"] for s in scores if not s["kept"]]


def test_the_middleware_scores_through_a_served_model(served: str) -> None:
    from langchain.agents import create_agent

    from graphs.s2a import create_s2a_graph
    from sc_chains.chat_model import ChatLogprobModel
    from sc_chains.middleware import S2AMiddleware

    model = OpenAIModel("baseline", base_url=served, api_key="unused", text_scores=True)
    chat = ChatLogprobModel(model, max_tokens=4)
    agent = create_agent(chat, middleware=[S2AMiddleware(chat, rewrite="irrelevant", mode="filter",
                                                         filter_signal="question")])
    question = "Ann has 3 apples. Bob's cat is 9 years old. She buys 2 more. How many apples does she have?"
    events = [c for m, c in agent.stream({"messages": [("user", question)]}, stream_mode=["custom", "values"])
              if m == "custom" and c["event"] == "s2a.filter"]
    graph = create_s2a_graph(model, mode="filter", filter_signal="question", answer_max_tokens=1)
    want = [s["score"] for s in graph.invoke({"question": question})["sentence_scores"]]
    assert [s["score"] for s in events[0]["scores"]] == pytest.approx(want, abs=1e-4)


def test_the_cli_opts_in_with_a_model_option(served: str, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from sc_chains.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    question = "Ann has 3 apples. Bob's cat is 9 years old. How many apples does she have?"
    base = ["run", "s2a-filter-question", question, "--model", "openai:baseline", "--base-url", served,
            "--max-tokens", "2", "--json"]
    assert main([*base, "--model-option", "text_scores=true"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["sentence_scores"]) == 2
    assert main(base) == 1
    assert "--model-option text_scores=true" in capsys.readouterr().err


def test_a_text_longer_than_the_context_window_is_refused(tiny, served: str) -> None:  # noqa: ANN001
    from adapters.errors import ContextWindowExceededError

    long = "ab " * tiny.context_window
    with pytest.raises(ContextWindowExceededError, match="shorten the prompt"):
        tiny.score_texts([("x", long)])
    r = httpx.post(served + "/completions", json={"model": "s2a", "prompt": "x" + long, "echo": True,
                                                  "max_tokens": 0}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
