"""The LECO graph on the scripted fake: cut point, verbatim prefix, stop rule, vote, budgets,
sync/async, checkpointing and streaming."""

from __future__ import annotations

import itertools
import json
from typing import TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from adapters.types import Generation
from graphs.leco import LecoConfig, create_leco_graph
from sc_chains.testing import FakeLogprobModel, FakeReply

Q = "Tom has 3 apples. He buys 4 more and eats 1. How many apples does he have?"
S1 = "Step 1: Tom has 3 apples.\n"
S2_BAD = "Step 2: He buys 4 more, so 3 + 4 = 8."
S3_BAD = "Step 3: He eats 1, so 8 - 1 = 7."
FIRST = FakeReply(
    f"{S1}{S2_BAD}\n{S3_BAD}\nThe answer is 7.",
    overrides={S2_BAD: -3.0, S3_BAD: -1.0},  # step 2 least confident, step 3 next
)
S2 = "Step 2: He buys 4 more, so 3 + 4 = 7."
S3 = "Step 3: He eats 1, so 7 - 1 = 6."
S4 = "Step 4: Check: 6 is right."
# continues after S1: new steps 2, 3, 4; step 3 lowest, step 4 next -> cut at step 3 (index 2)
SECOND = FakeReply(f"{S2}\n{S3}\n{S4}\nThe answer is 6.", overrides={S3: -2.0, S4: -1.0})
THIRD = FakeReply(f"{S3}\nThe answer is 6.")


def script() -> list[FakeReply]:
    return [FIRST, SECOND, THIRD]


def test_cuts_at_the_least_confident_step_and_keeps_the_prefix_verbatim() -> None:
    fake = FakeLogprobModel(script())
    out = create_leco_graph(fake).invoke({"question": Q})

    assert out["regeneration_path"] == "prefill"
    assert [c["step"] for c in out["cuts"]] == [1, 2]
    assert out["cuts"][0]["lowest"] == [1, 2] and out["cuts"][1]["lowest"] == [2, 3]
    assert out["cuts"][0]["step_text"] == S2_BAD
    # every request asks for greedy decoding with top-5 alternatives
    assert [(c.temperature, c.top_logprobs) for c in fake.calls] == [(0.0, 5)] * 3
    # the rethinks continue the assistant text from the kept prefix, exactly
    assert fake.calls[0].prefill is None
    assert fake.calls[1].prefill == S1
    assert fake.calls[2].prefill == f"{S1}{S2}\n"
    assert fake.calls[1].messages == fake.calls[0].messages
    # attempts 2 and 3 score only their new steps; kept steps have no scores
    a1 = out["attempts"][1]
    assert a1["response"] == f"{S1}{SECOND.text}" and a1["path"] == "prefill"
    assert [s["candidate"] for s in a1["steps"]] == [False, True, True, True, False]
    assert a1["steps"][0]["score"] is None
    # stop on agreement (6, 6), then the weighted vote: 7 -> 1.5, 6 -> 2.0
    assert out["candidates"] == ["7", "6", "6"]
    assert out["stop_reason"] == "agreement"
    assert out["vote"] == {"7": 1.5, "6": 2.0}
    assert out["answer"] == "6"
    assert out["response"] == f"{S1}{S2}\n{THIRD.text}"
    # usage sums every call; each attempt records its own
    assert out["usage"]["calls"] == 3
    assert out["usage"]["completion_tokens"] == sum(a["usage"]["completion_tokens"] for a in out["attempts"])
    assert out["tokens_generated"] == out["usage"]["completion_tokens"]
    json.dumps(out)  # the whole state is JSON-serialisable


def test_chat_fallback_puts_the_prefix_in_the_user_message() -> None:
    replies = [FIRST, FakeReply(SECOND.text.removeprefix("Step 2:"), overrides={S3: -2.0, S4: -1.0}), THIRD]
    fake = FakeLogprobModel(replies, prefill=False)
    out = create_leco_graph(fake).invoke({"question": Q})

    assert out["regeneration_path"] == "chat"
    assert all(c.prefill is None for c in fake.calls)
    # the conversation (system, question) then the prefix in a user message, ending "Step 2:"
    assert fake.calls[1].messages[:2] == fake.calls[0].messages
    assert fake.calls[1].messages[1]["content"] == f"Question: {Q}"
    first_rethink = fake.calls[1].messages[-1]["content"]
    assert first_rethink.startswith("Here is the start") and first_rethink.endswith(f"{S1}Step 2:")
    assert fake.calls[2].messages[-1]["content"].endswith(f"{S1}{S2}\nStep 3:")
    # the reply continued after "Step 2:" (no label): the label is restored in the response
    assert out["attempts"][1]["seed"] == "Step 2:"
    assert out["attempts"][1]["response"] == f"{S1}{SECOND.text}"
    # the third reply restated its label, so nothing is added
    assert out["attempts"][2]["seed"] == ""
    assert [c["step"] for c in out["cuts"]] == [1, 2]
    assert out["answer"] == "6"


def test_forced_chat_path_and_prefill_on_a_chat_only_model() -> None:
    fake = FakeLogprobModel(script())
    out = create_leco_graph(fake, regeneration="chat").invoke({"question": Q})
    assert out["regeneration_path"] == "chat" and fake.calls[1].prefill is None
    with pytest.raises(InvalidRequestError, match="regeneration"):
        create_leco_graph(FakeLogprobModel(prefill=False), regeneration="prefill")


def _counting_model(**kw) -> FakeLogprobModel:
    n = itertools.count()
    return FakeLogprobModel(
        default=lambda req: FakeReply(f"Step 1: add.\nStep 2: more.\nThe answer is {next(n)}.", overrides={"Step 2": -2.0}),
        **kw,
    )


def test_vote_weights_when_answers_never_agree() -> None:
    answers = iter(["7", "6", "5", "6"])
    fake = FakeLogprobModel(default=lambda req: FakeReply(f"Step 1: x.\nThe answer is {next(answers)}."))
    out = create_leco_graph(fake, max_rethinks=3).invoke({"question": Q})
    assert out["candidates"] == ["7", "6", "5", "6"] and out["stop_reason"] == "max_rethinks"
    assert out["vote"] == {"7": 1.5, "6": 2.0, "5": 1.0} and out["answer"] == "6"
    # the first answer's 1.5 beats a single later answer
    fake = _counting_model()
    out = create_leco_graph(fake, max_rethinks=1).invoke({"question": Q})
    assert out["candidates"] == ["0", "1"] and out["answer"] == "0"
    assert out["response"] == out["attempts"][0]["response"]


@pytest.mark.parametrize("max_rethinks", [0, 1, 2, 7])
def test_rethink_budget_is_respected_without_hitting_the_recursion_limit(max_rethinks: int) -> None:
    fake = _counting_model()
    out = create_leco_graph(fake, max_rethinks=max_rethinks, max_completion_tokens=10_000).invoke({"question": Q})
    assert len(fake.calls) == len(out["attempts"]) == max_rethinks + 1
    assert out["stop_reason"] == "max_rethinks"
    assert len(out["cuts"]) == max_rethinks


def test_completion_token_budget_caps_each_rethink_and_stops() -> None:
    n_first = len(FakeLogprobModel([FIRST]).generate("q").tokens)
    fake = FakeLogprobModel(script())
    budget = n_first + 5
    out = create_leco_graph(fake, max_completion_tokens=budget).invoke({"question": Q})
    assert fake.calls[0].max_tokens == budget  # min(max_tokens=512, budget)
    assert fake.calls[1].max_tokens == 5  # what was left
    assert out["attempts"][1]["finish_reason"] == "length"
    assert out["tokens_generated"] == budget and out["stop_reason"] == "max_completion_tokens"
    assert len(fake.calls) == 2
    # max_tokens caps each attempt below the budget; the budget spent exactly stops at once
    fake = FakeLogprobModel(script())
    out = create_leco_graph(fake, max_completion_tokens=n_first, max_tokens=300).invoke({"question": Q})
    assert fake.calls[0].max_tokens == n_first and out["stop_reason"] == "max_completion_tokens"
    fake = FakeLogprobModel(script())
    create_leco_graph(fake, max_completion_tokens=1000, max_tokens=300).invoke({"question": Q})
    assert fake.calls[0].max_tokens == 300


def test_no_candidate_step_stops() -> None:
    fake = FakeLogprobModel([FakeReply("The answer is 5.")])
    out = create_leco_graph(fake).invoke({"question": "?"})
    assert out["stop_reason"] == "no_candidate_step" and out["answer"] == "5" and out["cuts"] == []


def test_config_object_and_overrides() -> None:
    fake = _counting_model()
    create_leco_graph(fake, LecoConfig(k=3, seed=11, rethink_temperature=0.7), max_rethinks=1).invoke({"question": Q})
    assert [(c.top_logprobs, c.temperature, c.seed) for c in fake.calls] == [(3, 0.0, 11), (3, 0.7, 12)]
    with pytest.raises(InvalidRequestError):
        create_leco_graph(_counting_model(), k=21)  # the fake returns at most 20
    with pytest.raises(InvalidRequestError):
        create_leco_graph(_counting_model(), tau=0)


def test_logprobs_are_required() -> None:
    with pytest.raises(LogprobsUnavailableError):
        create_leco_graph(FakeLogprobModel(["x"], logprobs=False))
    graph = create_leco_graph(FakeLogprobModel([Generation(text="Step 1: x", tokens=None)]))
    with pytest.raises(LogprobsUnavailableError):
        graph.invoke({"question": "?"})


async def test_async_gives_the_same_result_as_sync() -> None:
    sync = create_leco_graph(FakeLogprobModel(script())).invoke({"question": Q})
    fake = FakeLogprobModel(script())
    out = await create_leco_graph(fake).ainvoke({"question": Q})
    assert out == sync
    assert fake.calls[2].prefill == f"{S1}{S2}\n"


def test_checkpointer_keeps_the_run() -> None:
    saver = InMemorySaver()
    graph = create_leco_graph(FakeLogprobModel(script()), checkpointer=saver)
    config = {"configurable": {"thread_id": "leco-1"}}
    out = graph.invoke({"question": Q}, config)
    snapshot = graph.get_state(config)
    assert snapshot.values["answer"] == out["answer"] == "6"
    assert len(snapshot.values["attempts"]) == 3 and snapshot.next == ()
    history = list(graph.get_state_history(config))
    assert len(history) >= 1 + 1 + 3  # input, start, one step per model call
    json.dumps(snapshot.values)


def test_stream_emits_each_event_once() -> None:
    graph = create_leco_graph(FakeLogprobModel(script()))
    events = list(graph.stream({"question": Q}, stream_mode="custom"))
    names = [e["event"] for e in events]
    assert names == ["leco.draft", "leco.cut", "leco.rethink", "leco.cut", "leco.rethink", "leco.done"]
    attempts = [e for e in events if e["event"] in ("leco.draft", "leco.rethink")]
    assert [e["attempt"] for e in attempts] == [0, 1, 2]
    assert [e["step"] for e in events if e["event"] == "leco.cut"] == [1, 2]
    assert attempts[0]["scores"][1]["score"] < attempts[0]["scores"][0]["score"]
    done = events[-1]
    assert done["answer"] == "6" and done["stop_reason"] == "agreement" and done["status"] == "corrected"


def test_runs_as_a_subgraph_node() -> None:
    class Outer(TypedDict, total=False):
        question: str
        answer: str | None

    parent = StateGraph(Outer)
    parent.add_node("leco", create_leco_graph(FakeLogprobModel(script())))
    parent.add_edge(START, "leco")
    parent.add_edge("leco", END)
    assert parent.compile().invoke({"question": Q})["answer"] == "6"
