"""The shared loop protocol: drive/adrive, replay, the LangGraph driver (replay, threads, review)."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from adapters.types import Generation, TokenLogprob, TopLogprob, Usage
from graphs.driver import build_loop_graph, record_replies
from graphs.loop import Emit, ModelCall, Review, adrive, drive, reply_from_json, reply_to_json
from graphs.validate import check_question


def toy_loop(question: str, review: bool = False):
    """Draft, emit, optionally a review, revise once, return both texts."""
    draft = yield ModelCall("draft", extra=({"role": "user", "content": f"Q: {question}"},), max_tokens=16)
    yield Emit("critique.draft", {"text": draft.text})
    decision = (yield Review({"draft": draft.text})) if review else "approve"
    if decision == "reject":
        return {"texts": [draft.text], "decision": decision}
    second = yield ModelCall("revise", extra=({"role": "user", "content": "again"},), max_tokens=16, final=True)
    yield Emit("critique.done", {"text": second.text})
    return {"texts": [draft.text, second.text], "decision": decision}


class ToyInput(TypedDict, total=False):
    question: str


class ToyState(TypedDict, total=False):
    question: str
    replies: Annotated[list[Any], record_replies]
    emitted: int
    finished: bool
    texts: list[str]
    decision: str
    runs: Annotated[list[str], operator.add]


def toy_graph(model: FakeLogprobModel, *, review: bool = False, checkpointer: Any = None):
    return build_loop_graph(
        name="toy", state_schema=ToyState, input_schema=ToyInput, model=model,
        start=lambda s: {"question": check_question(s.get("question"))},
        make_loop=lambda s: toy_loop(s["question"], review),
        host=lambda s: [{"role": "system", "content": "be brief"}],
        finish=lambda s, r: {**r, "runs": [s["question"]]},
        reset=("texts", "decision"),
        checkpointer=checkpointer,
    )


def test_drive_and_adrive_run_the_same_loop() -> None:
    replies = iter(["one", "two"])
    gens = []

    def call(req: ModelCall) -> Generation:
        gens.append(req.role)
        return Generation(text=next(replies), tokens=())

    events: list[str] = []
    out = drive(toy_loop("q"), call, on_emit=lambda e: events.append(e.name))
    assert out == {"texts": ["one", "two"], "decision": "approve"}
    assert gens == ["draft", "revise"] and events == ["critique.draft", "critique.done"]

    replies2 = iter(["one", "two"])

    async def acall(req: ModelCall) -> Generation:
        return Generation(text=next(replies2), tokens=())

    assert asyncio.run(adrive(toy_loop("q"), acall, on_emit=lambda e: None)) == out


def test_reply_json_round_trip() -> None:
    g = Generation(
        text="ab", tokens=(TokenLogprob("a", -0.1, 0, (TopLogprob("a", -0.1), TopLogprob("b", -2.0)), 0.5, 7),
                           TokenLogprob("b", -0.2, 1)),
        finish_reason="length", usage=Usage(3, 2, 1), model="m", prefill="x",
    )
    assert reply_from_json(reply_to_json(g)) == g
    assert reply_from_json(reply_to_json([g, g])) == [g, g]
    assert reply_from_json(reply_to_json({"action": "approve"})) == {"action": "approve"}


def test_graph_one_call_per_step_events_once() -> None:
    model = FakeLogprobModel(["first draft", "second draft"])
    graph = toy_graph(model)
    chunks = list(graph.stream({"question": "why?"}, stream_mode=["custom", "updates"]))
    events = [c[1]["event"] for c in chunks if c[0] == "custom"]
    steps = [c for c in chunks if c[0] == "updates" and "step" in c[1]]
    assert events == ["critique.draft", "critique.done"]
    assert len(steps) == 2  # one model call per super-step; the loop ends in the second
    assert [m["content"] for m in model.calls[0].messages] == ["be brief", "Q: why?"]
    assert [m["content"] for m in model.calls[1].messages] == ["be brief", "again"]


def test_graph_thread_reuse_starts_a_fresh_run() -> None:
    model = FakeLogprobModel(["a1", "a2", "b1", "b2"])
    graph = toy_graph(model, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t"}}
    first = graph.invoke({"question": "first?"}, cfg)
    second = graph.invoke({"question": "second?"}, cfg)
    assert first["texts"] == ["a1", "a2"] and second["texts"] == ["b1", "b2"]
    assert len(second["replies"]) == 2 and second["runs"] == ["first?", "second?"]
    history = list(graph.get_state_history(cfg))
    assert any(h.values.get("texts") == ["a1", "a2"] for h in history)


def test_graph_review_resumes_without_rerunning_the_draft() -> None:
    model = FakeLogprobModel(["draft", "revised"])
    graph = toy_graph(model, review=True, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "r"}}
    paused = graph.invoke({"question": "q"}, cfg)
    assert paused["__interrupt__"][0].value == {"draft": "draft"}
    assert len(model.calls) == 1
    out = graph.invoke(Command(resume="approve"), cfg)
    assert out["texts"] == ["draft", "revised"] and len(model.calls) == 2


def test_graph_async_matches_sync() -> None:
    out = asyncio.run(toy_graph(FakeLogprobModel(["x", "y"])).ainvoke({"question": "q"}))
    assert out["texts"] == ["x", "y"]


@pytest.mark.parametrize("bad", [{}, {"question": 123}, {"question": "  "}])
def test_graph_rejects_bad_questions(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError) as err:
        toy_graph(FakeLogprobModel(["x"])).invoke(bad)
    assert err.value.param == "question"


def test_options_route_to_nested_configs_and_reject_unknown_names() -> None:
    from dataclasses import dataclass

    from graphs.validate import Options, check_int

    @dataclass(frozen=True)
    class Inner(Options):
        k: int = 1

        def __post_init__(self) -> None:
            check_int("k", self.k, minimum=1)

    @dataclass(frozen=True)
    class Outer(Options):
        inner: Inner = Inner()
        name: str = "x"

    cfg = Outer.from_options({"k": 3, "name": "y"})
    assert cfg.inner.k == 3 and cfg.name == "y"
    assert cfg.replace(k=4).inner.k == 4 and cfg.inner.k == 3
    with pytest.raises(InvalidRequestError) as err:
        Outer.from_options({"kk": 1})
    assert err.value.param == "kk" and "k, " in err.value.fix or "inner" in err.value.fix
    with pytest.raises(InvalidRequestError):
        Outer.from_options({"k": 0})


def test_every_event_the_loops_emit_is_in_the_vocabulary() -> None:
    """One vocabulary: each ``Emit("method.event")`` in graphs/ names an event of
    :data:`graphs.vocab.EVENTS` (a consumer can rely on the list)."""
    import re
    from pathlib import Path

    from graphs.vocab import EVENTS

    root = Path(__file__).resolve().parents[1] / "graphs"
    names = {m for p in root.rglob("*.py") for m in re.findall(r'Emit\(\s*"([a-z0-9]+\.[a-z_]+)"', p.read_text())}
    assert len(names) >= 15
    unknown = sorted(n for n in names if n.split(".")[1] not in EVENTS.get(n.split(".")[0], ()))
    assert unknown == []
