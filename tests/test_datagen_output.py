"""What a datagen run leaves on disk: ``train.jsonl`` that ``datasets`` reads, an ``hf_dataset/``
folder on request, and a zero-yield run that says so instead of leaving an empty file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from graphs.critique.prompts import SCORE_INSTRUCTION
from sc_chains.datagen import ScoreGenerator, run_datagen
from sc_chains.datagen.run import NoTrainingRowsWarning
from sc_chains.datasets import Problem
from sc_chains.testing import FakeLogprobModel

PROBLEMS = [Problem(f"q{i}", f"What is {i} + 1?", str(i + 1)) for i in range(3)]


def _reply(right: bool):
    def reply(req):
        n = int(req.messages[0]["content"].split()[2])
        if req.messages[-1]["content"] == SCORE_INSTRUCTION:
            return f"{n} + 1 = {n + (1 if right else 5)}.<|im_end|>\nThe answer is {n + (1 if right else 5)}."
        return f"Guess.<pad>\nThe answer is {n}."
    return reply


def test_zero_yield_writes_no_train_file_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "z"
    (out).mkdir()
    with pytest.warns(NoTrainingRowsWarning, match="no second attempt was correct"):
        m = run_datagen(ScoreGenerator(FakeLogprobModel(default=_reply(False))), PROBLEMS, out,
                        dataset="unit", progress=False)
    assert m["status"] == "empty" and m["counts"] == {**m["counts"], "ok": 3, "examples": 0}
    assert "--format kto" in m["empty_reason"]
    assert not (out / "train.jsonl").exists() and "train" not in m["files"]
    assert json.loads((out / "manifest.json").read_text())["status"] == "empty"


def test_all_items_failed_gives_the_first_error(tmp_path: Path) -> None:
    def boom(req):
        raise RuntimeError("the server said no")

    with pytest.warns(NoTrainingRowsWarning) as w:
        m = run_datagen(ScoreGenerator(FakeLogprobModel(default=boom)), PROBLEMS, tmp_path / "f",
                        dataset="unit", progress=False, retries=0, backoff=0.0)
    assert m["status"] == "empty" and m["counts"]["failed"] == 3
    assert "all 3 items failed" in m["empty_reason"] and "the server said no" in m["empty_reason"]
    assert "the server said no" in str(w[0].message)


def test_rows_load_with_datasets_json_and_hf_dataset_round_trips(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="pip install 'sc-chains[train]'")
    out = tmp_path / "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoTrainingRowsWarning)
        m = run_datagen(ScoreGenerator(FakeLogprobModel(default=_reply(True))), PROBLEMS, out,
                        dataset="unit", fmt="prompt-completion", progress=False, hf_dataset=True)
    assert m["status"] == "ok" and m["counts"]["examples"] == 3 and m["files"]["hf_dataset"] == "hf_dataset"
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert "<|im_end|>" not in json.dumps(rows) and "<pad>" not in json.dumps(rows)
    ds = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    back = datasets.load_from_disk(str(out / "hf_dataset"))
    assert back.column_names == ds.column_names == ["prompt", "completion"]
    assert back.to_list() == ds.to_list() == rows
    # a rerun without the flag keeps the folder in sync rather than leaving it stale
    m2 = run_datagen(ScoreGenerator(FakeLogprobModel(default=_reply(True))), PROBLEMS[:2] + [
        Problem("q9", "What is 9 + 1?", "10")], out, dataset="unit", fmt="prompt-completion", progress=False)
    again = datasets.load_from_disk(str(out / "hf_dataset"))
    assert m2["counts"]["examples"] == len(again) == 3 and "9 + 1" in again[2]["prompt"][0]["content"]


def test_cli_hf_dataset_flag_and_empty_dataset(tmp_path: Path, capsys) -> None:
    pytest.importorskip("datasets", reason="pip install 'sc-chains[train]'")
    from sc_chains.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text("")
    code = main(["datagen", "score", "--dataset", f"jsonl:{data}", "--model", "hf:tiny-random",
                 "--out", str(tmp_path / "o"), "--no-progress", "--hf-dataset"])
    err = capsys.readouterr().err
    assert code == 1 and "no problems (n=0)" in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "train.jsonl").exists() and not (tmp_path / "o" / "hf_dataset").exists()
