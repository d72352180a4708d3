"""Bad dataset input (issue 12, items 10 and 11): each a typed error naming the value, where it is, and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sc_chains.datasets import DataFileNotFoundError, DatasetError, DatasetRowError, load_dataset


def _jsonl(tmp_path: Path, rows: list[object], name: str = "mine.jsonl") -> Path:
    f = tmp_path / name
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return f


GOOD = {"question": "What is 2+2?", "answer": "4"}


@pytest.mark.parametrize(
    ("row", "field", "shown"),
    [
        ({"question": None, "answer": "4"}, "question", "None"),
        ({"question": 123, "answer": "4"}, "question", "123"),
        ({"question": "", "answer": "4"}, "question", "''"),
        ({"question": "  \t\n ", "answer": "4"}, "question", "'  \\t\\n '"),
        ({"question": ["a list"], "answer": "4"}, "question", "['a list']"),
        ({"question": "What is 2+2?", "answer": None}, "answer", "None"),
        ({"question": "What is 2+2?", "answer": ""}, "answer", "''"),
        ({"question": "What is 2+2?", "answer": True}, "answer", "True"),
        ({"question": "What is 2+2?", "answer": {"n": 4}}, "answer", "{'n': 4}"),
        ({"question": "What is 2+2?", "answer": "work shown but #### "}, "answer", "'work shown but #### '"),
    ],
)
def test_bad_rows_name_file_line_field_value_and_fix(tmp_path: Path, row: dict, field: str, shown: str) -> None:
    f = _jsonl(tmp_path, [GOOD, row])
    with pytest.raises(DatasetRowError) as err:
        load_dataset(f"jsonl:{f}")
    e = err.value
    assert isinstance(e, ValueError) and e.path == str(f) and e.line == 2 and e.field == field
    msg = str(e)
    assert msg.startswith(f"{f}:2: field {field!r} is {shown}")
    assert "fields=" in msg and "--fields" in msg  # how to fix: the row, or another mapping


def test_a_mapped_field_is_checked_under_its_own_key(tmp_path: Path) -> None:
    f = _jsonl(tmp_path, [{"q": "Fine?", "a": 1}, {"q": "Also fine?", "a": None}])
    with pytest.raises(DatasetRowError, match=r":2: field 'a' is None"):
        load_dataset(f"jsonl:{f}", fields={"question": "q", "answer": "a"})


def test_numbers_are_valid_answers(tmp_path: Path) -> None:
    f = _jsonl(tmp_path, [{"question": "Half of 3?", "answer": 1.5}, {"question": "2+2?", "answer": 4}])
    assert [p.answer for p in load_dataset(f"jsonl:{f}")] == ["1.5", "4"]


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    f = _jsonl(tmp_path, [{**GOOD, "id": "a"}, {**GOOD, "id": "b"}, {**GOOD, "id": "a"}])
    with pytest.raises(DatasetRowError, match=r":3: field 'id' is 'a'; the same id is on line 1"):
        load_dataset(f"jsonl:{f}", fields={"id": "id"})
    g = _jsonl(tmp_path, [{**GOOD, "id": None}], "g.jsonl")
    with pytest.raises(DatasetRowError, match=r":1: field 'id' is None"):
        load_dataset(f"jsonl:{g}", fields={"id": "id"})


def test_latin1_file_names_the_line_and_how_to_convert(tmp_path: Path) -> None:
    f = tmp_path / "latin1.jsonl"
    text = json.dumps(GOOD) + "\n" + json.dumps({"question": "Combien coûte un café?", "answer": "2"},
                                               ensure_ascii=False) + "\n"
    f.write_bytes(text.encode("latin-1"))
    with pytest.raises(DatasetRowError) as err:
        load_dataset(f"jsonl:{f}")
    assert err.value.line == 2 and "b'\\xfb'" in str(err.value)
    assert f"{f}:2:" in str(err.value) and "UTF-8" in str(err.value) and "iconv" in str(err.value)
    f.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # UTF-8 with a BOM (Windows editors) is fine
    assert load_dataset(f"jsonl:{f}")[1].question == "Combien coûte un café?"


def test_latin1_gsm8k_file_via_path(tmp_path: Path) -> None:
    f = tmp_path / "train.jsonl"
    f.write_bytes(json.dumps({"question": "Ça fait combien?", "answer": "#### 3"}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(DatasetRowError, match=r"train.jsonl:1: byte b'\\xc7' is not UTF-8 text"):
        load_dataset("gsm8k", path=f)


def test_bad_json_and_non_objects(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(DatasetRowError, match=r"bad.jsonl:2: not valid JSON"):
        load_dataset(f"jsonl:{f}")
    f.write_text("[1, 2]\n")
    with pytest.raises(DatasetRowError, match=r"bad.jsonl:1: expected a JSON object, got list"):
        load_dataset(f"jsonl:{f}")
    f.with_suffix(".gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="gzip"):
        load_dataset(f"jsonl:{f.with_suffix('.gz')}")


def test_svamp_records_are_checked(tmp_path: Path) -> None:
    f = tmp_path / "SVAMP.json"
    ok = {"ID": "s1", "Body": "Ann has 2 pens.", "Question": "How many pens?", "Answer": 2.0}
    f.write_text(json.dumps([ok, {**ok, "ID": "s2", "Question": None}]))
    with pytest.raises(DatasetRowError, match=r"SVAMP.json \(record 1\): field 'Question' is None"):
        load_dataset("svamp", path=f)
    f.write_text(json.dumps([{**ok, "Answer": "two"}]))
    with pytest.raises(DatasetRowError, match=r"\(record 0\): field 'Answer' is 'two'; a SVAMP answer is a number"):
        load_dataset("svamp", path=f)
    f.write_text(json.dumps([{k: v for k, v in ok.items() if k != "Body"}]))
    with pytest.raises(DatasetRowError, match=r"missing field 'Body'"):
        load_dataset("svamp", path=f)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": None}, r"invalid dataset name None: pass one of gsm8k, svamp"),
        ({"name": 42}, r"invalid dataset name 42"),
        ({"name": "  "}, r"invalid dataset name '  '"),
        ({"name": "gsm8k", "limit": True}, r"invalid limit=True: pass an integer >= 0"),
        ({"name": "gsm8k", "limit": -1}, r"invalid limit=-1"),
        ({"name": "gsm8k", "limit": 2.5}, r"invalid limit=2.5"),
        ({"name": "gsm8k", "limit": "3"}, r"invalid limit='3'"),
        ({"name": "gsm8k", "seed": "1"}, r"invalid seed='1': pass an integer"),
        ({"name": "gsm8k", "seed": None}, r"invalid seed=None"),
        ({"name": "gsm8k", "path": 3}, r"invalid path=3"),
        ({"name": "gsm8k", "fields": {"question": "q"}}, r"field mappings are for jsonl:PATH and hf:ID"),
        ({"name": "jsonl:x.jsonl", "fields": ["question"]}, r"invalid fields=\['question'\]"),
        ({"name": "jsonl:x.jsonl", "fields": {"question": None}}, r"invalid fields="),
        ({"name": "gsm8k", "split": "test"}, r"for the GSM8K test split use 'gsm8k:test'"),
        ({"name": "hf:x", "split": ""}, r"invalid split=''"),
        ({"name": "hf:", "split": "train"}, r"write hf:ID\[:CONFIG\]\[@SPLIT\]"),
        ({"name": "hf:a/b@test", "split": "train"}, r"give the split once"),
        ({"name": "jsonl:"}, r"needs a path"),
        ({"name": "gsm8k:dev"}, r"unknown dataset 'gsm8k:dev'"),
    ],
)
def test_bad_arguments_are_typed_errors_before_any_file_is_read(kwargs: dict, match: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(DatasetError, match=match) as err:
        load_dataset(name, **kwargs)
    assert isinstance(err.value, ValueError)


def test_limit_zero_is_empty_and_limit_true_is_not_one_problem() -> None:
    assert load_dataset("gsm8k", limit=0) == []
    with pytest.raises(DatasetError) as err:
        load_dataset("gsm8k", limit=True)
    assert err.value.value is True


def test_missing_jsonl_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match="nope.jsonl"):
        load_dataset(f"jsonl:{tmp_path / 'nope.jsonl'}")


def test_cli_prints_one_line_and_exits_non_zero_for_a_bad_row(tmp_path: Path, capsys) -> None:
    from sc_chains.cli import main

    f = _jsonl(tmp_path, [{"question": None, "answer": "1"}])
    code = main(["datagen", "score", "--dataset", f"jsonl:{f}", "--model", "hf:tiny-random",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and f"{f}:1: field 'question' is None" in err


def test_prompts_file_rows_are_checked(tmp_path: Path) -> None:
    from sc_chains.datagen import load_prompts

    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "Hi"}) + "\n" + json.dumps({"prompt": None}) + "\n")
    with pytest.raises(DatasetRowError, match=r"p.jsonl:2: field 'prompt' is None"):
        load_prompts(f)
    t = tmp_path / "p.txt"
    t.write_bytes("Caf\u00e9 prompt\n".encode("latin-1"))
    with pytest.raises(DatasetRowError, match=r"p.txt:1: byte b'\\xe9' is not UTF-8"):
        load_prompts(t)
