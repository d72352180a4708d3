"""End-to-end eval: scripted fake with known accuracies, resume, CLI, and hf:tiny-random."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from adapters.fake import FakeLogprobModel
from adapters.types import GenerationRequest
from sc_chains.cli import eval as eval_cli
from sc_chains.cli.options import parse_model_options
from sc_chains.datasets import _NAMES
from sc_chains.eval.harness import EvalMismatchError, run_eval
from sc_chains.eval.report import markdown_table

N = 10


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """A GSM8K-format file: problem i asks for i + i."""
    f = tmp_path / "mini.jsonl"
    f.write_text("".join(
        json.dumps({"question": f"Q{i}: Sam has {i} pens. He gets {i} more pens. How many pens does Sam have?",
                    "answer": f"Sam has {i} + {i} pens.\n#### {2 * i}"}) + "\n"
        for i in range(N)))
    return f


def solution(i: int, right: bool) -> str:
    ans = 2 * i if right else 2 * i + 1
    return f"Step 1: Sam has {i} pens and gets {i} more.\nStep 2: {i} + {i} = {ans}.\nThe answer is {ans}."


def scripted(request: GenerationRequest) -> str:
    """A model whose behaviour we know: distracted below i < 4 only; an ideal S2A rewrite except
    for problem 6; a SCoRe revision that fixes problems 4 and 5 and breaks problem 0."""
    text = "\n".join(m["content"] for m in request.messages)
    i = int(re.search(r"Q(\d+):", text).group(1))
    last = request.messages[-1]["content"]
    if last.startswith("Given the following text by a user"):  # the S2A rewrite request
        context = f"Q{i}: Sam has {i} pens. He gets {i} more pens."
        if i == 6:  # this rewrite keeps everything, distractor included
            context = last.split("Text by User: ", 1)[1]
        return ("Context related to the question (includes all content except unrelated "
                f"sentences): {context}\nDetailed question: How many pens does Sam have?")
    if "There might be an error" in last:  # SCoRe second attempt
        return solution(i, right=(i < 6 and i != 0))
    distracted = any(name in text for name in _NAMES)
    return solution(i, right=i < (4 if distracted else 7))


def test_known_accuracies_flips_and_gap_in_summary(mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    model = FakeLogprobModel(default=scripted)
    chains = ["baseline", "oracle", "s2a", "critique-self", "critique", "leco", "s2a+leco"]
    summary = run_eval("gsm-ic", chains, model, out_dir=out, data_path=mini, concurrency=4,
                       progress=False, seed=5)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["chains"] == summary["chains"]
    c = on_disk["chains"]
    assert {k: c[k]["accuracy"] for k in chains} == {
        "baseline": 0.4, "oracle": 0.7, "s2a": 0.6, "critique-self": 0.5, "critique": 0.4, "leco": 0.4,
        "s2a+leco": 0.6}
    assert c["baseline"]["ci_low"] == pytest.approx(0.1682, abs=1e-3)  # Wilson 4/10
    assert c["s2a"]["vs_baseline"] == {"n": 10, "i_to_c": 0.2, "c_to_i": 0.0}
    assert on_disk["gap_recovered"]["s2a"] == pytest.approx(2 / 3)
    ta = c["critique-self"]["two_attempt"]
    assert ta["accuracy_t1"] == 0.4 and ta["accuracy_t2"] == pytest.approx(0.5)
    assert ta["delta_i_to_c"] == pytest.approx(0.2) and ta["delta_c_to_i"] == pytest.approx(0.1)
    assert c["baseline"]["cost"]["calls_per_problem"] == 1
    assert c["s2a"]["cost"]["calls_per_problem"] == 2 and c["critique-self"]["cost"]["calls_per_problem"] == 2
    # the default critique: the greedy second sample agrees with the draft, so nothing is revised
    # (draft + gate sample per problem) and nothing right is broken
    assert c["critique"]["cost"]["calls_per_problem"] == 2
    assert c["critique"]["two_attempt"]["delta_c_to_i"] == 0.0
    assert c["leco"]["cost"]["calls_per_problem"] >= 1
    assert all(e["failed"] == 0 for e in c.values())
    assert c["s2a"]["parse_status"] == {"ok": 10} and "parse_status" not in c["baseline"]

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == N * len(chains) and len({r["key"] for r in records}) == N * len(chains)
    s2a = next(r for r in records if r["key"] == "s2a::gsm8k-6:ic-in-topic")
    assert s2a["trace"]["rewrite"].startswith("Context related") and s2a["meta"]["distractor"]
    crit = next(r for r in records if r["key"] == "critique-self::gsm8k-0:ic-in-topic")
    assert crit["correct_t1"] is True and crit["correct"] is False and crit["answer_t1"] == "0"

    table = markdown_table(on_disk)
    assert "| baseline | 10 | 40.0 [16.8, 68.7] |" in table and "| s2a |" in table
    assert "\ns2a rewrites: ok 10 (of 10)" in table
    assert {Path(p).name for p in summary["plots"]} == {"accuracy_vs_tokens.png", "flips.png"}
    assert all((out / name).stat().st_size > 1000 for name in ("accuracy_vs_tokens.png", "flips.png"))

    # resume: nothing is run again, the same numbers come out
    calls = len(model.calls)
    again = run_eval("gsm-ic", chains, model, out_dir=out, data_path=mini, progress=False, seed=5,
                     plots=False)
    assert len(model.calls) == calls and again["run"]["skipped"] == N * len(chains)
    assert again["chains"] == summary["chains"]
    with pytest.raises(EvalMismatchError, match="seed"):
        run_eval("gsm-ic", chains, model, out_dir=out, data_path=mini, progress=False, seed=6)


def test_a_failing_chain_is_recorded_and_counted_wrong(mini: Path, tmp_path: Path) -> None:
    def flaky(request: GenerationRequest) -> str:
        if "Q3:" in request.messages[-1]["content"]:
            raise ConnectionError("server went away")
        return scripted(request)

    summary = run_eval("gsm8k", ["baseline"], FakeLogprobModel(default=flaky), out_dir=tmp_path / "r",
                       data_path=mini, retries=0, progress=False, plots=False)
    e = summary["chains"]["baseline"]
    assert (e["n"], e["correct"], e["failed"]) == (10, 6, 1)  # 7 right minus the failed one
    assert "server went away" in (tmp_path / "r" / "results.jsonl").read_text()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sc-chains")
    eval_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_rejects_bad_names_before_loading_a_model(tmp_path: Path) -> None:
    from adapters.errors import InvalidRequestError
    from sc_chains.datasets import DatasetError

    args = _parser().parse_args(["eval", "--dataset", "gsm8k", "--chains", "baseline,nope",
                                 "--model", "hf:does-not-matter", "--out", str(tmp_path)])
    with pytest.raises(InvalidRequestError, match="use one of baseline"):
        args.func(args)
    args = _parser().parse_args(["eval", "--dataset", "nope", "--model", "hf:x", "--out", str(tmp_path)])
    with pytest.raises(DatasetError, match="valid names"):
        args.func(args)
    assert eval_cli.parse_sets(["leco.max_rethinks=1", "s2a.rewrite=opinion"], ["leco", "s2a"]) == {
        "leco": {"max_rethinks": 1}, "s2a": {"rewrite": "opinion"}}
    with pytest.raises(InvalidRequestError, match="CHAIN.KEY=VALUE"):
        eval_cli.parse_sets(["critique.mode=score"], ["leco"])
    assert eval_cli.parse_fields("question=q, answer=a") == {"question": "q", "answer": "a"}
    assert parse_model_options(["dtype=bfloat16", "max_batch_size=16", "coalesce=false"]) == {
        "dtype": "bfloat16", "max_batch_size": 16, "coalesce": False}
    with pytest.raises(InvalidRequestError, match="'bf16'.*KEY=VALUE"):
        parse_model_options(["bf16"])
    args = _parser().parse_args(["eval", "--dataset", "gsm8k", "--model", "hf:x", "--base-url",
                                 "http://127.0.0.1:9/v1", "--out", str(tmp_path)])
    with pytest.raises(InvalidRequestError, match="only openai: specs take a base URL"):
        args.func(args)


def test_cli_end_to_end_on_tiny_random_hf_model(mini: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "tiny"
    args = _parser().parse_args([
        "eval", "--dataset", "svamp", "--data", str(_svamp(tmp_path)), "--chains", "baseline,critique-self",
        "--model", "hf:tiny-random", "--limit", "3", "--out", str(out), "--concurrency", "2",
        "--set", "baseline.max_tokens=16", "--set", "critique-self.max_tokens=16", "--no-progress",
        "--model-option", "max_batch_size=4", "--model-option", "coalesce_wait_s=0.01",
    ])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| baseline | 3 |" in printed and "| critique-self | 3 |" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "hf:tiny-random" and summary["problems"] == 3
    for name in ("baseline", "critique-self"):
        e = summary["chains"][name]
        assert e["n"] == 3 and e["failed"] == 0 and e["cost"]["completion_tokens_per_problem"] > 0
    assert summary["chains"]["critique-self"]["cost"]["calls_per_problem"] == 2
    options = {"max_batch_size": 4, "coalesce_wait_s": 0.01}
    assert summary["model_options"] == options
    assert json.loads((out / "run.json").read_text())["model_options"] == options
    # resuming with other adapter options would mix two setups in one table: refused
    args = _parser().parse_args(["eval", "--dataset", "svamp", "--data", str(_svamp(tmp_path)),
                                 "--chains", "baseline", "--model", "hf:tiny-random", "--limit", "3",
                                 "--out", str(out), "--model-option", "max_batch_size=2", "--no-progress"])
    with pytest.raises(EvalMismatchError, match="model_options"):
        args.func(args)


def _svamp(tmp_path: Path) -> Path:
    f = tmp_path / "SVAMP.json"
    f.write_text(json.dumps([{"ID": f"s{i}", "Body": f"Ann has {i} pens.", "Question": "How many pens?",
                              "Answer": float(i)} for i in range(5)]))
    return f


def test_without_matplotlib_plots_are_skipped_with_a_message(mini: Path, tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    summary = run_eval("gsm8k", ["baseline"], FakeLogprobModel(default=scripted), out_dir=tmp_path / "p",
                       data_path=mini, progress=False)
    assert summary["plots"] == [] and not list((tmp_path / "p").glob("*.png"))
    assert "matplotlib is not installed, skipping plots" in capsys.readouterr().err
    assert summary["chains"]["baseline"]["accuracy"] == 0.7


def test_s2a_differs_from_the_baseline_only_by_its_rewrite() -> None:
    from graphs.s2a.prompts import DEFAULT_INSTRUCTION
    from sc_chains.eval.chains import BASELINE_PROMPT, COT_INSTRUCTION
    from sc_chains.eval.harness import chain_options

    assert BASELINE_PROMPT == "{question}\n\n" + COT_INSTRUCTION
    ic = chain_options("gsm-ic", None)
    assert ic["s2a"] == {"rewrite": "irrelevant", "instruction": "", "answer_format": COT_INSTRUCTION}
    assert ic["s2a+leco"] == {"rewrite": "irrelevant", "instruction": ""}
    syc = chain_options("sycophancy", {"s2a": {"instruction": "Be brief."}})
    assert syc["s2a"]["rewrite"] == "opinion" and syc["s2a"]["instruction"] == "Be brief."
    assert syc["s2a+leco"]["instruction"] == DEFAULT_INSTRUCTION


def test_s2a_answer_prompt_in_an_eval_is_the_rewrite_plus_the_baseline_instruction(mini: Path,
                                                                                     tmp_path: Path) -> None:
    from sc_chains.eval.chains import COT_INSTRUCTION

    model = FakeLogprobModel(default=scripted)
    run_eval("gsm-ic", ["s2a"], model, out_dir=tmp_path / "s", data_path=mini, limit=1, progress=False,
             plots=False)
    answer_prompt = model.calls[1].messages[-1]["content"]
    assert answer_prompt == ("Q0: Sam has 0 pens. He gets 0 more pens.\n\nHow many pens does Sam have?\n\n"
                             + COT_INSTRUCTION)


def test_eval_extras_script_agrees_with_the_summary(mini: Path, tmp_path: Path, capsys) -> None:
    import importlib.util

    out = tmp_path / "x"
    summary = run_eval("gsm-ic", ["leco", "critique", "s2a", "s2a+leco"], FakeLogprobModel(default=scripted),
                       out_dir=out, data_path=mini, progress=False, plots=False)
    spec = importlib.util.spec_from_file_location(
        "eval_extras", Path(__file__).resolve().parents[1] / "benchmarks" / "eval_extras.py")
    extras = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extras)
    extras.main([str(out)])
    printed = capsys.readouterr().out
    c = summary["chains"]
    t1 = round(c["critique"]["two_attempt"]["accuracy_t1"] * N)
    t2 = c["critique"]["correct"]
    assert f"attempt 1 correct {t1}/{N} ({100 * t1 // N}%) -> attempt 2 {t2}/{N}" in printed
    assert f"-> final {c['leco']['correct']}/{N}" in printed
    assert f"rewrite parse {c['s2a']['parse_status']}" in printed
