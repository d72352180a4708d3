"""The loop protocol's Batch request: validation, drive/adrive, the graph driver (one super-step,
recorded, replayed, resumed), the S2A filter's relevance calls as one batch in every driver, and
the local adapter decoding them as rows of one batch."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any, TypedDict

import pytest
from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from adapters.hf import tiny_random_model
from adapters.types import Generation
from graphs.driver import build_loop_graph, execute, record_replies
from graphs.loop import MAX_BATCH, Batch, Emit, ModelCall, adrive, drive, one_by_one
from graphs.s2a import create_s2a_graph
from graphs.s2a.config import S2AConfig
from graphs.s2a.filter import MAX_SENTENCES, split_problem
from graphs.s2a.loop import RELEVANCE_TARGET, rewrite_loop
from sc_chains.middleware import S2AMiddleware
from sc_chains.testing import FakeLogprobChatModel

P = ("Tom has 3 apples. His sister Ann is 12 years old. He buys 4 more apples. "
     "How many apples does he have now?")
ANSWER = "3 + 4 = 7.\nThe answer is 7."


def side(text: str, role: str = "ask", target: str = "model") -> ModelCall:
    return ModelCall(role, messages=({"role": "user", "content": text},), max_tokens=4, target=target)


def batch_loop(words: tuple[str, ...]):
    """Ask one side call per word at once, emit, then one host call; return the texts."""
    replies = yield Batch(tuple(side(w) for w in words))
    yield Emit("toy.batch", {"texts": [r.text for r in replies]})
    last = yield ModelCall("final", extra=({"role": "user", "content": "done?"},), max_tokens=4, final=True)
    return {"texts": [r.text for r in replies], "last": last.text}


def echo(call: ModelCall) -> Generation:
    return Generation(text=call.messages[-1]["content"].upper() if call.messages else "END", tokens=())


# -- the request kind ------------------------------------------------------------------------------
@pytest.mark.parametrize(("calls", "why"), [
    ((), "1 to"),
    (tuple(side(str(i)) for i in range(MAX_BATCH + 1)), "1 to"),
    ([side("a")], "tuple"),
    ((ModelCall("ask", extra=({"role": "user", "content": "x"},)),), "side calls only"),
    ((ModelCall("ask", messages=({"role": "user", "content": "x"},), n=2),), "side calls only"),
    ((ModelCall("ask", messages=({"role": "user", "content": "x"},), final=True),), "side calls only"),
    ((side("a"), side("b", target="critic")), "target and role"),
    ((side("a"), side("b", role="other")), "target and role"),
])
def test_batch_is_validated(calls: Any, why: str) -> None:
    with pytest.raises(InvalidRequestError, match=why) as err:
        Batch(calls)
    assert err.value.param == "Batch.calls"


def test_batch_bound_covers_the_filter() -> None:
    assert MAX_SENTENCES <= MAX_BATCH
    assert len(Batch(tuple(side(str(i)) for i in range(MAX_BATCH))).calls) == MAX_BATCH


# -- drive / adrive --------------------------------------------------------------------------------
def test_drive_and_adrive_keep_the_batch_order() -> None:
    seen: list[Any] = []

    def call(req: Any) -> Any:
        seen.append(req)
        return [echo(c) for c in req.calls] if isinstance(req, Batch) else echo(req)

    events: list[Emit] = []
    out = drive(batch_loop(("a", "b", "c")), call, on_emit=events.append)
    assert out == {"texts": ["A", "B", "C"], "last": "END"}
    assert isinstance(seen[0], Batch) and len(seen) == 2  # the batch reached the executor as one request
    assert events[0].payload == {"texts": ["A", "B", "C"]}

    async def acall(req: Any) -> Any:
        if isinstance(req, Batch):  # concurrently, finishing in reverse order: the order still holds
            async def one(i: int, c: ModelCall) -> Generation:
                await asyncio.sleep(0.01 * (len(req.calls) - i))
                return echo(c)
            return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(req.calls))))
        return echo(req)

    assert asyncio.run(adrive(batch_loop(("a", "b", "c")), acall, on_emit=lambda e: None)) == out
    assert drive(batch_loop(("a", "b", "c")), one_by_one(echo), on_emit=lambda e: None) == out


@pytest.mark.parametrize("bad", [[], [echo(side("a"))] * 4, "AB"])
def test_a_batch_reply_of_the_wrong_shape_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidRequestError, match="list of 3 replies"):
        drive(batch_loop(("a", "b", "c")), lambda req: bad if isinstance(req, Batch) else echo(req),
              on_emit=lambda e: None)


# -- the graph driver ------------------------------------------------------------------------------
class BState(TypedDict, total=False):
    question: str
    replies: Annotated[list[Any], record_replies]
    emitted: int
    finished: bool
    texts: list[str]
    last: str


def batch_graph(model: FakeLogprobModel, checkpointer: Any = None):
    return build_loop_graph(
        name="toy", state_schema=BState, input_schema=BState, model=model,
        start=lambda s: {"question": s["question"]},
        make_loop=lambda s: batch_loop(tuple(s["question"].split())),
        host=lambda s: [], finish=lambda s, r: r, reset=("texts", "last"), checkpointer=checkpointer,
    )


def _upper(req: Any) -> str:
    return req.messages[-1]["content"].upper()


def test_graph_runs_a_batch_in_one_super_step() -> None:
    fake = FakeLogprobModel(default=_upper)
    steps = [u for u in batch_graph(fake).stream({"question": "a b c"}, stream_mode="updates") if "step" in u]
    assert len(steps) == 2  # the batch, then the final call
    first = steps[0]["step"]["replies"]
    assert len(first) == 1 and [g["text"] for g in first[0]] == ["A", "B", "C"]  # one entry: the list
    assert [r.messages[-1]["content"] for r in fake.calls] == ["a", "b", "c", "done?"]
    out = batch_graph(FakeLogprobModel(default=_upper)).invoke({"question": "a b c"})
    assert out["texts"] == ["A", "B", "C"] and out["last"] == "DONE?"
    assert asyncio.run(batch_graph(FakeLogprobModel(default=_upper)).ainvoke({"question": "a b c"}))["texts"] == out["texts"]


def test_checkpointed_graph_resumes_after_the_batch_without_rerunning_it() -> None:
    saver, cfg = InMemorySaver(), {"configurable": {"thread_id": "t"}}
    first = FakeLogprobModel(["X", "Y", "Z"])  # only the batch's replies: a second call would fail
    batch_graph(first, saver).invoke({"question": "a b c"}, cfg, interrupt_after=["step"])
    state = batch_graph(first, saver).get_state(cfg).values
    assert len(state["replies"]) == 1 and [g["text"] for g in state["replies"][0]] == ["X", "Y", "Z"]
    assert len(first.calls) == 3 and not state.get("finished")
    later = FakeLogprobModel(["END"])  # a fresh process: the batch's replies come from the checkpoint
    out = batch_graph(later, saver).invoke(None, cfg)
    assert out["texts"] == ["X", "Y", "Z"] and out["last"] == "END"
    assert [r.messages[-1]["content"] for r in later.calls] == ["done?"]


# -- the S2A filter: one batch, the same record ----------------------------------------------------
def _script(req: Any) -> str:
    """Answers by content, so the order of a concurrent batch cannot matter."""
    text = req[-1].text if isinstance(req, list) else req.messages[-1]["content"]  # chat messages or a request
    if "Sentence:" not in text:
        return ANSWER
    return "No" if "sister" in text.split("Sentence:")[1] else "Yes"


def test_filter_graph_batches_the_relevance_calls_and_keeps_the_record() -> None:
    cfg = S2AConfig(mode="filter", rewrite="irrelevant", answer_format="")
    fake = FakeLogprobModel(["Yes", "No", "Yes"])
    seq_events: list[Emit] = []
    record, cost = drive(rewrite_loop(P, cfg), one_by_one(lambda c: execute(fake, c)), on_emit=seq_events.append)

    batched = FakeLogprobModel(["Yes", "No", "Yes", ANSWER])
    graph = create_s2a_graph(batched, cfg)
    events = list(graph.stream({"question": P}, stream_mode=["custom", "updates"]))
    steps = [e for mode, e in events if mode == "updates" and "step" in e]
    assert len(steps) == 2 and len(steps[0]["step"]["replies"][0]) == 3  # the three calls, one step
    custom = [e for mode, e in events if mode == "custom"]
    assert custom[:2] == [{"event": e.name, **e.payload} for e in seq_events]
    out = create_s2a_graph(FakeLogprobModel(["Yes", "No", "Yes", ANSWER]), cfg).invoke({"question": P})
    assert out["sentence_scores"] == record["scores"] and out["removed"] == record["removed"]
    assert out["usage"]["calls"] == cost["calls"] + 1 and out["parse_status"] == record["status"] == "ok"


class CountingChat(FakeLogprobChatModel):
    """A scripted chat model that also records the size of every batch it is given."""

    batches: list[int] = []

    def batch(self, inputs: list[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        self.batches.append(len(inputs))
        return super().batch(inputs, config, **kwargs)

    async def abatch(self, inputs: list[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        self.batches.append(len(inputs))
        return await super().abatch(inputs, config, **kwargs)


async def _astream(agent: Any, user: dict[str, Any]) -> list[Any]:
    return [item async for item in agent.astream(user, stream_mode=["custom", "values"])]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_filter_middleware_sends_one_batch_with_the_graphs_record(mode: str) -> None:
    rewriter = CountingChat(default=_script, batches=[])
    model = FakeLogprobChatModel(replies=[ANSWER])
    agent = create_agent(model, middleware=[S2AMiddleware(rewriter, rewrite="irrelevant", mode="filter")])
    user = {"messages": [{"role": "user", "content": P}]}
    items = list(agent.stream(user, stream_mode=["custom", "values"])) if mode == "sync" else asyncio.run(_astream(agent, user))
    assert rewriter.batches == [3] and len(rewriter.calls) == 3  # one batch of the three relevance calls
    m_events = [{k: v for k, v in e.items() if k not in ("message_id", "kind")} for m, e in items if m == "custom"]
    g_events = list(create_s2a_graph(FakeLogprobModel(default=_script), mode="filter", rewrite="irrelevant",
                                     answer_format="").stream({"question": P}, stream_mode="custom"))
    assert m_events == g_events[:2] and m_events[0]["dropped"] == ["His sister Ann is 12 years old."]
    assert model.calls[0][-1].text.startswith("Tom has 3 apples. He buys 4 more apples.")
    final = [e for m, e in items if m == "values"][-1]["messages"][-1]
    assert final.response_metadata["sc_chains"]["s2a"]["calls"] == 3


# -- the local adapter decodes the relevance rows together -----------------------------------------
def test_hf_adapter_runs_the_relevance_rows_as_one_batch() -> None:
    cfg = S2AConfig(mode="filter", rewrite="irrelevant", answer_format="", answer_max_tokens=4)
    seq = tiny_random_model(max_batch_size=8)  # options: a fresh instance, its own stats
    record, cost = drive(rewrite_loop(P, cfg), one_by_one(lambda c: execute(seq, c)), on_emit=lambda e: None)
    assert seq.coalesce_stats.largest == 1 and seq.coalesce_stats.requests == 3  # one after another

    tiny = tiny_random_model(max_batch_size=8)
    out = create_s2a_graph(tiny, cfg).invoke({"question": P})
    n = len(split_problem(P)[0])
    stats = tiny.coalesce_stats
    assert tiny.batching == "continuous" and stats.largest == n and stats.batches <= 2
    # (one busy period for the three rows; the answer call may be a second one)
    for a, b in zip(out["sentence_scores"], record["scores"]):  # batched rows: equal up to float noise
        assert a["text"] == b["text"] and a["kept"] == b["kept"]
        assert (a["score"] is None) == (b["score"] is None)
        assert a["score"] is None or math.isclose(a["score"], b["score"], abs_tol=1e-4)
    assert out["usage"]["calls"] == cost["calls"] + 1
    assert out["usage"]["completion_tokens"] - cost["completion_tokens"] <= 4


# -- a server gets the batch as concurrent requests, at most max_concurrency at once ----------------
def test_openai_adapter_sends_the_relevance_batch_concurrently_within_its_bound(scripted_server) -> None:
    from conftest import chat_body, reply

    from adapters.openai_compat import OpenAIModel
    from adapters.retry import RetryPolicy

    srv = scripted_server([reply(200, chat_body("Yes"), delay=1.0)])
    model = OpenAIModel("gpt-test", base_url=srv.base_url, api_key="sk-test", retry=RetryPolicy(max_retries=0))
    five = "Ann has 2 pens. Bo has 3 pens. Cy has 4 pens. Di has 5 pens. Ed has 6 pens. How many pens in all?"
    out = create_s2a_graph(model, mode="filter", answer_format="").invoke({"question": five})
    assert len(out["sentence_scores"]) == 5 and len(srv.requests) == 6
    t = [r["time"] for r in srv.requests[:5]]
    assert t[3] - t[0] < 1.0  # four in flight before the first reply (each takes 1 s)
    assert t[4] - t[0] >= 0.95  # the fifth waited for a free slot: LogprobModel.batch's max_concurrency=4
