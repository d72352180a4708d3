"""``sc-chains datagen`` end to end on ``hf:tiny-random`` (real logits, gibberish text)."""

from __future__ import annotations

import argparse
import json

import pytest

from adapters.errors import InvalidRequestError
from sc_chains.cli.datagen import build_generator, register


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sc-chains")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["datagen", *argv])


def run(argv: list[str]) -> int:
    args = parse(argv)
    return args.func(args)


COMMON = ["--dataset", "gsm8k", "--model", "hf:tiny-random", "--limit", "2",
          "--max-tokens", "12", "--no-progress", "--concurrency", "2"]


@pytest.mark.parametrize(
    ("kind", "extra", "items", "fmt", "drop"),
    [  # gibberish from tiny-random: only score's kto format yields rows; the others yield none
        ("score", ["--samples", "2", "--temperature", "0.9", "--format", "kto"], 4, "kto", None),
        ("score", ["--samples", "2", "--temperature", "0.9"], 4, "messages", "no second attempt was correct"),
        ("self-reward", ["--samples", "2", "--judge-k", "1", "--judge-max-tokens", "8"], 2, "preference",
         "too_few_scored"),
        ("w2s", ["--weak-model", "hf:tiny-random", "--stage", "2", "--samples", "3"], 2, "preference",
         "low_confidence"),
        ("leco-steps", ["--set", "max_rethinks=1"], 2, "stepwise", "final_incorrect"),
    ],
)
def test_each_kind_end_to_end(tmp_path, capsys, kind, extra, items, fmt, drop):
    out = tmp_path / kind
    code = run([kind, *COMMON, "--out", str(out), *extra])
    std = capsys.readouterr()
    raw = [json.loads(x) for x in (out / "raw.jsonl").read_text().splitlines()]
    assert len(raw) == items and all(r["status"] == "ok" and r["kind"] == kind for r in raw)
    assert all(r["usage"]["completion_tokens"] > 0 for r in raw)
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["items"] == items and m["format"] == fmt and m["models"]["model"] == "hf:tiny-random"
    assert m["dataset"]["name"] == "gsm8k" and m["tokens"]["calls"] == sum(r["usage"]["calls"] for r in raw)
    if drop is None:
        assert code == 0 and f"wrote {out}" in std.out and m["status"] == "ok"
        rows = (out / "train.jsonl").read_text().splitlines()
        assert len(rows) == m["counts"]["examples"] > 0
        return
    # zero yield: said on stderr (one line), in the manifest, by the exit code; no empty train.jsonl
    assert code == 1 and m["status"] == "empty" and m["counts"]["examples"] == 0 and m["yield"] == 0.0
    assert drop in m["empty_reason"] and "To get rows" in m["empty_reason"]
    assert std.err.count("\n") == 1 and std.err.startswith("sc-chains: error: no training rows") and drop in std.err
    assert not (out / "train.jsonl").exists() and "train" not in m["files"]


def test_score_rewards_on_real_model(tmp_path):
    out = tmp_path / "s"
    run(["score", *COMMON, "--out", str(out)])
    raw = [json.loads(x) for x in (out / "raw.jsonl").read_text().splitlines()]
    for r in raw:  # gibberish never matches the gold answer: both rewards 0
        assert (r["r1"], r["r2"], r["shaped_reward"], r["transition"]) == (0.0, 0.0, 0.0, "i->i")
        assert [m["role"] for m in r["messages"]] == ["user", "assistant", "user", "assistant"]
        assert 0.0 <= r["edit_distance"] <= 1.0


def test_bad_arguments_fail_before_loading(tmp_path):
    with pytest.raises(InvalidRequestError, match="temperature > 0"):
        build_generator(parse(["score", *COMMON, "--out", str(tmp_path), "--samples", "3", "--temperature", "0"]))
    with pytest.raises(InvalidRequestError, match="only openai"):
        build_generator(parse(["score", *COMMON, "--out", str(tmp_path), "--base-url", "http://x/v1"]))
    with pytest.raises(SystemExit):
        parse(["w2s", *COMMON, "--out", str(tmp_path)])  # --weak-model is required
    with pytest.raises(InvalidRequestError, match="exports to one of"):
        run(["score", *COMMON, "--out", str(tmp_path), "--format", "stepwise"])


def test_self_reward_from_a_prompts_file(tmp_path):
    (tmp_path / "prompts.txt").write_text("Write a haiku.\nName a colour.\n")
    out = tmp_path / "sr"
    assert run(["self-reward", "--prompts", str(tmp_path / "prompts.txt"), "--model", "hf:tiny-random",
                "--samples", "2", "--judge-k", "1", "--max-tokens", "8", "--judge-max-tokens", "8", "--out", str(out),
                "--no-progress"]) in (0, 1)  # 1: gibberish judges give no pair (zero yield)
    raw = [json.loads(x) for x in (out / "raw.jsonl").read_text().splitlines()]
    assert sorted(r["problem_id"] for r in raw) == ["prompt-0", "prompt-1"]
    assert json.loads((out / "manifest.json").read_text())["dataset"]["name"] == "prompts"
