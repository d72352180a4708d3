"""Incremental streaming: adapters yield deltas while generating; ChatLogprobModel streams tokens.

The "first chunk before the end" tests hold generation at a gate (a forward pre-hook on the
real tiny model that waits for an event) so they hold on a busy machine: the first chunk must
arrive while the decode loop is provably still paused mid-reply.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from conftest import DROP, reply

from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from adapters.fake import FakeLogprobModel
from adapters.hf.tiny import tiny_random_model
from adapters.openai_compat import OpenAIModel
from adapters.retry import RetryPolicy
from adapters.streaming import is_last_chunk, join_chunks
from sc_chains.chat_model import ChatLogprobModel

GATE_TIMEOUT_S = 120.0
"""Upper bound on any wait in these tests (a broken implementation fails, never hangs)."""


@pytest.fixture
def tiny():
    return tiny_random_model(kv_reuse=True, coalesce=False)


class Gate:
    """Pauses the model's forward pass number ``after`` (and later ones) until :meth:`open`."""

    def __init__(self, torch_model, after: int) -> None:
        self.calls = 0
        self.after = after
        self.paused = threading.Event()
        self._open = threading.Event()
        self._handle = torch_model.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.calls += 1
        if self.calls >= self.after and not self._open.is_set():
            self.paused.set()
            assert self._open.wait(GATE_TIMEOUT_S), "the test never opened the gate"

    def open(self) -> None:
        self._open.set()

    def remove(self) -> None:
        self._open.set()
        self._handle.remove()


def test_stream_deltas_join_to_generate(tiny):
    for kw in ({"max_tokens": 30, "top_logprobs": 3}, {"max_tokens": 40, "stop": ["e", "Lj"]}, {"max_tokens": 25, "prefill": "Sure"}):
        whole = tiny.generate("Hello", **kw)
        deltas = list(tiny.stream("Hello", **kw))
        assert all(not is_last_chunk(d) for d in deltas[:-1]) and is_last_chunk(deltas[-1])
        joined = join_chunks(deltas)
        assert joined.text == whole.text and joined.finish_reason == whole.finish_reason
        assert [(t.token, t.offset, t.token_id) for t in joined.tokens] == [(t.token, t.offset, t.token_id) for t in whole.tokens]
        assert [t.logprob for t in joined.tokens] == pytest.approx([t.logprob for t in whole.tokens], abs=1e-4)
        assert joined.usage.completion_tokens == whole.usage.completion_tokens
        assert joined.prefill == whole.prefill


def test_stream_with_a_stop_sequence_never_sends_text_it_takes_back(tiny):
    whole = tiny.generate("Hello", max_tokens=60)
    stop = whole.text[10:13]  # a 3-character stop the reply is known to contain
    deltas = list(tiny.stream("Hello", max_tokens=60, stop=[stop]))
    text = "".join(d.text for d in deltas)
    assert text == whole.text[: whole.text.index(stop)] and stop not in text
    assert deltas[-1].finish_reason == "stop"


def test_stream_validates_before_the_first_delta(tiny):
    with pytest.raises(InvalidRequestError):
        tiny.stream("hi", max_tokens=0)


def test_first_delta_arrives_while_the_decode_loop_is_paused(tiny):
    gate = Gate(tiny.model, after=4)  # prefill + 2 decode steps run, the 3rd step waits
    try:
        it = tiny.stream("Hello", max_tokens=300)
        first = next(it)
        assert gate.paused.wait(GATE_TIMEOUT_S)
        assert first.text and first.finish_reason is None  # generation is held: it cannot be over
        gate.open()
        rest = list(it)
    finally:
        gate.remove()
    assert len(rest) >= 3 and rest[-1].finish_reason is not None


def test_chat_model_stream_yields_a_token_before_generation_ends(tiny):
    chat = ChatLogprobModel(tiny, max_tokens=400, top_logprobs=1)
    gate = Gate(tiny.model, after=3)
    try:
        it = chat.stream("Tell me a long story")
        first = next(it)
        assert gate.paused.wait(GATE_TIMEOUT_S)
        assert first.content and first.response_metadata["logprobs"]["content"][0]["token"] == first.content
        gate.open()
        chunks = [first, *it]
    finally:
        gate.remove()
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert len(chunks) > 3 and merged.usage_metadata["output_tokens"] >= len(chunks) - 1
    assert len(merged.response_metadata["logprobs"]["content"]) == merged.usage_metadata["output_tokens"] - (
        merged.response_metadata["finish_reason"] == "stop"
    )


def test_chat_model_astream_yields_a_token_before_generation_ends(tiny):
    chat = ChatLogprobModel(tiny, max_tokens=400)

    async def run(gate: Gate):
        it = chat.astream("Tell me a long story").__aiter__()
        first = await asyncio.wait_for(it.__anext__(), GATE_TIMEOUT_S)
        paused = await asyncio.to_thread(gate.paused.wait, GATE_TIMEOUT_S)
        gate.open()  # generation could not have ended before this: the gate held it
        rest = [c async for c in it]
        return first, paused, rest

    gate = Gate(tiny.model, after=3)
    try:
        first, paused, rest = asyncio.run(run(gate))
    finally:
        gate.remove()
    assert first.content and paused and len(rest) > 2
    whole = chat.invoke("Tell me a long story")
    assert first.content + "".join(c.content for c in rest) == whole.content


def test_abandoned_stream_releases_the_model(tiny):
    it = tiny.stream("Hello", max_tokens=300)
    next(it)
    it.close()  # the consumer stops early; the decode thread must stop and release the lock
    done = threading.Event()
    out = {}

    def call():
        out["gen"] = tiny.generate("Hi", max_tokens=5)
        done.set()

    threading.Thread(target=call, daemon=True).start()
    assert done.wait(GATE_TIMEOUT_S) and out["gen"].usage.completion_tokens >= 1


def test_stream_error_in_the_producer_reaches_the_consumer(tiny):
    def boom(module, args):
        raise RuntimeError("device fell over")

    handle = tiny.model.register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="device fell over"):
            list(tiny.stream("Hello", max_tokens=5))
    finally:
        handle.remove()
    assert tiny.generate("Hello", max_tokens=3).text is not None


def test_adapters_without_streaming_yield_one_delta():
    fake = FakeLogprobModel(replies=["The answer is 5."])
    deltas = list(fake.stream("q"))
    assert len(deltas) == 1 and deltas[0].text == "The answer is 5." and is_last_chunk(deltas[0])

    async def run():
        fake.add("Async reply")
        return [d async for d in fake.astream("q")]

    assert [d.text for d in asyncio.run(run())] == ["Async reply"]


# -- OpenAI-compatible SSE ---------------------------------------------------------------------
def sse(*events, done: bool = True) -> str:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events]
    return ": keep-alive\n\n" + "".join(lines) + ("data: [DONE]\n\n" if done else "")


def chat_event(text, logprob=-0.5, finish=None, logprobs=True):
    lp = {"content": [{"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": [{"token": text, "logprob": logprob}]}]}
    return {"choices": [{"index": 0, "delta": {"content": text}, "logprobs": lp if logprobs else None, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}}}
FAST = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02)


def test_openai_stream_reads_sse_with_logprobs_and_usage(scripted_server):
    body = sse(chat_event("Hel"), chat_event("lo"), chat_event("!", finish="stop"), USAGE)
    srv = scripted_server([reply(503), reply(200, body, {"Content-Type": "text/event-stream"})])
    model = OpenAIModel("m", base_url=srv.base_url, api_key="k", retry=FAST)
    deltas = list(model.stream("hi", top_logprobs=1))
    assert [d.text for d in deltas] == ["Hel", "lo", "!", ""]
    g = join_chunks(deltas)
    assert g.text == "Hello!" and [t.offset for t in g.tokens] == [0, 3, 5]
    assert g.finish_reason == "stop" and (g.usage.prompt_tokens, g.usage.completion_tokens, g.usage.cached_tokens) == (7, 3, 4)
    sent = srv.requests[-1]["json"]
    assert sent["stream"] is True and sent["logprobs"] is True and sent["top_logprobs"] >= 1
    assert sent["stream_options"] == {"include_usage": True}


def test_openai_astream_and_chat_model_stream(scripted_server):
    body = sse(chat_event("A"), chat_event("B", finish="length"), USAGE)
    srv = scripted_server([reply(200, body)])
    model = OpenAIModel("m", base_url=srv.base_url, api_key="k", retry=FAST)

    async def run():
        return [d async for d in model.astream("hi")]

    assert join_chunks(asyncio.run(run())).text == "AB"
    chunks = list(ChatLogprobModel(model).stream("hi"))
    assert [c.content for c in chunks] == ["A", "B", ""]
    assert chunks[-1].response_metadata["finish_reason"] == "length"
    assert chunks[0].response_metadata["logprobs"]["content"][0]["logprob"] == -0.5


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_openai_stream_retries_before_the_first_byte(scripted_server, mode):
    """A dropped connection and a 503 before the stream starts are retried, by both readers."""
    body = sse(chat_event("A"), chat_event("B", finish="stop"), USAGE)
    srv = scripted_server([DROP, reply(503), reply(200, body, {"Content-Type": "text/event-stream"})])
    model = OpenAIModel("m", base_url=srv.base_url, api_key="k", retry=FAST)

    async def run():
        return [d async for d in model.astream("hi")]

    deltas = list(model.stream("hi")) if mode == "sync" else asyncio.run(run())
    assert join_chunks(deltas).text == "AB" and len(srv.requests) == 3


def test_openai_stream_without_logprobs_raises_typed(scripted_server):
    srv = scripted_server([reply(200, sse(chat_event("A", logprobs=False), chat_event("B", logprobs=False, finish="stop")))])
    model = OpenAIModel("m", base_url=srv.base_url, api_key="k", retry=FAST)
    with pytest.raises(LogprobsUnavailableError):
        list(model.stream("hi"))


# -- a real llama.cpp server -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.server
@pytest.mark.parametrize("template", [None, "chatml"], ids=["chat", "prefill-completions"])
def test_llama_server_stream_matches_generate(llama_server, template):
    from sc_chains.testing import LLAMA_MODEL_NAME

    model = OpenAIModel(LLAMA_MODEL_NAME, base_url=llama_server, api_key="x", chat_template=template)
    kw = {"max_tokens": 24, "top_logprobs": 2, "seed": 1}
    if template:
        kw["prefill"] = "The answer"
    whole = model.generate("What is 2 + 3?", **kw)
    deltas = list(model.stream("What is 2 + 3?", **kw))
    joined = join_chunks(deltas)
    assert len(deltas) > 2 and joined.text == whole.text and joined.finish_reason == whole.finish_reason
    assert [t.token for t in joined.tokens] == [t.token for t in whole.tokens]
    # the server reuses its prompt cache for the second request: logprobs move a little (seen: 0.05)
    assert [t.logprob for t in joined.tokens] == pytest.approx([t.logprob for t in whole.tokens], abs=0.15)
    assert joined.usage.completion_tokens == whole.usage.completion_tokens  # counted if not sent
    assert joined.usage.prompt_tokens in (0, whole.usage.prompt_tokens)  # 0: the server did not say
