"""Chain graphs in LangGraph's ``stream_mode="messages"``: the final answer's tokens, one by one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from adapters.fake import FakeLogprobModel
from adapters.types import Generation
from graphs.leco import create_leco_graph
from graphs.s2a import create_s2a_graph

Q = "Tom has 3 apples. I think the answer is 9. He buys 4 more. How many apples does he have?"
REWRITE = (
    "Unbiased text context (includes all content except user's bias): Tom has 3 apples. He buys 4 more.\n"
    "Question/Query (does not include user bias/preference): How many apples does he have?"
)
ANSWER = "Step 1: 3 + 4 = 7.\nThe answer is 7."


class StreamingFake(FakeLogprobModel):
    """The scripted fake with the adapters' stream protocol: one delta per token, usage last."""

    def stream(self, messages: object, **kwargs: object) -> Iterator[Generation]:
        gen = self.generate(messages, **kwargs)
        toks = gen.tokens or ()
        for i, t in enumerate(toks):
            last = i == len(toks) - 1
            yield replace(gen, text=t.token, tokens=(t,), finish_reason=gen.finish_reason if last else None)

    async def astream(self, messages: object, **kwargs: object):  # type: ignore[override]
        for d in self.stream(messages, **kwargs):
            yield d


def _messages(chunks: list) -> list[tuple[str, dict]]:
    return [(c[0].text, c[1]) for c in chunks]


def test_s2a_answer_streams_token_by_token_and_the_rewrite_does_not() -> None:
    graph = create_s2a_graph(StreamingFake([REWRITE, ANSWER]))
    pieces = _messages(list(graph.stream({"question": Q}, stream_mode="messages")))
    texts = [t for t, _ in pieces if t]
    assert len(texts) > 5 and "".join(texts) == ANSWER
    assert all("sc_chains:s2a:answer" in meta["tags"] for _, meta in pieces)
    out = create_s2a_graph(StreamingFake([REWRITE, ANSWER])).invoke({"question": Q})
    assert out["response"] == ANSWER and out["usage"]["calls"] == 2  # the joined reply is the same


async def test_async_stream_and_the_all_and_none_policies() -> None:
    graph = create_s2a_graph(StreamingFake([REWRITE, ANSWER]), stream="all")
    chunks = [c async for c in graph.astream({"question": Q}, stream_mode="messages")]
    text = "".join(c[0].text for c in chunks)
    assert text == REWRITE + ANSWER
    quiet = create_s2a_graph(StreamingFake([REWRITE, ANSWER]), stream="none")
    assert list(quiet.stream({"question": Q}, stream_mode="messages")) == []


def test_leco_streams_the_chosen_answer_or_every_attempt() -> None:
    script = [ANSWER, ANSWER]
    graph = create_leco_graph(StreamingFake(script))
    chunks = list(graph.stream({"question": Q}, stream_mode="messages"))
    texts = [c[0].text for c in chunks if c[0].text]
    out = create_leco_graph(StreamingFake(script)).invoke({"question": Q})
    assert len(texts) > 5 and "".join(texts) == out["response"]  # once chosen, piece by piece
    assert all("sc_chains:leco:answer" in meta["tags"] for _, meta in chunks)
    chunks = list(create_leco_graph(StreamingFake(script), stream="all").stream({"question": Q}, stream_mode="messages"))
    assert "".join(c[0].text for c in chunks).count("The answer is 7.") == 2  # both attempts, live
    assert list(create_leco_graph(StreamingFake(script), stream="none").stream({"question": Q}, stream_mode="messages")) == []


def test_adapter_without_stream_gives_one_chunk_and_a_bad_policy_is_rejected() -> None:
    chunks = list(create_s2a_graph(FakeLogprobModel([REWRITE, ANSWER])).stream({"question": Q}, stream_mode="messages"))
    assert "".join(c[0].text for c in chunks) == ANSWER
    from adapters.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        create_s2a_graph(FakeLogprobModel(), stream="some")



@pytest.mark.parametrize("factory", [create_leco_graph, create_s2a_graph])
@pytest.mark.parametrize("bad", [{}, {"question": 123}, {"question": " \n "}, {"question": None}])
def test_bad_questions_are_typed_errors_before_any_call(factory, bad) -> None:
    from adapters.errors import InvalidRequestError

    model = FakeLogprobModel(["x"])
    with pytest.raises(InvalidRequestError) as err:
        factory(model).invoke(bad)
    assert err.value.param == "question" and "non-empty string" in err.value.fix
    assert model.calls == []


async def test_leco_chosen_answer_streams_under_astream_too() -> None:
    graph = create_leco_graph(StreamingFake([ANSWER, ANSWER]))
    chunks = [c async for c in graph.astream({"question": Q}, stream_mode="messages")]
    assert "".join(c[0].text for c in chunks) == ANSWER


class CountingFake(StreamingFake):
    """Records which entry point served each call: a stream, or the plain (batchable) request."""

    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.entries: list[str] = []

    def stream(self, messages: object, **kwargs: object) -> Iterator[Generation]:
        self.entries.append("stream")
        return super().stream(messages, **kwargs)

    def generate(self, messages: object, **kwargs: object) -> Generation:  # type: ignore[override]
        if not self.entries or self.entries[-1] != "stream":
            self.entries.append("generate")
        return super().generate(messages, **kwargs)

    async def agenerate(self, messages: object, **kwargs: object) -> Generation:  # type: ignore[override]
        self.entries.append("generate")
        return super().generate(messages, **kwargs)


def test_a_final_call_streams_only_when_someone_listens() -> None:
    # under invoke/ainvoke nobody reads the messages stream: the final answer is a plain request,
    # which a local model batches with concurrent ones (a stream decodes alone, under the lock)
    import asyncio

    for run in (lambda g: g.invoke({"question": Q}), lambda g: asyncio.run(g.ainvoke({"question": Q}))):
        fake = CountingFake([REWRITE, ANSWER])
        out = run(create_s2a_graph(fake))
        assert out["answer"] == "7" and fake.entries == ["generate", "generate"]
    fake = CountingFake([REWRITE, ANSWER])
    chunks = list(create_s2a_graph(fake).stream({"question": Q}, stream_mode="messages"))
    assert fake.entries == ["generate", "stream"] and len(chunks) > 2
