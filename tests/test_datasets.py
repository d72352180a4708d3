"""Dataset loaders and builders: real files, seeded reproducible variants, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sc_chains.datasets import (
    DataFileNotFoundError,
    DatasetError,
    Problem,
    add_distractor,
    add_opinion,
    load_dataset,
)


def test_gsm8k_answers_are_the_number_after_hashes() -> None:
    problems = load_dataset("gsm8k", limit=5)
    assert [p.id for p in problems] == [f"gsm8k-{i}" for i in range(5)]
    assert problems[0].answer == "72" and problems[0].question.startswith("Natalia sold clips")
    assert problems[1].answer == "10"
    everything = load_dataset("gsm8k")
    assert len(everything) == 7473
    assert all(p.answer.lstrip("-").isdigit() for p in everything)  # "#### 1,080" -> "1080"
    assert "1080" in {p.answer for p in everything}


def test_svamp_joins_body_and_question_and_normalises_answer() -> None:
    p = load_dataset("svamp", limit=1)[0]
    assert p.id == "chal-1"
    assert p.question == ("Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars "
                          "on each pack How much do you have to pay to buy each pack?")
    assert p.answer == "51"  # 51.0 -> "51"
    assert len(load_dataset("svamp")) == 1000


def _base(q: str = "Tom has 5 apples. He buys 3 more apples. How many apples does he have?") -> Problem:
    return Problem("p-1", q, "8", {})


@pytest.mark.parametrize("variant", ["in-topic", "random"])
def test_distractor_is_inserted_between_sentences_and_oracle_is_clean(variant: str) -> None:
    base = _base()
    p = add_distractor(base, variant, seed=3)
    d = p.meta["distractor"]
    assert p.meta["oracle"] == base.question
    assert p.question.replace(d + " ", "", 1) == base.question  # exactly one sentence added
    assert p.question.index(d) > 0  # never before the first sentence
    assert p.question.endswith("How many apples does he have?")  # the question stays last
    assert p.answer == base.answer and p.id == f"p-1:ic-{variant}"
    assert add_distractor(base, variant, seed=3) == p  # reproducible
    seeds = {add_distractor(base, variant, seed=s).question for s in range(12)}
    assert len(seeds) > 3  # the seed really varies sentence, number and position


def test_in_topic_reuses_the_problem_setting_random_does_not() -> None:
    base = _base()
    in_topic = {add_distractor(base, "in-topic", seed=s).meta["distractor"] for s in range(20)}
    assert all("apples" in d for d in in_topic)
    rand = {add_distractor(base, "random", seed=s).meta["distractor"] for s in range(20)}
    assert not any("apples" in d for d in rand)
    for d in in_topic | rand:  # a different person, a number not in the problem
        assert "Tom" not in d and not {"5", "3"} & set(d.replace(".", " ").split())


def test_gsm_ic_dataset_is_seeded_and_reproducible() -> None:
    a = load_dataset("gsm-ic", limit=20, seed=1)
    assert a == load_dataset("gsm-ic:in-topic", limit=20, seed=1)
    assert load_dataset("gsm-ic", limit=20, seed=2) != a
    clean = load_dataset("gsm8k", limit=20)
    for p, c in zip(a, clean):
        assert p.meta["oracle"] == c.question and p.answer == c.answer
        assert p.meta["distractor"] in p.question and p.meta["distractor"] not in c.question


def test_opinions_follow_the_s2a_templates() -> None:
    base = _base()
    sc = add_opinion(base, "suggest-correct")
    assert sc.question == base.question + " I think the answer is 8, but I'm really not sure."
    rc = add_opinion(base, "refute-correct")
    assert rc.question.endswith("I don't think the answer is 8, but I'm really not sure.")
    for seed in range(10):
        si = add_opinion(base, "suggest-incorrect", seed=seed)
        x = si.meta["suggested"]
        assert x != "8" and int(x) > 0 and f"I think the answer is {x}," in si.question
        assert si.meta["oracle"] == base.question and si.meta["kind"] == "suggest-incorrect"
    assert add_opinion(base, "suggest-incorrect", seed=4) == add_opinion(base, "suggest-incorrect", seed=4)


def test_sycophancy_dataset_cycles_kinds() -> None:
    kinds = [p.meta["kind"] for p in load_dataset("sycophancy", limit=6)]
    assert kinds == ["suggest-correct", "suggest-incorrect", "refute-correct"] * 2
    only = load_dataset("sycophancy:suggest-incorrect", limit=4)
    assert {p.meta["kind"] for p in only} == {"suggest-incorrect"}


def test_jsonl_with_field_mapping_and_missing_field_error(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"q": "What is 2+2?", "a": "4", "src": "x"},
        {"q": "What is 3+3?", "a": "#### 6"},
    ]) + "\n")
    ps = load_dataset(f"jsonl:{f}", fields={"question": "q", "answer": "a"})
    assert [(p.id, p.question, p.answer) for p in ps] == [("mine-0", "What is 2+2?", "4"),
                                                         ("mine-1", "What is 3+3?", "6")]
    assert ps[0].meta == {"src": "x"}
    with pytest.raises(DatasetError) as err:
        load_dataset(f"jsonl:{f}")  # default field names are not there
    msg = str(err.value)
    assert "'question'" in msg and ":1:" in msg and "['a', 'q', 'src']" in msg


def test_unknown_dataset_and_missing_file_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SC_CHAINS_DATA", raising=False)
    with pytest.raises(DatasetError, match="valid names: gsm8k, svamp"):
        load_dataset("mmlu")
    with pytest.raises(DataFileNotFoundError) as err:
        load_dataset("gsm8k", path=tmp_path / "nope.jsonl")
    assert "nope.jsonl" in str(err.value) and "SC_CHAINS_DATA" in str(err.value)
    monkeypatch.setenv("SC_CHAINS_DATA", str(tmp_path))
    (tmp_path / "svamp").mkdir()
    (tmp_path / "svamp" / "SVAMP.json").write_text(json.dumps(
        [{"ID": "s1", "Body": "Ann has 2 pens.", "Question": "How many pens?", "Answer": 2.0}]))
    assert load_dataset("svamp")[0].question == "Ann has 2 pens. How many pens?"


def test_bundled_data_ships_in_the_package_with_its_licences(monkeypatch) -> None:
    from sc_chains.datasets import PACKAGE_DATA, data_dirs

    monkeypatch.delenv("SC_CHAINS_DATA", raising=False)
    assert data_dirs() == [PACKAGE_DATA]  # no ../shared: nothing outside the package is needed
    for folder, data in (("gsm8k", "train.jsonl.gz"), ("svamp", "SVAMP.json.gz")):
        assert (PACKAGE_DATA / folder / data).stat().st_size > 10_000
        licence = (PACKAGE_DATA / folder / "LICENSE").read_text()
        assert licence.startswith("MIT License") and "Copyright (c) 2021" in licence


def test_sc_chains_data_folder_overrides_and_gz_files_are_read(tmp_path: Path, monkeypatch) -> None:
    import gzip

    (tmp_path / "gsm8k").mkdir()
    rows = [{"question": "Ann has 2 pens and buys 3. How many?", "answer": "2 + 3 = 5\n#### 5"}]
    (tmp_path / "gsm8k" / "train.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    monkeypatch.setenv("SC_CHAINS_DATA", str(tmp_path))
    assert [(p.id, p.answer) for p in load_dataset("gsm8k")] == [("gsm8k-0", "5")]
    assert len(load_dataset("svamp", limit=3)) == 3  # not in the override folder: the package's


def test_other_splits_need_the_datasets_library_and_say_so_offline(monkeypatch) -> None:
    from sc_chains.datasets import DatasetUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("gsm8k:test", limit=2)
    msg = str(err.value)
    assert "'gsm8k:test'" in msg and ("HF_HUB_OFFLINE" in msg or "pip install" in msg)
    assert "'gsm8k' (train)" in msg or "pip install" in msg  # the offline alternative or the install fix
    assert isinstance(err.value, OSError)


def test_hf_dataset_rows_go_through_the_same_mapping_and_checks(tmp_path: Path) -> None:
    pytest.importorskip("datasets", reason="the datasets library is not installed (sc-chains[train])")
    folder = tmp_path / "my-data"  # a local folder: the datasets library's own loader, no network
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"q": "What is 2+2?", "a": 4}, {"q": "What is 3+3?", "a": "#### 6"}, {"q": "What is 1+1?", "a": "2"}]))
    ps = load_dataset(f"hf:{folder}", fields={"question": "q", "answer": "a"}, limit=2)
    assert [(p.question, p.answer) for p in ps] == [("What is 2+2?", "4"), ("What is 3+3?", "6")]
    assert load_dataset(f"hf:{folder}@train", fields={"question": "q", "answer": "a"})[2].answer == "2"
    (folder / "train.jsonl").write_text(json.dumps({"q": None, "a": "1"}) + "\n")
    with pytest.raises(DatasetError, match=r"\(row 0\): field 'q' is None"):
        load_dataset(f"hf:{folder}", fields={"question": "q", "answer": "a"}, split="train")


def test_bundled_data_loads_from_a_copy_of_the_repository_with_no_shared_beside_it(tmp_path: Path) -> None:
    """A fresh clone's view: only the repository's files, no ``../shared``, no SC_CHAINS_DATA."""
    import os
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    clone = tmp_path / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".git")
    for name in ("adapters", "graphs", "sc_chains"):
        shutil.copytree(repo / name, clone / name, ignore=ignore)
    assert not (clone.parent / "shared").exists() and not (clone / "shared").exists()
    code = (
        "import sc_chains, sys\n"
        "from sc_chains import load_dataset\n"
        "assert sc_chains.__file__.startswith(sys.argv[1]), sc_chains.__file__\n"
        "print(len(load_dataset('gsm8k')), len(load_dataset('svamp')),"
        " load_dataset('gsm-ic', limit=3, seed=1)[2].id, load_dataset('sycophancy', limit=2)[1].meta['kind'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SC_CHAINS_DATA", "PYTHONPATH")}
    out = subprocess.run([sys.executable, "-c", code, str(clone)], check=False, cwd=clone, env={**env, "PYTHONPATH": str(clone)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["7473", "1000", "gsm8k-2:ic-in-topic", "suggest-incorrect"]
    # the README's eval command, as a newcomer pastes it (tiny model, one problem)
    cmd = [sys.executable, "-m", "sc_chains", "eval", "--dataset", "gsm-ic", "--chains", "baseline", "--model",
           "hf:tiny-random", "--limit", "1", "--out", str(tmp_path / "run"), "--no-plots", "--no-progress", "--json"]
    out = subprocess.run(cmd, check=False, cwd=clone, env={**env, "PYTHONPATH": str(clone), "HF_HUB_OFFLINE": "1"},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rec = json.loads((tmp_path / "run" / "results.jsonl").read_text().splitlines()[0])
    assert rec["problem_id"] == "gsm8k-0:ic-in-topic" and rec["gold"] == "72"
