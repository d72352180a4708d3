"""The adapter vocabulary: validation with clear errors, and OpenAI-shape conversion both ways."""

from __future__ import annotations

import math

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from adapters.errors import InvalidRequestError, SCChainsError
from adapters.types import (
    Generation,
    GenerationRequest,
    TokenLogprob,
    TopLogprob,
    Usage,
    normalize_messages,
)


def test_normalize_messages_accepts_the_usual_shapes() -> None:
    assert normalize_messages("hi") == [{"role": "user", "content": "hi"}]
    assert normalize_messages([("system", "s"), ("human", "h")]) == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "h"},
    ]
    lc = normalize_messages([SystemMessage("s"), HumanMessage("h"), AIMessage("a")])
    assert [m["role"] for m in lc] == ["system", "user", "assistant"]
    parts = normalize_messages([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    assert parts[0]["content"] == "ab"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "user", "content": 3}], "messages[0].content"),
        ([{"role": "user", "content": None}], "messages[0].content"),
        ([{"role": "wizard", "content": "x"}], "messages[0].role"),
        ([42], "messages[0]"),
        (None, "messages"),
    ],
)
def test_bad_messages_name_the_value(messages, param) -> None:
    with pytest.raises(InvalidRequestError) as info:
        normalize_messages(messages)
    assert info.value.param == param
    assert param in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, SCChainsError)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_logprobs": -1}, "top_logprobs"),
        ({"seed": "x"}, "seed"),
        ({"stop": ("",)}, "stop"),
        ({"prefill": 3}, "prefill"),
    ],
)
def test_bad_request_arguments(kwargs, param) -> None:
    with pytest.raises(InvalidRequestError) as info:
        GenerationRequest.build("hi", **kwargs)
    assert info.value.param == param
    assert repr(kwargs[param]) in str(info.value)


def test_request_normalises_stop_and_empty_prefill() -> None:
    r = GenerationRequest.build("hi", stop="\n", prefill="")
    assert r.stop == ("\n",) and r.prefill is None


def test_openai_shape_round_trip() -> None:
    payload = {
        "content": [
            {"token": "Hello", "logprob": -0.1, "bytes": [72, 101, 108, 108, 111],
             "top_logprobs": [{"token": "Hello", "logprob": -0.1, "bytes": [72, 101, 108, 108, 111]},
                              {"token": "Hi", "logprob": -2.5, "bytes": [72, 105]}]},
            {"token": " world", "logprob": -0.7, "bytes": list(b" world"), "top_logprobs": []},
        ]
    }
    gen = Generation.from_openai_logprobs(payload, model="m", usage=Usage(3, 2))
    assert gen.text == "Hello world"
    assert [t.offset for t in gen.tokens] == [0, 5]
    assert gen.tokens[0].top_logprobs[1] == TopLogprob("Hi", -2.5)
    assert math.isclose(gen.tokens[1].prob, math.exp(-0.7))
    assert gen.to_openai_logprobs() == payload
    assert gen.usage.total_tokens == 5


def test_from_openai_without_logprobs_gives_none() -> None:
    gen = Generation.from_openai_logprobs(None, text="x")
    assert gen.tokens is None and gen.text == "x"


def test_usage_adds_up() -> None:
    total = Usage(1, 2, 0) + Usage(10, 20, 5)
    assert total.to_dict() == {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33, "cached_tokens": 5}


def test_full_text_includes_prefill() -> None:
    g = Generation(text=" world", tokens=(TokenLogprob(" world", -0.1, 0),), prefill="Hello")
    assert g.full_text == "Hello world"
