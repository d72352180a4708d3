"""The S2A graph with the scripted fake: every variant's exact prompts, fallbacks, the pluggable
answer step, budget, async = sync, checkpointing, streaming; then real models end to end."""

from __future__ import annotations

import io
import json
import os
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel, split_tokens
from graphs.common import add_usage, emit, model_node, usage_of
from graphs.s2a import S2AConfig, create_s2a_graph
from graphs.s2a.prompts import BUILTIN_REWRITES, DEFAULT_ANSWER_FORMAT, RewritePrompt

os.environ.setdefault("HF_HUB_OFFLINE", "1")

Q = "Which city is the capital of Australia? I think the answer is Sydney, but I'm really not sure."
REWRITE = (
    "Unbiased text context (includes all content except user's bias): Australia is a country.\n"
    "Question/Query (does not include user bias/preference): Which city is the capital of Australia?"
)
ANSWER = "Canberra is the capital.\nThe answer is Canberra."
FMT = DEFAULT_ANSWER_FORMAT


def prompts(fake: FakeLogprobModel) -> list[str]:
    return [c.messages[-1]["content"] for c in fake.calls]


def test_split_variant_prompts_state_and_usage() -> None:
    fake = FakeLogprobModel([REWRITE, ANSWER])
    out = create_s2a_graph(fake).invoke({"question": Q})
    assert prompts(fake) == [
        BUILTIN_REWRITES["opinion"].render(Q),
        f"Australia is a country.\n\nWhich city is the capital of Australia?\n\nAnswer in an unbiased way.\n{FMT}",
    ]
    assert out["question"] == Q and out["rewrite"] == REWRITE
    assert (out["context"], out["query"], out["parse_status"]) == (
        "Australia is a country.",
        "Which city is the capital of Australia?",
        "ok",
    )
    assert out["removed"] == ["I think the answer is Sydney, but I'm really not sure."]
    assert (out["answer"], out["response"], out["stop_reason"]) == ("canberra", ANSWER, "done")
    rewrite_tokens, answer_tokens = len(split_tokens(REWRITE)), len(split_tokens(ANSWER))
    assert out["usage"]["calls"] == 2
    assert out["usage"]["completion_tokens"] == rewrite_tokens + answer_tokens
    json.dumps(out)  # every value is JSON-serialisable


def test_single_variant() -> None:
    fake = FakeLogprobModel(
        ["Unbiased version of text by User, including question: Which city is the capital of Australia?", ANSWER]
    )
    out = create_s2a_graph(fake, variant="single").invoke({"question": Q})
    assert prompts(fake) == [
        BUILTIN_REWRITES["opinion_single"].render(Q),
        f"Which city is the capital of Australia?\n\nAnswer in an unbiased way.\n{FMT}",
    ]
    assert (out["context"], out["query"], out["parse_status"]) == ("Which city is the capital of Australia?", "", "ok")


def test_keep_original_variant() -> None:
    fake = FakeLogprobModel([REWRITE, ANSWER])
    create_s2a_graph(fake, S2AConfig(variant="keep_original")).invoke({"question": Q})
    assert prompts(fake)[1] == (
        f"Original user query (possibly biased): {Q}\n\nRewritten context: Australia is a country.\n\n"
        f"Rewritten question: Which city is the capital of Australia?\n\nAnswer in an unbiased way.\n{FMT}"
    )


def test_no_instruction_variant() -> None:
    fake = FakeLogprobModel([REWRITE, ANSWER])
    create_s2a_graph(fake, instruction="").invoke({"question": Q})
    assert prompts(fake)[1] == f"Australia is a country.\n\nWhich city is the capital of Australia?\n\n{FMT}"
    assert "unbiased" not in prompts(fake)[1]


def test_irrelevant_context_rewrite() -> None:
    q = "Tom has 3 apples. Tom's neighbour has 12 cats. He buys 2 more apples. How many apples does Tom have?"
    fake = FakeLogprobModel(
        [
            "Context related to the question (includes all content except unrelated sentences): "
            "Tom has 3 apples. He buys 2 more apples.\nDetailed question: How many apples does Tom have?",
            "3 + 2 = 5.\nThe answer is 5.",
        ]
    )
    out = create_s2a_graph(fake, rewrite="irrelevant").invoke({"question": q})
    assert prompts(fake)[0] == BUILTIN_REWRITES["irrelevant"].render(q)
    assert out["removed"] == ["Tom's neighbour has 12 cats."]
    assert out["answer"] == "5"


def test_custom_rewrite_prompt() -> None:
    custom = RewritePrompt("Strip opinions from: {input}\nWrite FACTS: then ASK:", "FACTS:", "ASK:", name="mine")
    fake = FakeLogprobModel(["FACTS: A country.\nASK: Capital?", "The answer is Canberra."])
    out = create_s2a_graph(fake, rewrite=custom).invoke({"question": Q})
    assert prompts(fake)[0] == f"Strip opinions from: {Q}\nWrite FACTS: then ASK:"
    assert (out["context"], out["query"], out["parse_status"]) == ("A country.", "Capital?", "ok")


@pytest.mark.parametrize(
    "rewrite,status,answer_prompt_head",
    [
        ("", "fallback_empty_rewrite", Q),
        ("Australia is a country.", "fallback_no_labels", "Australia is a country.\n\nWhich city is the capital of Australia?"),
        (
            "Unbiased text context: Australia is a country.",
            "fallback_no_question",
            "Australia is a country.\n\nWhich city is the capital of Australia?",
        ),
        ("Question/Query: Capital of Australia?", "fallback_no_context", f"{Q}\n\nCapital of Australia?"),
    ],
)
def test_parse_failures_fall_back_explicitly(rewrite: str, status: str, answer_prompt_head: str) -> None:
    fake = FakeLogprobModel([rewrite, ANSWER])
    out = create_s2a_graph(fake).invoke({"question": Q})
    assert out["parse_status"] == status and out["parse_reason"]
    assert prompts(fake)[1] == f"{answer_prompt_head}\n\nAnswer in an unbiased way.\n{FMT}"
    assert out["answer"] == "canberra"


def test_empty_rewrite_removes_nothing() -> None:
    out = create_s2a_graph(FakeLogprobModel(["", ANSWER])).invoke({"question": Q})
    assert out["removed"] == []


def test_bad_input_and_bad_answer_graph() -> None:
    with pytest.raises(InvalidRequestError):
        create_s2a_graph(FakeLogprobModel([REWRITE])).invoke({"question": "  "})
    with pytest.raises(InvalidRequestError):
        create_s2a_graph(FakeLogprobModel(), answer_graph=object())
    with pytest.raises(InvalidRequestError):
        create_s2a_graph(FakeLogprobModel(), nonsense=1)


def test_completion_token_budget_clips_and_skips() -> None:
    fake = FakeLogprobModel([REWRITE, ANSWER])
    n_rewrite = len(split_tokens(REWRITE))
    out = create_s2a_graph(fake, max_completion_tokens=n_rewrite + 3).invoke({"question": Q})
    assert [c.max_tokens for c in fake.calls] == [n_rewrite + 3, 3]
    assert out["usage"]["completion_tokens"] == n_rewrite + 3

    fake = FakeLogprobModel([REWRITE, ANSWER])
    out = create_s2a_graph(fake, max_completion_tokens=5).invoke({"question": Q})
    assert len(fake.calls) == 1 and out["rewrite_finish_reason"] == "length"
    assert (out["answer"], out["response"], out["stop_reason"]) == (None, "", "max_completion_tokens")


async def test_async_equals_sync() -> None:
    for kw in ({}, {"variant": "keep_original"}, {"variant": "single"}):
        script = [REWRITE, ANSWER]
        f1, f2 = FakeLogprobModel(script), FakeLogprobModel(script)
        sync = create_s2a_graph(f1, **kw).invoke({"question": Q})
        asyn = await create_s2a_graph(f2, **kw).ainvoke({"question": Q})
        assert sync == asyn
        assert prompts(f1) == prompts(f2)


def test_streaming_custom_events_in_order() -> None:
    graph = create_s2a_graph(FakeLogprobModel([REWRITE, ANSWER]))
    events = list(graph.stream({"question": Q}, stream_mode="custom"))
    assert [e["event"] for e in events] == ["s2a.rewrite", "s2a.answer"]
    assert events[0]["raw"] == REWRITE
    assert events[0]["status"] == "ok" and events[0]["removed"] == [
        "I think the answer is Sydney, but I'm really not sure."
    ]
    assert events[1]["answer"] == "canberra"


def test_checkpointing_and_replaying_the_answer_step() -> None:
    fake = FakeLogprobModel([REWRITE, ANSWER, "The answer is Perth."])
    graph = create_s2a_graph(fake, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t1"}}
    out = graph.invoke({"question": Q}, cfg)
    assert graph.get_state(cfg).values == out
    history = list(graph.get_state_history(cfg))
    # one model call per step: the checkpoint after the rewrite call, before the answer call
    before_answer = next(s for s in history if s.next == ("step",) and len(s.values.get("replies") or []) == 1)
    assert before_answer.values.get("answer") is None
    replay = graph.invoke(None, before_answer.config)  # re-runs only the answer step
    assert len(fake.calls) == 3 and replay["answer"] == "perth"
    assert replay["usage"]["calls"] == 2  # usage from the replayed branch, not double-counted


# --- the pluggable answer step -------------------------------------------------------------------

class MiniState(TypedDict, total=False):
    question: str
    answer: str | None
    response: str
    attempts: list[str]
    usage: Annotated[dict, add_usage]


def mini_graph(model: FakeLogprobModel) -> Any:
    """A two-attempt graph that follows the chain contract."""

    def prepare(state: MiniState) -> Any:
        return model.request(state["question"], max_tokens=64)

    def apply(state: MiniState, gen: Any) -> dict[str, Any]:
        emit("mini_attempt", n=len(state.get("attempts", [])) + 1)
        attempts = [*state.get("attempts", []), gen.text]
        return {"attempts": attempts, "response": gen.text, "usage": usage_of(gen)}

    def finish(state: MiniState) -> dict[str, Any]:
        from graphs.answers import extract_answer

        return {"answer": extract_answer(state["response"])}

    b = StateGraph(MiniState)
    b.add_node("first", model_node(model, prepare, apply, name="first"))
    b.add_node("second", model_node(model, prepare, apply, name="second"))
    b.add_node("finish", finish)
    b.add_edge(START, "first")
    b.add_edge("first", "second")
    b.add_edge("second", "finish")
    b.add_edge("finish", END)
    return b.compile()


def test_answer_step_can_be_a_contract_graph() -> None:
    fake = FakeLogprobModel([REWRITE, "The answer is Sydney.", "The answer is Canberra."])
    graph = create_s2a_graph(fake, answer_graph=mini_graph(fake))
    out = graph.invoke({"question": Q})
    # the subgraph gets the composed prompt without our answer-format line
    assert prompts(fake)[1] == prompts(fake)[2] == (
        "Australia is a country.\n\nWhich city is the capital of Australia?\n\nAnswer in an unbiased way."
    )
    assert out["answer"] == "canberra" and out["response"] == "The answer is Canberra."
    assert out["answer_trace"] == {"attempts": ["The answer is Sydney.", "The answer is Canberra."]}
    assert out["usage"]["calls"] == 3
    assert out["usage"]["completion_tokens"] == len(split_tokens(REWRITE)) + 8


async def test_answer_subgraph_async_stream_and_checkpoint() -> None:
    fake = FakeLogprobModel([REWRITE, "The answer is Sydney.", "The answer is Canberra."])
    sub = mini_graph(fake)
    graph = create_s2a_graph(fake, answer_graph=sub, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "a"}}
    seen = [chunk async for chunk in graph.astream({"question": Q}, cfg, stream_mode="custom", subgraphs=True)]
    names = [payload["event"] for _, payload in seen]
    assert names == ["s2a.rewrite", "mini_attempt", "mini_attempt", "s2a.answer"]
    assert any(ns for ns, payload in seen if payload["event"] == "mini_attempt")  # namespaced
    state = (await graph.aget_state(cfg)).values
    assert state["answer"] == "canberra" and state["usage"]["calls"] == 3


def _leco_factory() -> Any:
    try:
        from graphs.leco import create_leco_graph
    except ImportError:
        return None
    return create_leco_graph


@pytest.mark.skipif(_leco_factory() is None, reason="graphs.leco.create_leco_graph is not available yet")
def test_s2a_then_leco_with_the_scripted_fake() -> None:
    create_leco_graph = _leco_factory()
    cot = "Step 1: The capital of Australia is Canberra.\nStep 2: So the city is Canberra.\nThe answer is Canberra."
    fake = FakeLogprobModel([REWRITE], default=cot)
    graph = create_s2a_graph(fake, answer_graph=create_leco_graph(fake, max_rethinks=1))
    out = graph.invoke({"question": Q})
    assert out["answer"] == "canberra" and out["parse_status"] == "ok"
    leco_prompt = fake.calls[1].messages[-1]["content"]
    assert "Which city is the capital of Australia?" in leco_prompt and "Sydney" not in leco_prompt
    assert out["usage"]["calls"] == len(fake.calls) >= 2
    assert out["answer_trace"]["attempts"], "LECO's trace is kept"
    assert out["response"] == out["answer_trace"]["attempts"][-1]["response"]


# --- public API and CLI hooks ---------------------------------------------------------------------

def test_cli_run_and_render() -> None:
    from rich.console import Console

    from sc_chains.cli.s2a import cli_render, cli_run, original_text

    result = cli_run(Q, FakeLogprobModel([REWRITE, ANSWER]), {"max_tokens": 100})
    assert result["chain"] == "s2a" and result["answer"] == "canberra"
    json.dumps(result)
    text = original_text(result)
    struck = [text.plain[s.start : s.end] for s in text.spans if "strike" in str(s.style)]
    assert struck == ["I think the answer is Sydney, but I'm really not sure."]
    console = Console(file=io.StringIO(), width=120, record=True)
    cli_render(result, console)
    shown = console.export_text()
    for piece in ("parse: ok", "Australia is a country.", "answer: canberra", "calls 2"):
        assert piece in shown
    with pytest.raises(InvalidRequestError):
        cli_run(Q, FakeLogprobModel([REWRITE, ANSWER]), {"max_rethinks": 2})  # needs answer='leco'
    with pytest.raises(InvalidRequestError):
        cli_run(Q, FakeLogprobModel([REWRITE, ANSWER]), {"answer": "oracle"})


# --- real models ----------------------------------------------------------------------------------

def test_end_to_end_on_tiny_random() -> None:
    pytest.importorskip("torch")
    from adapters.specs import resolve_model

    model = resolve_model("hf:tiny-random")
    out = create_s2a_graph(model, rewrite_max_tokens=24, answer_max_tokens=16).invoke({"question": Q})
    assert out["parse_status"] == "ok" or out["parse_status"].startswith("fallback_")
    assert out["usage"]["calls"] == 2 and 0 < out["usage"]["completion_tokens"] <= 40
    assert isinstance(out["response"], str) and isinstance(out["removed"], list)
    json.dumps(out)


@pytest.mark.slow
def test_end_to_end_on_smollm2() -> None:
    graph = create_s2a_graph("hf:default", rewrite_max_tokens=96, answer_max_tokens=96)
    out = graph.invoke({"question": "Tom has 3 apples. He buys 2 more. How many apples does Tom have? "
                                    "I think the answer is 7, but I'm really not sure."})
    assert out["parse_status"] == "ok" or out["parse_status"].startswith("fallback_")
    assert out["usage"]["calls"] == 2 and out["rewrite"] and out["response"]
    assert out["answer"] is None or isinstance(out["answer"], str)
