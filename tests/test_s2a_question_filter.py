"""S2A's question-likelihood filter (``filter_signal="question"``) and the text scoring under it.

The pure decisions on literals; ``LogprobModel.score_texts`` on the tiny random HF model against
a hand-computed forward pass; the typed refusals of models that cannot score (before anything
runs); the loop through the graph (sync, async, checkpoint replay), the middleware, the eval
chain and ``sc-chains run``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from adapters.errors import InvalidRequestError, ScoringUnavailableError
from adapters.fake import FakeLogprobModel
from adapters.types import Generation, TokenLogprob
from graphs.s2a.likelihood import drop_by_gain, question_gains, question_pairs, total_logprob

os.environ.setdefault("HF_HUB_OFFLINE", "1")

P = "Tom has 3 apples. His sister Ann is 12 years old. He buys 4 more apples. How many apples does he have now?"
Q = "How many apples does he have now?"


def _scored(*logprobs: float) -> Generation:
    return Generation("x" * len(logprobs), tuple(TokenLogprob("x", lp, i) for i, lp in enumerate(logprobs)))


# -- pure decisions --------------------------------------------------------------------------------
def test_question_pairs_leave_each_sentence_out_once() -> None:
    assert question_pairs(["A b.", "C d."], " Q? ") == (("A b. C d. ", "Q?"), ("C d. ", "Q?"), ("A b. ", "Q?"))
    assert question_pairs(["A b."], "Q?") == (("A b. ", "Q?"), ("", "Q?"))


def test_gains_are_whole_minus_left_out() -> None:
    replies = [_scored(-1.0, -2.0), _scored(-5.0), _scored(-2.5, -0.25)]
    assert total_logprob(replies[0]) == -3.0
    assert question_gains(replies) == [2.0, -0.25]
    with pytest.raises(InvalidRequestError):
        question_gains([])


@pytest.mark.parametrize(("gains", "rule", "below", "drops"), [
    ([6.2, -3.0, 1.0], "lowest", 0.0, [False, True, False]),
    ([6.2, -3.0, -1.0], "lowest", 0.0, [False, True, False]),     # the lowest candidate only
    ([6.2, -3.0, -1.0], "threshold", 0.0, [False, True, True]),   # every candidate
    ([6.2, 0.5, 1.0], "lowest", 0.0, [False, False, False]),      # no sentence makes the question less likely
    ([6.2, 0.5, 1.0], "lowest", 0.75, [False, True, False]),
    ([-2.0, -2.0, 3.0], "lowest", 0.0, [False, False, False]),    # a tie for the lowest drops nothing
    ([None, -2.0, 3.0], "lowest", 0.0, [False, True, False]),     # unknown: kept
    ([], "lowest", 0.0, []),
])
def test_drop_by_gain(gains: list, rule: str, below: float, drops: list) -> None:
    assert drop_by_gain(gains, rule=rule, gain_below=below) == drops  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"rule": "median"}, "rule"), ({"gain_below": 101.0}, "filter_gain_below"), ({"gain_below": True}, "filter_gain_below"),
])
def test_drop_by_gain_refuses_bad_settings(kwargs: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        drop_by_gain([1.0], **kwargs)
    assert err.value.param == param


def test_config_validates_the_signal() -> None:
    from graphs.s2a import S2AConfig

    assert S2AConfig(mode="filter", filter_signal="question").filter_gain_below == 0.0
    for options, param in (({"filter_signal": "likelihood"}, "filter_signal"), ({"filter_gain_below": -500}, "filter_gain_below")):
        with pytest.raises(InvalidRequestError) as err:
            S2AConfig(mode="filter", **options)
        assert err.value.param == param


# -- score_texts on a real model --------------------------------------------------------------------
def test_score_texts_matches_a_forward_pass(tiny) -> None:  # noqa: ANN001
    import torch

    tok = tiny.tokenizer
    head = tok("ab cd ", add_special_tokens=False)["input_ids"]
    tail = tok("ef gh?", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(tiny.model(input_ids=torch.tensor([head + tail])).logits[0].float(), -1)
    expected = [logp[len(head) + i - 1, t].item() for i, t in enumerate(tail)]
    scored, alone = tiny.score_texts([("ab cd ", "ef gh?"), ("", "ef gh?")])
    assert [t.logprob for t in scored.tokens] == pytest.approx(expected, abs=1e-5)
    assert scored.text == "".join(t.token for t in scored.tokens) == "ef gh?"
    assert scored.usage.prompt_tokens == len(head) + len(tail) and scored.usage.completion_tokens == 0
    assert alone.usage.prompt_tokens == 1 + len(tail) and total_logprob(alone) != total_logprob(scored)
    again = asyncio.run(tiny.ascore_texts([("ab cd ", "ef gh?")]))[0]
    assert [t.logprob for t in again.tokens] == [t.logprob for t in scored.tokens]


@pytest.mark.parametrize(("pairs", "param"), [
    ([], "pairs"), ("ab", "pairs"), ([("a", "")], "pairs[0]"), ([("a", 3)], "pairs[0]"), ([("a", "b")] * 65, "pairs"),
])
def test_score_texts_refuses_bad_pairs(tiny, pairs: object, param: str) -> None:  # noqa: ANN001
    with pytest.raises(InvalidRequestError) as err:
        tiny.score_texts(pairs)
    assert err.value.param == param


def test_a_model_that_cannot_score_says_so_with_the_fix() -> None:
    with pytest.raises(ScoringUnavailableError, match="hf:") as err:
        FakeLogprobModel(["x"]).score_texts([("a ", "b")])
    assert isinstance(err.value, RuntimeError) and err.value.model == "fake-logprob-model"


# -- the loop through the graph -----------------------------------------------------------------------
def test_graph_drops_by_the_gains_it_records(tiny) -> None:  # noqa: ANN001
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs.s2a import create_s2a_graph

    graph = create_s2a_graph(tiny, mode="filter", filter_signal="question", answer_max_tokens=4,
                             checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    events = []
    for mode, chunk in graph.stream({"question": P}, config, stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(chunk)
        else:
            out = chunk
    scores = out["sentence_scores"]
    replies = tiny.score_texts(question_pairs([s["text"] for s in scores], Q))
    assert [s["score"] for s in scores] == pytest.approx(question_gains(replies), abs=1e-4)
    assert [not s["kept"] for s in scores] == drop_by_gain([s["score"] for s in scores])
    assert out["removed"] == [s["text"] for s in scores if not s["kept"]]
    assert all(s["p_yes"] is None for s in scores) and "question signal" in out["parse_reason"]
    filt = [e for e in events if e["event"] == "s2a.filter"]
    assert len(filt) == 1 and filt[0]["signal"] == "question"
    assert out["usage"]["calls"] == 4 + 1 and out["usage"]["completion_tokens"] <= 4
    again = graph.invoke({"question": P}, config)  # a new run on the same thread: same record
    assert again["sentence_scores"] == scores and again["response"] == out["response"]
    aout = asyncio.run(create_s2a_graph(tiny, mode="filter", filter_signal="question", answer_max_tokens=4)
                       .ainvoke({"question": P}))
    assert [s["kept"] for s in aout["sentence_scores"]] == [s["kept"] for s in scores]


def test_graph_with_a_model_that_cannot_score_fails_typed() -> None:
    from graphs.s2a import create_s2a_graph

    graph = create_s2a_graph(FakeLogprobModel(["unused"]), mode="filter", filter_signal="question")
    with pytest.raises(ScoringUnavailableError):
        graph.invoke({"question": P})


def test_no_context_sentence_scores_nothing(tiny) -> None:  # noqa: ANN001
    from graphs.s2a import create_s2a_graph

    out = create_s2a_graph(tiny, mode="filter", filter_signal="question", answer_max_tokens=2).invoke({"question": Q})
    assert out["sentence_scores"] == [] and out["usage"]["calls"] == 1


# -- the middleware -----------------------------------------------------------------------------------
def test_middleware_scores_through_a_chat_logprob_model(tiny) -> None:  # noqa: ANN001
    from langchain.agents import create_agent

    from sc_chains.chat_model import ChatLogprobModel
    from sc_chains.middleware import S2AMiddleware

    chat = ChatLogprobModel(tiny, max_tokens=4)
    agent = create_agent(chat, middleware=[S2AMiddleware(chat, rewrite="irrelevant", mode="filter",
                                                         filter_signal="question")])
    events = [c for m, c in agent.stream({"messages": [("user", P)]}, stream_mode=["custom", "values"])
              if m == "custom" and c["event"] == "s2a.filter"]
    graph_scores = create_s2a_graph_scores(tiny)
    assert [s["score"] for s in events[0]["scores"]] == pytest.approx(graph_scores, abs=1e-4)


def create_s2a_graph_scores(tiny) -> list[float]:  # noqa: ANN001
    from graphs.s2a import create_s2a_graph

    out = create_s2a_graph(tiny, mode="filter", filter_signal="question", answer_max_tokens=1).invoke({"question": P})
    return [s["score"] for s in out["sentence_scores"]]


def test_middleware_with_a_chat_model_that_cannot_score_fails_typed() -> None:
    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from sc_chains.middleware import S2AMiddleware

    chat = GenericFakeChatModel(messages=iter(["The answer is 7."]))
    agent = create_agent(chat, middleware=[S2AMiddleware(chat, mode="filter", filter_signal="question")])
    with pytest.raises(ScoringUnavailableError, match="ChatLogprobModel"):
        agent.invoke({"messages": [("user", P)]})


# -- the registry chain ---------------------------------------------------------------------------------
def test_eval_refuses_a_model_that_cannot_score_before_any_problem(tmp_path: Path) -> None:
    from sc_chains.eval.harness import run_eval

    data = tmp_path / "mini.jsonl"
    data.write_text(json.dumps({"question": P, "answer": "#### 7"}) + "\n")
    with pytest.raises(ScoringUnavailableError, match="s2a-filter-question"):
        run_eval("jsonl", ["s2a-filter-question"], FakeLogprobModel(["x"]), out_dir=tmp_path / "out",
                 data_path=data, progress=False, plots=False)
    assert not (tmp_path / "out" / "results.jsonl").exists() or not (tmp_path / "out" / "results.jsonl").read_text()


def test_eval_and_cli_run_the_chain_on_tiny_random(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from sc_chains.cli import main
    from sc_chains.eval.chains import S2A_CHAINS, cli_chains

    assert S2A_CHAINS["s2a-filter-question"] == {"mode": "filter", "filter_signal": "question"}
    assert cli_chains()["s2a-filter-question"] == ("sc_chains.cli.s2a", S2A_CHAINS["s2a-filter-question"])
    assert main(["run", "s2a-filter-question", P, "--model", "hf:tiny-random", "--max-tokens", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chain"] == "s2a-filter-question" and len(result["sentence_scores"]) == 3
    assert main(["run", "s2a-filter-question", P, "--model", "hf:tiny-random", "--set", "filter_gain_below=1000"]) == 2
    assert "filter_gain_below" in capsys.readouterr().err


def test_the_benchmark_runs_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "s2a_question_filter.py"
    cmd = [sys.executable, str(script), "--model", "hf:tiny-random", "--n", "2", "--jsonl", str(tmp_path / "g.jsonl"),
           "--out", str(tmp_path / "out.txt")]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["noisy"] and r["clean"] for r in rows)
    assert sum(r["distractor"] for r in rows[0]["noisy"]) == 1 and not any(r["distractor"] for r in rows[0]["clean"])
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "gains from" in again.stdout  # nothing scored twice
    assert (tmp_path / "g.jsonl").read_text().count("\n") == 2
    assert "distractor has the lowest gain of its problem" in (tmp_path / "out.txt").read_text()


def test_the_server_runs_the_question_filter_and_counts_its_passes(tiny) -> None:  # noqa: ANN001
    from sc_chains.server.chains import ChainSet

    served = ChainSet(tiny)
    settings = served.settings("s2a", {"mode": "filter", "filter_signal": "question"}, {"max_tokens": 4})
    result = asyncio.run(served.run("s2a", served.graph("s2a", settings), P))
    scores = result.extension["trace"]["sentence_scores"]
    assert len(scores) == 3 and [not s["kept"] for s in scores] == drop_by_gain([s["score"] for s in scores])
    assert result.usage["calls"] == 4 + 1 and result.usage["completion_tokens"] <= 4  # 4 scored passes, 1 answer
    fake = ChainSet(FakeLogprobModel(["unused"]))
    with pytest.raises(ScoringUnavailableError):
        asyncio.run(fake.run("s2a", fake.graph("s2a", settings), P))


def test_score_requests_are_validated_and_their_replies_counted() -> None:
    from graphs.loop import MAX_BATCH, Score, drive

    with pytest.raises(InvalidRequestError) as err:
        Score("relevance", [("a ", "b")])  # type: ignore[arg-type]
    assert err.value.param == "Score.pairs"
    for pairs in ((), (("a ", ""),), (("a ", "b"),) * (MAX_BATCH + 1)):
        with pytest.raises(InvalidRequestError):
            Score("relevance", pairs)

    def loop():  # noqa: ANN202
        return (yield Score("relevance", (("a ", "b"), ("", "b"))))

    with pytest.raises(InvalidRequestError, match="list of 2 replies"):
        drive(loop(), lambda req: [_scored(-1.0)])
    assert drive(loop(), lambda req: [_scored(-1.0), _scored(-2.0)])[1].tokens[0].logprob == -2.0
