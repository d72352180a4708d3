"""Exporters and the generators' pure decisions, on literal records and numbers."""

from __future__ import annotations

import json

import pytest

from adapters.errors import InvalidRequestError
from sc_chains.datagen import (
    confidence_pair,
    examples,
    majority,
    preference_pair,
    shaped_reward,
    step_sequences,
)
from sc_chains.datagen.exporters import (
    score_kto,
    score_messages,
    score_prompt_completion,
    self_reward_preference,
    stepwise,
    w2s_preference,
    w2s_prompt_completion,
)
from sc_chains.datagen.score import transition

U = [{"role": "user", "content": "Q?"}]
MSGS = [
    {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "Fix it."}, {"role": "assistant", "content": "A2"},
]


def score_rec(r2: float) -> dict:
    return {"key": "p#0", "status": "ok", "kind": "score", "messages": MSGS, "r1": 0.0, "r2": r2}


def test_score_exporters():
    rec = score_rec(1.0)
    assert score_messages(rec) == {"messages": MSGS}
    assert score_prompt_completion(rec) == {"prompt": MSGS[:3], "completion": MSGS[3:]}
    assert score_kto(score_rec(0.0)) == {"prompt": MSGS[:3], "completion": MSGS[3:], "label": False}
    # SFT formats keep only successful second attempts; KTO keeps both, labelled
    assert examples(score_rec(0.0), "messages") == []
    assert examples(rec, "messages") == [{"messages": MSGS}]
    assert examples(score_rec(0.0), "kto")[0]["label"] is False
    # the exporter copies: mutating a row leaves the record alone
    row = score_messages(rec)
    row["messages"][0]["content"] = "changed"
    assert MSGS[0]["content"] == "Q?"


def test_preference_and_w2s_exporters():
    sr = {"kind": "self-reward", "prompt": "Q?", "chosen": "good", "rejected": "bad", "drop": None}
    assert self_reward_preference(sr) == {
        "prompt": U, "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
    }
    assert examples({**sr, "drop": "all_tied"}, "preference") == []
    w1 = {"kind": "w2s", "prompt": "Q?", "weak_solution": "W", "strong_solution": "S", "drop": None}
    assert w2s_prompt_completion(w1, "weak") == {"prompt": U, "completion": [{"role": "assistant", "content": "W"}]}
    assert [r["completion"][0]["content"] for r in examples(w1, "prompt-completion")] == ["W", "S"]
    assert [r["messages"][1]["content"] for r in examples(w1, "messages", sft_source="strong")] == ["S"]
    assert examples({**w1, "drop": "disagree"}, "prompt-completion") == []
    w2 = {"kind": "w2s", "prompt": "Q?", "chosen_text": "C", "rejected_text": "R", "drop": None}
    assert w2s_preference(w2)["chosen"] == [{"role": "assistant", "content": "C"}]
    with pytest.raises(InvalidRequestError, match="w2s exports to one of"):
        examples(w2, "stepwise")


def test_stepwise_exporter():
    rec = {"kind": "leco-steps", "question": "Q?", "drop": None, "sequences": [
        {"steps": ["s1", "s2"], "labels": [True, True]},
        {"steps": ["s1", "x2", "x3"], "labels": [True, False, False]},
    ]}
    assert stepwise(rec, 1) == {"prompt": "Q?", "completions": ["s1", "x2", "x3"], "labels": [True, False, False]}
    assert len(examples(rec, "stepwise")) == 2


def test_shaped_reward_and_transition():
    assert shaped_reward(0.0, 1.0, 10.0) == 10.0
    assert shaped_reward(1.0, 0.0, 10.0) == -10.0
    assert shaped_reward(1.0, 1.0, 10.0) == 0.0
    assert [transition(a, b) for a, b in ((1, 1), (0, 1), (1, 0), (0, 0))] == ["c->c", "i->c", "c->i", "i->i"]


def test_preference_pair():
    assert preference_pair([3.0, 4.5, 1.0, 4.5]) == (1, 2)  # ties: the earliest
    assert preference_pair([2.0, 2.0, 2.0]) == "all_tied"
    assert preference_pair([None, 3.0, None]) == "too_few_scored"
    assert preference_pair([None, 3.0, 3.0, 1.0]) == (1, 3)


def test_majority():
    assert majority(["7", "7", "8", None, "7.0"]) == ("7", 0.6)
    assert majority([None, None]) == (None, 0.0)
    assert majority(["1", "2", "2", "1"]) == ("1", 0.5)  # tie: first seen


@pytest.mark.parametrize(
    ("weak", "strong", "expected"),
    [
        # confidence 0.5 < 0.6: skip
        ("7", ["7"] * 5 + ["8"] * 5, {"chosen": None, "rejected": None, "drop": "low_confidence"}),
        # weak == majority (0.7): chosen weak, rejected the first minority sample (index 2)
        ("7", ["7", "7", "9", "7", "7", "7", None, "7", "8", "8"], {"chosen": "weak", "rejected": 2, "drop": None}),
        # weak == majority but every sample agrees: no minority to reject
        ("7", ["7"] * 10, {"chosen": None, "rejected": None, "drop": "no_minority"}),
        # weak != majority, confidence 0.8 >= 0.8: chosen the first majority sample, rejected weak
        ("5", ["9", "7", "7", "7", "7", "7", "7", "7", "9", "7"], {"chosen": 1, "rejected": "weak", "drop": None}),
        # weak != majority, confidence 0.7 in [0.6, 0.8): skip
        ("5", ["7"] * 7 + ["9"] * 3, {"chosen": None, "rejected": None, "drop": "weak_disagrees"}),
        # weak gave no answer, confidence 0.9: majority vs weak
        (None, ["7"] * 9 + ["1"], {"chosen": 0, "rejected": "weak", "drop": None}),
    ],
)
def test_confidence_pair(weak, strong, expected):
    out = confidence_pair(weak, strong)
    assert {k: out[k] for k in ("chosen", "rejected", "drop")} == expected


def _step(text: str, score: float) -> dict:
    return {"text": text, "score": score, "avg": score / 2}


ATTEMPTS = [
    {"index": 0, "response": "S1\nS2\nS3 wrong\nThe answer is 9.", "answer": "9",
     "steps": [_step("S1", 1.9), _step("S2", 1.8), _step("S3 wrong", 0.2), _step("The answer is 9.", 1.9)]},
    {"index": 1, "response": "S1\nS2\nS3 right\nThe answer is 8.", "answer": "8",
     "steps": [_step("S1", 1.9), _step("S2", 1.8), _step("S3 right", 1.7), _step("The answer is 8.", 1.9)]},
]
CUTS = [{"attempt": 0, "step": 2, "prefix": "S1\nS2\n"}]


def test_step_sequences_labels():
    seqs, drop = step_sequences(ATTEMPTS, CUTS, ATTEMPTS[1]["response"], "8")
    assert drop is None
    assert seqs == [
        {"attempt": 1, "steps": ["S1", "S2", "S3 right", "The answer is 8."],
         "confidences": [1.9, 1.8, 1.7, 1.9], "avg": [0.95, 0.9, 0.85, 0.95], "labels": [True] * 4},
        {"attempt": 0, "steps": ["S1", "S2", "S3 wrong", "The answer is 9."],
         "confidences": [1.9, 1.8, 0.2, 1.9], "avg": [0.95, 0.9, 0.1, 0.95], "labels": [True, True, False, False]},
    ]


def test_step_sequences_drops_and_unhelpful_cuts():
    assert step_sequences(ATTEMPTS, CUTS, ATTEMPTS[1]["response"], "9") == ([], "final_incorrect")
    assert step_sequences(ATTEMPTS, CUTS, ATTEMPTS[1]["response"], "") == ([], "no_reference")
    # the vote chose attempt 0 (correct): its cut was not an error, so only the final sequence
    seqs, _ = step_sequences(ATTEMPTS, CUTS, ATTEMPTS[0]["response"], "9")
    assert [s["attempt"] for s in seqs] == [0] and seqs[0]["labels"] == [True] * 4
    # a cut attempt whose own answer was right is not labelled False
    right = [dict(ATTEMPTS[0], answer="8"), ATTEMPTS[1]]
    seqs, _ = step_sequences(right, CUTS, ATTEMPTS[1]["response"], "8")
    assert [s["attempt"] for s in seqs] == [1]


def test_every_format_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets", reason="datasets is not installed (the train extra)")
    recs = {
        "messages": score_rec(1.0), "kto": score_rec(0.0),
        "preference": {"kind": "self-reward", "prompt": "Q?", "chosen": "a", "rejected": "b"},
        "stepwise": {"kind": "leco-steps", "question": "Q?", "sequences": [{"steps": ["s"], "labels": [True]}]},
    }
    for fmt, rec in recs.items():
        path = tmp_path / f"{fmt}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in examples(rec, fmt) * 2))
        ds = datasets.load_dataset("json", data_files=str(path), split="train")
        assert ds.num_rows == 2 and ds[0] == examples(rec, fmt)[0]


# -- the exporter-level guard: no special token, no blank step, no empty model text ------------
def test_special_tokens_are_stripped_from_model_text_only():
    msgs = [{"role": "user", "content": "Is <s>strike</s> HTML? <pad>"},
            {"role": "assistant", "content": "<unk>First<pad><pad> try.<|im_end|>"},
            {"role": "user", "content": "Fix it."}, {"role": "assistant", "content": "Second.</s><|endoftext|>"}]
    rec = {"status": "ok", "kind": "score", "messages": msgs, "r1": 0.0, "r2": 1.0}
    (row,) = examples(rec, "messages")
    assert row["messages"][1]["content"] == "First try." and row["messages"][3]["content"] == "Second."
    assert row["messages"][0] == msgs[0]  # the user's text is theirs: never rewritten
    (pc,) = examples(rec, "prompt-completion")
    assert pc["prompt"][1]["content"] == "First try." and pc["completion"][0]["content"] == "Second."
    sr = {"kind": "self-reward", "prompt": "Q?", "chosen": "good [PAD][PAD]", "rejected": "bad<eos>"}
    (pair,) = examples(sr, "preference")
    assert pair["chosen"][0]["content"] == "good" and pair["rejected"][0]["content"] == "bad"
    assert examples({**sr, "rejected": "<pad><pad>"}, "preference") == []  # nothing left: no row
    assert examples({**sr, "rejected": "good<unk>"}, "preference") == []  # chosen == rejected once clean


def test_no_exported_row_of_any_format_carries_a_special_token():
    from sc_chains.datagen.exporters import EXPORTERS, SPECIAL_TOKEN

    dirty = "<pad>x<unk> = 1<|im_end|>"
    recs = {
        "score": {"kind": "score", "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": dirty},
                                                {"role": "user", "content": "F"}, {"role": "assistant", "content": dirty}],
                  "r1": 0.0, "r2": 1.0},
        "self-reward": {"kind": "self-reward", "prompt": "Q", "chosen": dirty, "rejected": "<s>no" + dirty},
        "w2s": {"kind": "w2s", "prompt": "Q", "weak_solution": dirty, "strong_solution": dirty,
                "chosen_text": dirty, "rejected_text": dirty + "</s>no"},
        "leco-steps": {"kind": "leco-steps", "question": "Q", "sequences": [
            {"steps": [dirty, "<pad>", "The answer is 1."], "labels": [True, True, True]}]},
    }
    for kind, fmt in EXPORTERS:
        rows = examples(recs[kind], fmt)
        assert rows, (kind, fmt)
        assert not SPECIAL_TOKEN.search(json.dumps(rows)), (kind, fmt, rows)


def test_stepwise_rows_lose_blank_steps_with_their_labels():
    rec = {"kind": "leco-steps", "question": "Q", "sequences": [
        {"steps": ["1 + 1 = 2", "", "  ", "This is 2.<|im_end|>"], "labels": [True, True, True, True]},
        {"steps": ["1 + 1 = 3", "\n", "So 3."], "labels": [True, False, False]},
        {"steps": ["1 + 1 = 2", "<pad>"], "labels": [True, False]},  # the only wrong step was blank
        {"steps": ["", "<unk>"], "labels": [True, True]},
    ]}
    rows = examples(rec, "stepwise")
    assert rows == [
        {"prompt": "Q", "completions": ["1 + 1 = 2", "This is 2."], "labels": [True, True]},
        {"prompt": "Q", "completions": ["1 + 1 = 3", "So 3."], "labels": [True, False]},
    ]
    assert all(s.strip() for r in rows for s in r["completions"])
