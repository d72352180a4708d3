"""parse_logprobs on literal provider shapes, and ChatModelAdapter over in-process chat models."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from adapters.errors import (
    InvalidRequestError,
    LogprobsUnavailableError,
    MalformedResponseError,
)
from adapters.langchain import ChatModelAdapter, parse_logprobs, trim_to_text
from adapters.specs import resolve_model


def triples(tokens):
    return [(t.token, t.logprob, t.offset, [(a.token, a.logprob) for a in t.top_logprobs]) for t in tokens]


# -- parse_logprobs: one test per provider shape -------------------------------------------------
def test_openai_chat_shape():
    md = {"logprobs": {"content": [
        {"token": "The", "logprob": -0.5, "bytes": [84, 104, 101],
         "top_logprobs": [{"token": "A", "logprob": -1.5}, {"token": "The", "logprob": -0.5}]},
        {"token": " end", "logprob": -0.25, "bytes": None, "top_logprobs": []},
    ]}}  # fmt: skip
    assert triples(parse_logprobs(md)) == [
        ("The", -0.5, 0, [("The", -0.5), ("A", -1.5)]),  # alternatives sorted, most likely first
        (" end", -0.25, 3, []),
    ]
    assert triples(parse_logprobs(md, top_k=1))[0][3] == [("The", -0.5)]


def test_openai_split_utf8_character_decodes_from_bytes():
    # OpenAI splits "é" (0xC3 0xA9) over two byte tokens named "bytes:\\xc3" and "bytes:\\xa9".
    md = {"logprobs": {"content": [
        {"token": "caf", "logprob": -0.1, "bytes": [99, 97, 102], "top_logprobs": []},
        {"token": "bytes:\\xc3", "logprob": -0.2, "bytes": [195], "top_logprobs": []},
        {"token": "bytes:\\xa9", "logprob": -0.3, "bytes": [169], "top_logprobs": []},
        {"token": "!", "logprob": -0.4, "bytes": [33], "top_logprobs": []},
    ]}}  # fmt: skip
    toks = parse_logprobs(md)
    assert "".join(t.token for t in toks) == "café!"
    assert [(t.token, t.offset) for t in toks] == [("caf", 0), ("", 3), ("é", 3), ("!", 4)]


def test_legacy_completions_shape():
    md = {"logprobs": {"tokens": [" 4", "."], "token_logprobs": [-0.1, -0.7],
                       "top_logprobs": [{" 4": -0.1, " 5": -2.3}, {".": -0.7}], "text_offset": [10, 12]}}  # fmt: skip
    assert triples(parse_logprobs(md)) == [(" 4", -0.1, 0, [(" 4", -0.1), (" 5", -2.3)]), (".", -0.7, 2, [(".", -0.7)])]
    no_tops = {"logprobs": {"tokens": ["a"], "token_logprobs": [-1.0], "top_logprobs": None}}
    assert triples(parse_logprobs(no_tops)) == [("a", -1.0, 0, [])]


def test_google_logprobs_result_shape():
    md = {"logprobs_result": {
        "chosen_candidates": [{"token": "Hi", "log_probability": -0.2, "token_id": 7},
                              {"token": " you", "log_probability": -1.1}],
        "top_candidates": [{"candidates": [{"token": "Hello", "log_probability": -1.9},
                                           {"token": "Hi", "log_probability": -0.2}]},
                           {"candidates": [{"token": " you", "log_probability": -1.1}]}],
    }}  # fmt: skip
    assert triples(parse_logprobs(md)) == [
        ("Hi", -0.2, 0, [("Hi", -0.2), ("Hello", -1.9)]),
        (" you", -1.1, 2, [(" you", -1.1)]),
    ]
    camel = {"logprobsResult": {"chosenCandidates": [{"token": "x", "logProbability": -3.0}]}}
    assert triples(parse_logprobs(camel)) == [("x", -3.0, 0, [])]


def test_ollama_list_shape():
    md = {"model": "llama3", "done_reason": "stop", "logprobs": [
        {"token": "Yes", "logprob": -0.05, "bytes": [89, 101, 115],
         "top_logprobs": [{"token": "Yes", "logprob": -0.05}, {"token": "No", "logprob": -3.2}]},
        {"token": ".", "logprob": -0.6, "top_logprobs": []},
    ]}  # fmt: skip
    assert triples(parse_logprobs(md)) == [("Yes", -0.05, 0, [("Yes", -0.05), ("No", -3.2)]), (".", -0.6, 3, [])]


@pytest.mark.parametrize("md", [None, {}, {"logprobs": None}, {"logprobs": {"content": None}}, {"finish_reason": "stop"}])
def test_no_logprobs_is_none(md):
    assert parse_logprobs(md) is None


@pytest.mark.parametrize(
    "md",
    [
        {"logprobs": 3},
        {"logprobs": {"content": [{"token": "a"}]}},
        {"logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1.0]}},
        {"logprobs": {"content": [{"token": "a", "logprob": "high"}]}},
        {"logprobs_result": {"chosen_candidates": [{"token": "a"}]}},
    ],
)
def test_wrong_shapes_are_malformed(md):
    with pytest.raises(MalformedResponseError):
        parse_logprobs(md)


def test_trim_to_text_drops_tokens_past_a_stop_cut():
    toks = parse_logprobs({"logprobs": {"tokens": ["1", ",", " 2", ","], "token_logprobs": [-1.0] * 4}})
    assert [t.token for t in trim_to_text(toks, "1, 2")] == ["1", ",", " 2"]
    assert trim_to_text(toks, "") == ()


# -- ChatModelAdapter -------------------------------------------------------------------------------
class OllamaLike(BaseChatModel):
    """A real chat model with Ollama's field names that echoes back what it was called with."""

    model: str = "llama3"
    num_predict: int | None = None
    temperature: float | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    seen: list = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "ollama-like"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.seen.append({"messages": messages, "stop": stop, "kwargs": kwargs, "num_predict": self.num_predict,
                          "temperature": self.temperature, "seed": self.seed, "logprobs": self.logprobs,
                          "top_logprobs": self.top_logprobs})  # fmt: skip
        md: dict[str, Any] = {"done_reason": "length", "model": "llama3"}
        if self.logprobs:
            md["logprobs"] = [
                {"token": "Yes", "logprob": -0.05, "top_logprobs": [{"token": "Yes", "logprob": -0.05}, {"token": "No", "logprob": -3.0}]},
                {"token": " sir", "logprob": -0.5, "top_logprobs": [{"token": " sir", "logprob": -0.5}]},
            ]  # fmt: skip
        msg = AIMessage(
            content="Yes sir",
            response_metadata=md,
            usage_metadata={"input_tokens": 11, "output_tokens": 2, "total_tokens": 13, "input_token_details": {"cache_read": 4}},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


def test_langchain_model_sets_fields_converts_messages_and_reads_logprobs():
    chat = OllamaLike()
    seen = chat.seen  # shared by the per-call copies (model_copy is shallow)
    m = ChatModelAdapter(chat)
    gen = m.generate([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Ok?"}],
                     max_tokens=5, stop=["\n"], seed=1, top_logprobs=0)  # fmt: skip
    call = seen[0]
    assert call["num_predict"] == 5 and call["temperature"] == 0.0 and call["seed"] == 1
    assert call["logprobs"] is True and call["top_logprobs"] == 1 and call["stop"] == ["\n"]
    assert [type(x) for x in call["messages"]] == [SystemMessage, HumanMessage]
    assert gen.text == "Yes sir" and [(t.token, t.offset) for t in gen.tokens] == [("Yes", 0), (" sir", 3)]
    assert all(t.top_logprobs == () for t in gen.tokens)  # asked for 0 alternatives
    assert gen.finish_reason == "length" and gen.model == "llama3"
    assert gen.usage.prompt_tokens == 11 and gen.usage.completion_tokens == 2 and gen.usage.cached_tokens == 4
    assert chat.logprobs is None and chat.num_predict is None  # the user's model is left untouched


async def test_langchain_model_async_batch_and_bound_kwargs():
    chat = OllamaLike()
    seen = chat.seen
    m = ChatModelAdapter(chat.bind(keep_alive=5))
    gen = await m.agenerate("Hi", top_logprobs=2)
    assert [len(t.top_logprobs) for t in gen.tokens] == [2, 1] and seen[0]["kwargs"] == {"keep_alive": 5}
    gens = await m.abatch(["a", "b"], max_concurrency=2)
    assert [g.text for g in gens] == ["Yes sir", "Yes sir"] and len(seen) == 3


def test_model_without_logprobs_raises_with_how_to_enable():
    fake = GenericFakeChatModel(messages=iter([AIMessage(content="no logprobs here")]))
    with pytest.raises(LogprobsUnavailableError) as e:
        ChatModelAdapter(fake, name="fake-chat").generate("Hi")
    assert e.value.model == "fake-chat" and "ChatOpenAI(logprobs=True)" in str(e.value)
    assert "bind(logprobs=True, top_logprobs=5)" in str(e.value)


def test_resolve_model_wraps_a_chat_model_and_rejects_other_objects():
    m = resolve_model(OllamaLike())
    assert isinstance(m, ChatModelAdapter) and m.capabilities.prefill is False
    with pytest.raises(InvalidRequestError):
        ChatModelAdapter(object())
    with pytest.raises(InvalidRequestError):
        m.generate("Hi", prefill="Sure,")
