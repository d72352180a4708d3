"""Self-consistency: the pure vote on literals, the graph on the scripted fake and hf:tiny-random."""

from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from adapters.specs import resolve_model
from graphs.sc import ScConfig, create_sc_graph, majority_vote
from graphs.sc.config import SC_INSTRUCTION


# -- the vote ----------------------------------------------------------------------------------
def test_majority_groups_equal_answers() -> None:
    v = majority_vote(["18", "$18.00", "20", "18.0", None])
    assert v["answer"] == "18" and v["winner"] == 0
    assert v["groups"] == [
        {"answer": "18", "weight": 3.0, "members": [0, 1, 3]},
        {"answer": "20", "weight": 1.0, "members": [2]},
    ]
    assert v["abstained"] == [4]


def test_ties_go_to_the_earliest_first_member() -> None:
    assert majority_vote(["5", "7", "7", "5"])["answer"] == "5"
    assert majority_vote(["7", "5", "5", "7"])["answer"] == "7"
    v = majority_vote([None, "3", "4"])
    assert v["answer"] == "3" and v["winner"] == 1


def test_majority_beats_order_and_text_answers_normalise() -> None:
    assert majority_vote(["1", "2", "2"])["answer"] == "2"
    assert majority_vote(["Paris.", "paris", "London"])["answer"] == "paris"


def test_no_answers_and_weights() -> None:
    assert majority_vote([None, "  ", None]) == {"answer": None, "winner": None, "groups": [], "abstained": [0, 1, 2]}
    assert majority_vote([]) == {"answer": None, "winner": None, "groups": [], "abstained": []}
    assert majority_vote(["1", "2", "2"], weights=[2.5, 1.0, 1.0])["answer"] == "1"
    with pytest.raises(InvalidRequestError, match="weights"):
        majority_vote(["1", "2"], weights=[1.0])


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value"), [("k", 0), ("k", 65), ("temperature", 0), ("temperature", 3),
                                              ("max_tokens", 0), ("seed", -1), ("seed", "1")])
def test_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(InvalidRequestError) as err:
        ScConfig(**{field: value})
    assert err.value.param == field


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(InvalidRequestError) as err:
        create_sc_graph(FakeLogprobModel([]), samples=3)
    assert err.value.param == "samples" and "k" in err.value.fix


# -- the graph on the fake ---------------------------------------------------------------------
Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def test_graph_samples_k_seeded_and_votes() -> None:
    fake = FakeLogprobModel(["3 + 4 = 7. The answer is 7.", "3 + 4 = 8. The answer is 8.",
                             "The answer is 7.0", "I don't know", "3 + 4 = 8. The answer is $8."])
    out = create_sc_graph(fake, k=5, temperature=0.9, max_tokens=64, seed=10).invoke({"question": Q})
    assert out["answer"] == "7" and out["response"] == "3 + 4 = 7. The answer is 7."
    assert out["stop_reason"] == "done"
    assert [c["answer"] for c in out["candidates"]] == ["7", "8", "7", None, "8"]
    assert out["votes"][0] == {"answer": "7", "weight": 2.0, "members": [0, 2]}
    assert [(r.seed, r.temperature, r.max_tokens) for r in fake.calls] == [(10 + i, 0.9, 64) for i in range(5)]
    assert fake.calls[0].messages[-1]["content"] == f"{Q}\n\n{SC_INSTRUCTION}"
    assert out["usage"]["calls"] == 5
    assert out["usage"]["completion_tokens"] == sum(c["usage"]["completion_tokens"] for c in out["candidates"])
    assert len(out["replies"]) == 1  # the k samples were one batched step


def test_events_and_k_one() -> None:
    fake = FakeLogprobModel(["The answer is 4."])
    graph = create_sc_graph(fake, k=1, system_prompt="Be brief.")
    chunks = list(graph.stream({"question": "2+2?"}, stream_mode=["custom", "values"]))
    events = [c[1] for c in chunks if c[0] == "custom"]
    assert [e["event"] for e in events] == ["sc.samples", "sc.done"]
    assert events[0]["answers"] == ["4"]
    final = [c[1] for c in chunks if c[0] == "values"][-1]
    assert final["answer"] == "4" and fake.calls[0].messages[0] == {"role": "system", "content": "Be brief."}


def test_thread_reuse_starts_a_fresh_vote() -> None:
    fake = FakeLogprobModel(["The answer is 7."] * 3 + ["The answer is 42."] * 3)
    graph = create_sc_graph(fake, k=3, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t"}}
    assert graph.invoke({"question": Q}, cfg)["answer"] == "7"
    second = graph.invoke({"question": "What is 6 times 7?"}, cfg)
    assert second["answer"] == "42" and len(second["candidates"]) == 3
    assert second["usage"]["calls"] == 3


def test_async_matches_sync() -> None:
    replies = ["The answer is 1.", "The answer is 2.", "The answer is 2."]
    sync = create_sc_graph(FakeLogprobModel(replies), k=3).invoke({"question": "q"})
    asy = asyncio.run(create_sc_graph(FakeLogprobModel(replies), k=3).ainvoke({"question": "q"}))
    for key in ("answer", "response", "candidates", "votes", "usage"):
        assert sync[key] == asy[key]


def test_bad_question_is_rejected_before_any_call() -> None:
    fake = FakeLogprobModel([])
    with pytest.raises(InvalidRequestError) as err:
        create_sc_graph(fake).invoke({"question": " "})
    assert err.value.param == "question" and not fake.calls


# -- a real local model ------------------------------------------------------------------------
def test_tiny_random_batch_is_seeded_and_reproducible() -> None:
    model = resolve_model("hf:tiny-random")
    graph = create_sc_graph(model, k=3, max_tokens=8, seed=3)
    a = graph.invoke({"question": "What is 2 + 3?"})
    b = graph.invoke({"question": "What is 2 + 3?"})
    texts = [c["text"] for c in a["candidates"]]
    assert texts == [c["text"] for c in b["candidates"]]  # same seeds, same samples
    assert len(set(texts)) > 1  # different seeds per sample: not k copies of one text
    assert a["usage"]["calls"] == 3 and a["usage"]["completion_tokens"] > 0
    assert a["response"] in texts


def test_eval_registry_runs_sc_and_the_program_critic() -> None:
    from sc_chains.datasets import Problem
    from sc_chains.eval.chains import get_chain

    problem = Problem("p1", Q, "7")
    fake = FakeLogprobModel(["The answer is 7.", "The answer is 8.", "The answer is 7."])
    out = asyncio.run(get_chain("sc").run(fake, problem, {"k": 3}))
    assert out["answer"] == "7" and out["correct"] is True and out["usage"]["calls"] == 3
    assert out["trace"]["votes"][0]["members"] == [0, 2]
    program = "```python\nprint(3 + 4)\n```"
    fake = FakeLogprobModel(["3 + 4 = 8. The answer is 8.", program, "3 + 4 = 7. The answer is 7.", program])
    out = asyncio.run(get_chain("critique-program").run(fake, problem, {}))
    assert (out["answer_t1"], out["answer"], out["correct_t1"], out["correct"]) == ("8", "7", False, True)
