"""ChatLogprobModel: a real LangChain chat model over a logprob adapter (fake and tiny HF)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from adapters.errors import InvalidRequestError, SCChainsError, UnknownModelSpecError
from adapters.fake import FakeLogprobModel, FakeReply
from adapters.types import Generation, TokenLogprob, Usage
from sc_chains.chat_model import ChatLogprobModel

REPLY = FakeReply("The answer is 5.\nDone", overrides={"5": -1.5})


def _chat(**fields: Any) -> tuple[ChatLogprobModel, FakeLogprobModel]:
    fake = FakeLogprobModel(default=REPLY, name="scripted")
    return ChatLogprobModel(fake, **fields), fake


def _expected(**request: Any) -> Generation:
    """What the adapter itself returns for the same request (the ground truth)."""
    return FakeLogprobModel(default=REPLY, name="scripted").generate("hi", **request)


def _concat(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    return total


def test_is_a_langchain_chat_model_and_takes_a_spec_or_adapter() -> None:
    chat, fake = _chat()
    assert isinstance(chat, BaseChatModel)
    assert chat.model is fake
    assert ChatLogprobModel(model=fake).model is fake
    assert chat._llm_type == "sc-chains-logprob"
    assert chat._identifying_params["model_name"] == "scripted"


def test_invoke_returns_openai_shaped_logprobs_usage_and_finish_reason() -> None:
    chat, _ = _chat(top_logprobs=2)
    msg = chat.invoke("hi")
    gen = _expected(top_logprobs=2)
    assert isinstance(msg, AIMessage)
    assert msg.content == gen.text == "The answer is 5.\nDone"
    assert msg.response_metadata["logprobs"] == gen.to_openai_logprobs()
    content = msg.response_metadata["logprobs"]["content"]
    assert [c["token"] for c in content] == ["The", " answer", " is", " 5.", "\n", "Done"]
    assert content[3]["logprob"] == -1.5
    assert all(len(c["top_logprobs"]) == 2 for c in content)
    assert content[0]["bytes"] == list(b"The")
    assert msg.response_metadata["finish_reason"] == "stop"
    assert msg.response_metadata["model_name"] == "scripted"
    assert msg.usage_metadata == {"input_tokens": 1, "output_tokens": 6, "total_tokens": 7}


def test_call_kwargs_override_fields_and_reach_the_adapter() -> None:
    chat, fake = _chat(max_tokens=50, temperature=0.3, top_p=0.9, seed=1, stop=["Done"])
    msg = chat.invoke("hi")
    assert msg.content == "The answer is 5.\n"
    req = fake.calls[-1]
    assert (req.max_tokens, req.temperature, req.top_p, req.seed, req.stop, req.top_logprobs) == (
        50, 0.3, 0.9, 1, ("Done",), 0,
    )
    msg = chat.invoke("hi", max_tokens=2, temperature=0.0, seed=9, top_logprobs=3, stop=[" is"])
    req = fake.calls[-1]
    assert (req.max_tokens, req.temperature, req.seed, req.top_logprobs, req.stop) == (2, 0.0, 9, 3, (" is",))
    assert msg.content == "The answer"
    assert msg.response_metadata["finish_reason"] == "stop"
    assert chat.invoke("hi", max_tokens=2, stop=None).response_metadata["finish_reason"] == "length"


def test_prefill_passes_through_to_adapters_that_support_it() -> None:
    chat, fake = _chat()
    msg = chat.invoke("hi", prefill="The answer is")
    assert fake.calls[-1].prefill == "The answer is"
    assert msg.response_metadata["prefill"] == "The answer is"
    no_prefill = ChatLogprobModel(FakeLogprobModel(default="x", prefill=False))
    with pytest.raises(InvalidRequestError) as err:
        no_prefill.invoke("hi", prefill="The answer is")
    assert err.value.param == "prefill"


def test_messages_are_converted_with_their_roles() -> None:
    chat, fake = _chat()
    chat.invoke([SystemMessage("Be brief."), HumanMessage("2+3?"), AIMessage("5"), HumanMessage("Sure?")])
    assert list(fake.calls[-1].messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": "5"},
        {"role": "user", "content": "Sure?"},
    ]


def test_bad_fields_and_kwargs_raise_typed_errors() -> None:
    fake = FakeLogprobModel(default=REPLY)
    with pytest.raises(InvalidRequestError) as err:
        ChatLogprobModel(fake, max_tokens=0)
    assert err.value.param == "max_tokens"
    with pytest.raises(InvalidRequestError) as err:
        ChatLogprobModel(fake, top_logprobs=21)
    assert err.value.param == "top_logprobs"
    with pytest.raises(UnknownModelSpecError) as err:
        ChatLogprobModel(model="nope:thing")
    assert "nope:thing" in str(err.value)
    chat = ChatLogprobModel(fake)
    with pytest.raises(InvalidRequestError) as err:
        chat.invoke("hi", frequency_penalty=1.0)
    assert err.value.param == "frequency_penalty"
    with pytest.raises(SCChainsError):
        chat.invoke("hi", max_tokens=-1)


def test_stream_yields_one_chunk_per_token_then_totals() -> None:
    chat, _ = _chat(top_logprobs=1)
    chunks = list(chat.stream("hi"))
    gen = _expected(top_logprobs=1)
    assert [c.content for c in chunks[:-1]] == [t.token for t in gen.tokens]
    for chunk, tok in zip(chunks, gen.tokens):
        assert chunk.response_metadata["logprobs"]["content"] == [tok.to_openai()]
        assert chunk.usage_metadata is None
    last = chunks[-1]
    assert last.content == "" and last.chunk_position == "last"
    assert last.response_metadata["finish_reason"] == "stop"
    assert last.usage_metadata == {"input_tokens": 1, "output_tokens": 6, "total_tokens": 7}
    total = _concat(chunks)
    assert total.content == gen.text
    assert total.response_metadata["logprobs"] == gen.to_openai_logprobs()
    assert total.response_metadata["model_name"] == "scripted"
    assert total.usage_metadata["total_tokens"] == 7


async def test_async_paths_match_sync() -> None:
    chat, _ = _chat(top_logprobs=2)
    sync = chat.invoke("hi")
    amsg = await chat.ainvoke("hi")
    assert amsg.content == sync.content
    assert amsg.response_metadata["logprobs"] == sync.response_metadata["logprobs"]
    chunks = [c async for c in chat.astream("hi", max_tokens=3)]
    assert len(chunks) == 4
    total = _concat(chunks)
    assert total.content == "The answer is"
    assert total.response_metadata["finish_reason"] == "length"
    assert len(total.response_metadata["logprobs"]["content"]) == 3
    results = await chat.abatch(["a", "b"])
    assert [r.content for r in results] == [sync.content] * 2


async def test_agenerate_uses_the_adapters_async_path() -> None:
    class AsyncOnly(FakeLogprobModel):
        def _generate(self, request: Any) -> Generation:  # the sync path must not run
            raise AssertionError("sync path used")

        async def _agenerate(self, request: Any) -> Generation:
            return FakeLogprobModel._generate(self, request)

    chat = ChatLogprobModel(AsyncOnly(default="async reply"))
    assert (await chat.ainvoke("hi")).content == "async reply"
    assert _concat([c async for c in chat.astream("hi")]).content == "async reply"


def test_batch_and_lcel_composition() -> None:
    fake = FakeLogprobModel(["one", "two", "three"])
    chat = ChatLogprobModel(fake)
    assert sorted(m.content for m in chat.batch(["a", "b", "c"])) == ["one", "three", "two"]
    fake.add("Paris")
    chain = ChatPromptTemplate.from_messages([("user", "Capital of {country}?")]) | chat | StrOutputParser()
    assert chain.invoke({"country": "France"}) == "Paris"
    assert fake.calls[-1].messages[0]["content"] == "Capital of France?"


def test_stream_is_faithful_when_token_strings_differ_from_the_text() -> None:
    """A token's string may differ from its span (half a character decoded as U+FFFD): chunks
    follow the offsets, so they still add up to the text."""
    gen = Generation(
        text="café ok",
        tokens=(
            TokenLogprob("caf", -0.1, 0),
            TokenLogprob("\ufffd", -0.2, 3),  # first byte of 'é'
            TokenLogprob("é", -0.3, 3),
            TokenLogprob(" ok", -0.4, 4),
        ),
        usage=Usage(3, 4, cached_tokens=2),
        model="bytes",
    )
    chat = ChatLogprobModel(FakeLogprobModel([gen, gen]))
    chunks = list(chat.stream("hi"))
    assert [c.content for c in chunks] == ["caf", "", "é", " ok", ""]
    total = _concat(chunks)
    msg = chat.invoke("hi")
    assert total.content == msg.content == "café ok"
    assert msg.usage_metadata == total.usage_metadata == {
        "input_tokens": 3, "output_tokens": 4, "total_tokens": 7, "input_token_details": {"cache_read": 2}
    }
    assert [c["logprob"] for c in total.response_metadata["logprobs"]["content"]] == [-0.1, -0.2, -0.3, -0.4]


def test_a_model_without_logprobs_says_so_with_none() -> None:
    chat = ChatLogprobModel(FakeLogprobModel(default="plain text", logprobs=False))
    assert chat.invoke("hi").response_metadata["logprobs"] is None
    chunks = list(chat.stream("hi"))
    assert len(chunks) == 2 and chunks[0].content == "plain text"
    assert _concat(chunks).response_metadata["logprobs"] is None


def test_stream_events_carry_each_token() -> None:
    chat, _ = _chat()

    async def events() -> list[Any]:
        return [e async for e in chat.astream_events("hi", version="v2") if e["event"] == "on_chat_model_stream"]

    import asyncio

    got = asyncio.run(events())
    assert "".join(e["data"]["chunk"].content for e in got) == REPLY.text
    assert sum(len(e["data"]["chunk"].response_metadata.get("logprobs", {}).get("content", [])) for e in got) == 6


def test_round_trip_through_langchain_model_gives_the_same_tokens() -> None:
    from adapters.langchain import ChatModelAdapter

    chat, _ = _chat(top_logprobs=2)
    back = ChatModelAdapter(chat)
    gen = back.generate("hi", top_logprobs=2)
    want = _expected(top_logprobs=2)
    assert gen.text == want.text
    assert [(t.token, t.logprob, t.offset) for t in gen.tokens] == [
        (t.token, t.logprob, t.offset) for t in want.tokens
    ]
    assert [[(a.token, a.logprob) for a in t.top_logprobs] for t in gen.tokens] == [
        [(a.token, a.logprob) for a in t.top_logprobs] for t in want.tokens
    ]


# -- the real logits path: a tiny random Hugging Face model --------------------------------------
@pytest.fixture(scope="module")
def tiny() -> ChatLogprobModel:
    return ChatLogprobModel(model="hf:tiny-random", max_tokens=6, top_logprobs=2)


def _finite_logprobs(msg: AIMessage | AIMessageChunk, k: int) -> int:
    """Checks every token's logprobs; returns the token count (usage may add an unshown EOS)."""
    content = msg.response_metadata["logprobs"]["content"]
    assert 0 < len(content) <= msg.usage_metadata["output_tokens"]
    assert "".join(c["token"] for c in content) == msg.content
    for c in content:
        assert math.isfinite(c["logprob"]) and c["logprob"] <= 0
        assert len(c["top_logprobs"]) == k
        assert all(math.isfinite(a["logprob"]) for a in c["top_logprobs"])
    return len(content)


def test_tiny_hf_invoke_stream_batch(tiny: ChatLogprobModel) -> None:
    msg = tiny.invoke("Hello")
    n = _finite_logprobs(msg, 2)
    assert n <= msg.usage_metadata["output_tokens"] <= 6
    chunks = list(tiny.stream("Hello"))
    total = _concat(chunks)
    assert total.content == msg.content  # greedy: same reply
    assert _finite_logprobs(total, 2) == n
    keys = ("input_tokens", "output_tokens", "total_tokens")  # the 2nd call may reuse the KV cache
    assert [total.usage_metadata[k] for k in keys] == [msg.usage_metadata[k] for k in keys]
    assert len(chunks) == n + 1
    batch = tiny.batch(["Hello", "Hello"])
    assert [b.content for b in batch] == [msg.content] * 2


async def test_tiny_hf_ainvoke_and_astream(tiny: ChatLogprobModel) -> None:
    msg = await tiny.ainvoke("Hello", max_tokens=3, top_logprobs=1)
    assert _finite_logprobs(msg, 1) <= 3
    total = _concat([c async for c in tiny.astream("Hello", max_tokens=3, top_logprobs=1)])
    assert total.content == msg.content
