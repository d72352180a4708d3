"""S2A's variants as options of the one loop: the few-shot rewrite and the relevance filter.

Config validation, the few-shot prompt (its examples parse, they are not from the shipped data,
the parser reads what Qwen2.5-Coder-0.5B wrote), the filter in the graph (scores recorded, the
question never dropped, explicit fallbacks), the middleware and the graph making the same run,
the registry chains (eval, ``--set``, ``sc-chains run``).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path

import pytest

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from graphs.s2a import S2AConfig, create_s2a_graph
from graphs.s2a.filter import MAX_SENTENCES, RELEVANCE_INSTRUCTION, RELEVANCE_TOP_LOGPROBS
from graphs.s2a.parse import parse_rewrite
from graphs.s2a.prompts import BUILTIN_REWRITES, FEW_SHOT_EXAMPLES, RewritePrompt, builtin_rewrite

os.environ.setdefault("HF_HUB_OFFLINE", "1")

P = "Tom has 3 apples. His sister Ann is 12 years old. He buys 4 more apples. How many apples does he have now?"
KEPT = "Tom has 3 apples. He buys 4 more apples. How many apples does he have now?"
ANSWER = "3 + 4 = 7.\nThe answer is 7."


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "param"), [
    ({"mode": "sieve"}, "mode"),
    ({"mode": "filter", "variant": "single"}, "variant"),
    ({"mode": "filter", "few_shot": True}, "few_shot"),
    ({"few_shot": "yes"}, "few_shot"),
    ({"filter_rule": "median"}, "filter_rule"),
    ({"filter_threshold": 1.5}, "filter_threshold"),
    ({"filter_margin": -0.1}, "filter_margin"),
    ({"rewrite": RewritePrompt("Rewrite: {input} Context: Question:", "Context:", "Question:"), "few_shot": True}, "few_shot"),
])
def test_config_refuses_bad_variant_options(options: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        S2AConfig(**options)
    assert err.value.param == param


def test_runnable_takes_the_variant() -> None:
    from sc_chains.runnables import s2a_chain

    out = s2a_chain(FakeLogprobModel(["Yes", "No", "Yes", ANSWER]), output="state", mode="filter").invoke(P)
    assert out["answer"] == "7" and out["removed"] == ["His sister Ann is 12 years old."]


def test_config_picks_the_few_shot_prompt() -> None:
    assert S2AConfig(rewrite="irrelevant", few_shot=True).prompt is BUILTIN_REWRITES["irrelevant_fewshot"]
    assert S2AConfig(rewrite="opinion", variant="single", few_shot=True).prompt.name == "opinion_single_fewshot"
    assert S2AConfig(rewrite="irrelevant").prompt.examples == ()
    assert S2AConfig(mode="filter", variant="keep_original").mode == "filter"


# -- the few-shot prompt ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n in BUILTIN_REWRITES if n.endswith("_fewshot")))
def test_few_shot_examples_are_in_the_format_the_parser_reads(name: str) -> None:
    prompt = BUILTIN_REWRITES[name]
    base = name.removesuffix("_fewshot").removesuffix("_single")
    assert len(prompt.examples) == len(FEW_SHOT_EXAMPLES[base]) == 2
    for (text, rewrite), (_, context, question) in zip(prompt.examples, FEW_SHOT_EXAMPLES[base]):
        parsed = parse_rewrite(rewrite, text, context_label=prompt.context_label, question_label=prompt.question_label)
        assert parsed.status == "ok"
        if prompt.single:
            assert parsed.context == " ".join(p for p in (context, question) if p)
        else:
            assert (parsed.context, parsed.query) == (context, question)
    msgs = prompt.messages("Ann has 2 pens. How many pens?")
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[-1]["content"] == BUILTIN_REWRITES[name.removesuffix("_fewshot")].render("Ann has 2 pens. How many pens?")


def test_few_shot_examples_are_not_from_the_shipped_datasets() -> None:
    from sc_chains.datasets import load_dataset

    texts = [p.question for name in ("gsm-ic", "gsm8k", "svamp", "sycophancy") for p in load_dataset(name)]
    for examples in FEW_SHOT_EXAMPLES.values():
        for text, _, question in examples:
            assert not any(question in t or text.split(". ")[0] in t for t in texts), text


def test_rewrite_prompt_examples_are_validated() -> None:
    ok = RewritePrompt("Rewrite: {input} Context: Question:", "Context:", "Question:",
                       examples=(("A has 1. How many?", "Context: A has 1.\nQuestion: How many?"),))
    assert len(ok.messages("x")) == 3
    with pytest.raises(InvalidRequestError, match="label"):
        RewritePrompt("Rewrite: {input} Context: Question:", "Context:", "Question:",
                      examples=(("A has 1. How many?", "A has 1. How many?"),))
    with pytest.raises(InvalidRequestError, match="pair"):
        RewritePrompt("Rewrite: {input} Context:", "Context:", examples=(("only one",),))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="tuple"):
        RewritePrompt("Rewrite: {input} Context:", "Context:", examples=[("a", "Context: a")])  # type: ignore[arg-type]


# What hf:qwen2.5-coder-0.5b (bf16, greedy) wrote for GSM-IC problems with the few-shot prompt
# (benchmarks/s2a_variants.py); the zero-shot prompt got no section labels from it at all.
QWEN_FEWSHOT = [
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
     "Esme's friend is 92 years old. How many clips did Natalia sell altogether in April and May?",
     "Context related to the question (includes all content except unrelated sentences): Natalia sold clips to "
     "48 of her friends in April, and then she sold half as many clips in May.\nDetailed question: How many "
     "clips did Natalia sell altogether in April and May?",
     "Esme's friend is 92 years old."),
    ("Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. The shoe size "
     "of Bilal's friend is 28. How much did she earn?",
     "Context related to the question (includes all content except unrelated sentences): Weng earns $12 an hour "
     "for babysitting. Yesterday, she just did 50 minutes of babysitting.\nDetailed question: How much did she earn?",
     "The shoe size of Bilal's friend is 28."),
]


@pytest.mark.parametrize(("original", "raw", "distractor"), QWEN_FEWSHOT)
def test_the_parser_reads_what_qwen_wrote_with_the_few_shot_prompt(original: str, raw: str, distractor: str) -> None:
    from graphs.s2a.loop import compose

    record = compose(original, raw, "stop", S2AConfig(rewrite="irrelevant", few_shot=True, instruction=""))
    assert record["status"] == "ok" and record["removed"] == [distractor]
    assert distractor not in record["prompt"]


def test_few_shot_graph_sends_the_examples_as_earlier_turns() -> None:
    raw = ("Context related to the question (includes all content except unrelated sentences): Tom has 3 apples. "
           "He buys 4 more apples.\nDetailed question: How many apples does he have now?")
    fake = FakeLogprobModel([raw, ANSWER])
    out = create_s2a_graph(fake, rewrite="irrelevant", few_shot=True, instruction="", answer_format="").invoke(
        {"question": P})
    sent = fake.calls[0].messages
    assert list(sent) == list(BUILTIN_REWRITES["irrelevant_fewshot"].messages(P))
    assert out["parse_status"] == "ok" and out["removed"] == ["His sister Ann is 12 years old."]
    assert out["sentence_scores"] == [] and out["answer"] == "7"


# -- the filter in the graph -----------------------------------------------------------------------
def test_filter_graph_records_every_score_and_drops_the_lowest() -> None:
    fake = FakeLogprobModel(["Yes", "No", "Yes", ANSWER])
    graph = create_s2a_graph(fake, mode="filter", instruction="", answer_format="")
    events = list(graph.stream({"question": P}, stream_mode="custom"))
    out = create_s2a_graph(FakeLogprobModel(["Yes", "No", "Yes", ANSWER]), mode="filter", instruction="",
                           answer_format="").invoke({"question": P})
    assert [e["event"] for e in events] == ["s2a.filter", "s2a.rewrite", "s2a.answer"]
    assert [(s["text"], s["score"], s["kept"]) for s in out["sentence_scores"]] == [
        ("Tom has 3 apples.", 1.0, True), ("His sister Ann is 12 years old.", 0.0, False),
        ("He buys 4 more apples.", 1.0, True)]
    assert out["removed"] == ["His sister Ann is 12 years old."] == events[0]["dropped"]
    assert (out["parse_status"], out["query"], out["answer_prompt"]) == ("ok", "How many apples does he have now?", KEPT)
    assert out["answer"] == "7" and out["usage"]["calls"] == 4
    relevance = fake.calls[:3]
    assert all(r.max_tokens == 1 and r.top_logprobs == RELEVANCE_TOP_LOGPROBS for r in relevance)
    assert all(r.messages[-1]["content"].endswith(RELEVANCE_INSTRUCTION) for r in relevance)
    assert fake.calls[3].messages[-1]["content"] == KEPT


def test_filter_never_drops_the_question() -> None:
    # every context sentence below the threshold: all dropped, the question stays (it is not scored)
    text = "Ann had 5 pens. How many pens are left? She lost 2 pens. Her dog is brown."
    fake = FakeLogprobModel(["No", "No", "No", ANSWER])
    out = create_s2a_graph(fake, mode="filter", filter_rule="threshold", filter_threshold=1.0, instruction="",
                           answer_format="").invoke({"question": text})
    assert len(fake.calls) == 4 and "How many pens are left?" not in [s["text"] for s in out["sentence_scores"]]
    assert out["answer_prompt"] == "How many pens are left?" and len(out["removed"]) == 3
    # an earlier question sentence is scored and recorded, never dropped; the lowest rule skips it
    text = "Can you help me? Ann had 5 pens. Her dog is brown. She lost 2 pens. How many pens are left?"
    out = create_s2a_graph(FakeLogprobModel(["No", "Yes", "No", "Yes", ANSWER]), mode="filter",
                           instruction="", answer_format="").invoke({"question": text})
    assert [(s["score"], s["kept"]) for s in out["sentence_scores"]] == [(0.0, True), (1.0, True), (0.0, False),
                                                                         (1.0, True)]
    assert out["removed"] == ["Her dog is brown."]
    # a question alone: nothing to score, no relevance call
    fake = FakeLogprobModel([ANSWER])
    out = create_s2a_graph(fake, mode="filter").invoke({"question": "What is 3 + 4?"})
    assert len(fake.calls) == 1 and out["parse_status"] == "ok" and out["sentence_scores"] == []


def test_nothing_dropped_means_the_baseline_prompt() -> None:
    fake = FakeLogprobModel(["Yes", "Yes", "Yes", ANSWER])
    out = create_s2a_graph(fake, mode="filter", instruction="", answer_format="").invoke({"question": P})
    assert out["removed"] == [] and out["answer_prompt"] == P and out["parse_status"] == "ok"


def test_filter_fallbacks_are_explicit() -> None:
    # no Yes/No token in any reply: nothing dropped, said so
    out = create_s2a_graph(FakeLogprobModel(["Sure", "Sure", "Sure", ANSWER]), mode="filter", answer_format="",
                           instruction="").invoke({"question": P})
    assert out["parse_status"] == "fallback_no_scores" and out["removed"] == [] and out["answer_prompt"] == P
    # dropping the user's instruction is refused: the model sees the original
    text = "Use the calculator tool. Tom has 3 apples. He buys 4 more. How many apples does he have?"
    out = create_s2a_graph(FakeLogprobModel(["No", "Yes", "Yes", ANSWER]), mode="filter", answer_format="",
                           instruction="").invoke({"question": text})
    assert out["parse_status"] == "fallback_check" and "instruction" in out["parse_reason"]
    assert out["removed"] == [] and out["answer_prompt"] == text
    assert [s["kept"] for s in out["sentence_scores"]] == [False, True, True]  # the scores stay recorded
    # a text too long to score sentence by sentence: no relevance call at all
    long_text = " ".join(f"Box {i} has {i} pens." for i in range(MAX_SENTENCES + 1)) + " How many pens?"
    fake = FakeLogprobModel([ANSWER])
    out = create_s2a_graph(fake, mode="filter", answer_format="", instruction="").invoke({"question": long_text})
    assert len(fake.calls) == 1 and out["parse_status"] == "fallback_too_long" and out["removed"] == []


def test_filter_keep_original_and_budget() -> None:
    out = create_s2a_graph(FakeLogprobModel(["Yes", "No", "Yes", ANSWER]), mode="filter", variant="keep_original",
                           instruction="", answer_format="").invoke({"question": P})
    assert out["answer_prompt"] == f"Original user query (possibly biased): {P}\n\nRewritten question: {KEPT}"
    out = create_s2a_graph(FakeLogprobModel(["Yes", "No", "Yes", ANSWER]), mode="filter",
                           max_completion_tokens=3).invoke({"question": P})
    assert out["stop_reason"] == "max_completion_tokens" and out["usage"]["calls"] == 3


def test_filter_async_equals_sync() -> None:
    def make() -> object:
        return create_s2a_graph(FakeLogprobModel(["Yes", "No", "Yes", ANSWER]), mode="filter")

    sync = make().invoke({"question": P})  # type: ignore[attr-defined]
    out = asyncio.run(make().ainvoke({"question": P}))  # type: ignore[attr-defined]
    assert {k: v for k, v in out.items() if k != "replies"} == {k: v for k, v in sync.items() if k != "replies"}


# -- the middleware: the relevance model (its run = the graph's: tests/test_drivers_equivalent.py) ----
def test_relevance_model_binds_only_declared_fields() -> None:
    from sc_chains.chat_model import ChatLogprobModel
    from sc_chains.middleware.s2a import relevance_model

    bound = relevance_model(ChatLogprobModel(FakeLogprobModel(["Yes"])))
    assert bound.kwargs == {"top_logprobs": RELEVANCE_TOP_LOGPROBS, "max_tokens": 1, "temperature": 0.0}
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    plain = GenericFakeChatModel(messages=iter(["Yes"]))
    assert relevance_model(plain) is plain


# -- the registry chains ---------------------------------------------------------------------------
def test_registry_has_the_variants_with_their_settings() -> None:
    from sc_chains.cli.options import parse_sets, validate_chain_options
    from sc_chains.eval.chains import CHAINS, COT_INSTRUCTION, S2A_CHAINS, cli_chains
    from sc_chains.eval.harness import LOGPROB_CHAINS, chain_options

    assert S2A_CHAINS == {"s2a": {}, "s2a-fewshot": {"few_shot": True}, "s2a-filter": {"mode": "filter"},
                          "s2a-filter-question": {"mode": "filter", "filter_signal": "question"}}
    assert {"s2a-fewshot", "s2a-filter"} <= set(CHAINS)
    assert cli_chains()["s2a-filter"] == ("sc_chains.cli.s2a", {"mode": "filter"})
    assert "s2a-filter" in LOGPROB_CHAINS and "s2a-fewshot" not in LOGPROB_CHAINS
    ic = chain_options("gsm-ic", None)
    assert ic["s2a-filter"] == ic["s2a-fewshot"] == ic["s2a"] == {
        "rewrite": "irrelevant", "instruction": "", "answer_format": COT_INSTRUCTION}
    assert parse_sets(["s2a-filter.filter_rule=threshold", "s2a-filter.filter_threshold=0.4"], ["s2a-filter"]) == {
        "s2a-filter": {"filter_rule": "threshold", "filter_threshold": 0.4}}
    with pytest.raises(InvalidRequestError) as err:
        validate_chain_options("s2a-filter", {"few_shot": True})
    assert err.value.param == "--set s2a-filter.few_shot"
    with pytest.raises(InvalidRequestError, match="filter_rule"):
        validate_chain_options("s2a-fewshot", {"filter_rul": "lowest"})


def test_eval_runs_both_variants_on_a_scripted_model(tmp_path: Path) -> None:
    from sc_chains.eval.harness import run_eval

    data = tmp_path / "mini.jsonl"
    data.write_text(json.dumps({"question": P, "answer": "Tom ends with 7.\n#### 7"}) + "\n")
    raw = ("Context related to the question (includes all content except unrelated sentences): Tom has 3 apples. "
           "He buys 4 more apples.\nDetailed question: How many apples does he have now?")

    def reply(request):  # noqa: ANN001, ANN202
        last = request.messages[-1]["content"]
        if last.endswith(RELEVANCE_INSTRUCTION):
            return "No" if "Ann" in last.split("Sentence:")[1] else "Yes"
        return raw if last.startswith("Given the following text") else ANSWER

    summary = run_eval("jsonl", ["s2a-fewshot", "s2a-filter"], FakeLogprobModel(default=reply),
                       out_dir=tmp_path / "out", data_path=data, progress=False, plots=False)
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    by_chain = {r["chain"]: r for r in rows}
    assert by_chain["s2a-filter"]["trace"]["removed"] == ["His sister Ann is 12 years old."]
    assert [s["kept"] for s in by_chain["s2a-filter"]["trace"]["sentence_scores"]] == [True, False, True]
    assert by_chain["s2a-fewshot"]["trace"]["parse_status"] == "ok"
    assert all(r["correct"] for r in rows) and summary


def test_cli_run_and_render_the_filter() -> None:
    from rich.console import Console

    from sc_chains.cli.s2a import cli_render, cli_run

    result = cli_run(P, FakeLogprobModel(["Yes", "No", "Yes", ANSWER]), {"mode": "filter", "max_tokens": 50})
    assert result["chain"] == "s2a-filter" and result["answer"] == "7"
    console = Console(file=io.StringIO(), width=140, record=True)
    cli_render(result, console)
    shown = console.export_text()
    assert "DROPPED  His sister Ann is 12 years old." in shown and "1.000  kept" in shown


def test_sc_chains_run_refuses_a_contradictory_option(capsys: pytest.CaptureFixture[str]) -> None:
    from sc_chains.cli import main

    assert main(["run", "s2a-filter", P, "--model", "hf:tiny-random", "--set", "few_shot=true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "few_shot" in err[0]


@pytest.mark.parametrize("chain", ["s2a-filter", "s2a-fewshot"])
def test_sc_chains_run_on_tiny_random(chain: str, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from sc_chains.cli import main

    assert main(["run", chain, P, "--model", "hf:tiny-random", "--max-tokens", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chain"] == chain and result["usage"]["calls"] >= 2
    if chain == "s2a-filter":
        assert len(result["sentence_scores"]) == 3 and result["usage"]["calls"] == 4
