"""Each generator on the scripted fake (exact records), and run_datagen's files, faults and resume."""

from __future__ import annotations

import json

import pytest

from adapters.errors import InvalidRequestError
from graphs.critique.prompts import SCORE_INSTRUCTION
from sc_chains.datagen import (
    DatagenMismatchError,
    LecoStepsGenerator,
    ScoreConfig,
    ScoreGenerator,
    SelfRewardConfig,
    SelfRewardGenerator,
    W2SConfig,
    W2SGenerator,
    load_prompts,
    run_datagen,
)
from sc_chains.datasets import Problem
from sc_chains.testing import FakeLogprobModel, FakeReply

P = Problem("p1", "What is 3+4?", "7")
P2 = Problem("p2", "What is 2+2?", "4")


def score_reply(req):
    """Attempt 1 is wrong for p1 and right for p2; attempt 2 is always right."""
    q = req.messages[0]["content"]
    right = "4" if "2+2" in q else "7"
    if req.messages[-1]["content"] == SCORE_INSTRUCTION:
        return f"Checked again.\nThe answer is {right}."
    return "Quick guess.\nThe answer is 8." if "3+4" in q else f"Sum.\nThe answer is {right}."


def test_score_record_exact():
    gen = ScoreGenerator(FakeLogprobModel(default=score_reply), ScoreConfig(alpha=10.0))
    rec = gen((P, 0))
    assert rec == {
        "kind": "score", "problem_id": "p1", "sample": 0, "seed": 0, "question": "What is 3+4?",
        "reference": "7",
        "messages": [
            {"role": "user", "content": "What is 3+4?\n\nSolve the problem step by step, then end with \"The answer is X.\""},
            {"role": "assistant", "content": "Quick guess.\nThe answer is 8."},
            {"role": "user", "content": SCORE_INSTRUCTION},
            {"role": "assistant", "content": "Checked again.\nThe answer is 7."},
        ],
        "attempt1": "Quick guess.\nThe answer is 8.", "attempt2": "Checked again.\nThe answer is 7.",
        "answer1": "8", "answer2": "7", "r1": 0.0, "r2": 1.0, "alpha": 10.0, "shaped_reward": 10.0,
        "total_reward": 11.0, "transition": "i->c", "edit_distance": 0.5,
        "usage": {"calls": 2, "prompt_tokens": 70, "completion_tokens": 14, "cached_tokens": 0},
    }


def test_score_samples_are_seeded_and_need_temperature():
    fake = FakeLogprobModel(default=score_reply)
    gen = ScoreGenerator(fake, ScoreConfig(samples=2))
    assert gen.items([P]) == [(P, 0), (P, 1)] and gen.key((P, 1)) == "p1#1"
    rec = gen((P, 1))
    assert rec["seed"] == 2
    assert [(c.seed, c.temperature) for c in fake.calls] == [(2, 0.7), (3, 0.7)]
    with pytest.raises(InvalidRequestError, match="temperature > 0"):
        ScoreConfig(samples=3, temperature=0.0)


def sr_reply(req):
    """Responses depend on the seed; the judge scores them from the response text."""
    content = req.messages[-1]["content"]
    if content.startswith("Review the user's question"):
        base = {"Answer A": 2, "Answer B": 4, "Answer C": 1}[content.split("<response>")[1].split("</response>")[0]]
        return f"Justification.\nScore: {base + (req.seed % 2)}"
    return {0: "Answer A", 1: "Answer B", 2: "Answer C"}[req.seed]


def test_self_reward_record_exact():
    fake = FakeLogprobModel(default=sr_reply)
    gen = SelfRewardGenerator(fake, SelfRewardConfig(n=3, judge_k=3, seed=0))
    rec = gen(Problem("x", "Say something.", ""))
    scores = [r["score"] for r in rec["responses"]]
    assert scores == pytest.approx([7 / 3, 13 / 3, 4 / 3])  # (b + b+1 + b) / 3
    assert [r["judge_samples"] for r in rec["responses"]] == [[2, 3, 2], [4, 5, 4], [1, 2, 1]]
    assert {k: rec[k] for k in ("best", "worst", "chosen", "rejected", "drop")} == {
        "best": 1, "worst": 2, "chosen": "Answer B", "rejected": "Answer C", "drop": None}
    assert rec["chosen_score"] == pytest.approx(13 / 3) and rec["rejected_score"] == pytest.approx(4 / 3)
    assert rec["usage"]["calls"] == 3 + 9
    gens = [c for c in fake.calls if not c.messages[-1]["content"].startswith("Review")]
    assert [(c.temperature, c.top_p, c.seed) for c in gens] == [(0.7, 0.9, 0), (0.7, 0.9, 1), (0.7, 0.9, 2)]


def test_self_reward_all_tied_is_dropped_and_expected_mode():
    fake = FakeLogprobModel(default=lambda r: "Score: 3" if r.messages[-1]["content"].startswith("Review") else "Same")
    rec = SelfRewardGenerator(fake, SelfRewardConfig(n=2, judge_k=1, score_mode="expected"))(P)
    assert rec["drop"] == "all_tied" and rec["chosen"] is None
    assert [r["score_source"] for r in rec["responses"]] == ["expected", "expected"]
    assert [r["expected_score"] for r in rec["responses"]] == pytest.approx([3.0, 3.0])


def test_load_prompts(tmp_path):
    (tmp_path / "p.txt").write_text("First prompt\n\nSecond prompt\n")
    assert [(p.id, p.question) for p in load_prompts(tmp_path / "p.txt")] == [
        ("prompt-0", "First prompt"), ("prompt-2", "Second prompt")]
    (tmp_path / "p.jsonl").write_text('{"q": "Hi"}\n')
    assert load_prompts(tmp_path / "p.jsonl", "q")[0].question == "Hi"
    with pytest.raises(ValueError, match="no field 'prompt'"):
        load_prompts(tmp_path / "p.jsonl")


def test_w2s_stage1_exact():
    weak = FakeLogprobModel(default="3 plus 4.\nThe answer is 7.", name="weak")
    strong = FakeLogprobModel(default="3 + 4 = 7.\nThe answer is 7.", name="strong")
    gen = W2SGenerator(strong, weak)
    rec = gen(P)
    assert {k: v for k, v in rec.items() if not k.startswith("usage")} == {
        "kind": "w2s", "stage": 1, "problem_id": "p1", "question": "What is 3+4?",
        "prompt": "What is 3+4?\n\nSolve the problem step by step, then end with \"The answer is X.\"",
        "weak_solution": "3 plus 4.\nThe answer is 7.", "weak_answer": "7",
        "strong_solution": "3 + 4 = 7.\nThe answer is 7.", "strong_answer": "7", "agree": True, "drop": None,
    }
    assert rec["usage"]["calls"] == 2
    # the strong model saw the two in-context examples first (5 messages), the weak one zero-shot
    assert len(strong.calls[0].messages) == 5 and len(weak.calls[0].messages) == 1
    strong.add("No idea.\nThe answer is 9.")
    assert gen(P)["drop"] == "disagree"


def test_w2s_stage2_exact():
    weak = FakeLogprobModel(default="Weak.\nThe answer is 7.")
    answers = ["7", "7", "9", "7", "7"]
    strong = FakeLogprobModel(default=lambda r: f"Sample {r.seed}.\nThe answer is {answers[r.seed - 5]}.")
    gen = W2SGenerator(strong, weak, W2SConfig(stage=2, samples=5, seed=5))
    rec = gen(P)
    assert [s["answer"] for s in rec["strong_samples"]] == answers
    assert {k: rec[k] for k in ("majority", "confidence", "chosen", "rejected", "drop", "chosen_text", "rejected_text")} == {
        "majority": "7", "confidence": 0.8, "chosen": "weak", "rejected": 2, "drop": None,
        "chosen_text": "Weak.\nThe answer is 7.", "rejected_text": "Sample 7.\nThe answer is 9."}
    assert sorted(c.temperature for c in strong.calls) == [1.0] * 5
    assert gen.formats == ("preference",)


LECO_SCRIPT = [
    FakeReply("Step 1: Tom has 3 apples.\nStep 2: He buys 2 bags.\nStep 3: Each bag has 3, so 6.\n"
              "Step 4: 3+6=10.\nThe answer is 10.",
              overrides={"Step 3: Each bag has 3, so 6.": -1.5, "Step 4: 3+6=10.": -2.5}),
    FakeReply("Step 3: Each bag has 2, so 4.\nStep 4: 3+4=7.\nThe answer is 7."),
    FakeReply("Step 3: Each bag has 2, so 4.\nStep 4: 3+4=7.\nThe answer is 7."),
]


def test_leco_steps_record():
    gen = LecoStepsGenerator(FakeLogprobModel(list(LECO_SCRIPT)), {"rethink_temperature": 0.7})
    rec = gen(Problem("a", "Tom has 3 apples and buys 2 bags of 2. How many?", "7"))
    assert rec["answer"] == "7" and rec["correct"] and rec["drop"] is None
    assert [c["step"] for c in rec["cuts"]] == [2, 2]
    seqs = rec["sequences"]
    assert [(s["attempt"], s["labels"]) for s in seqs] == [
        (2, [True] * 5), (0, [True, True, False, False, False])]
    assert seqs[1]["steps"][2] == "Step 3: Each bag has 3, so 6."
    assert seqs[1]["confidences"][2] < seqs[1]["confidences"][1]
    assert "tokens" not in rec["attempts"][0]["steps"][0]
    json.dumps(rec)


def test_run_datagen_files_and_manifest(tmp_path):
    gen = ScoreGenerator(FakeLogprobModel(default=score_reply))
    m = run_datagen(gen, [P, P2], tmp_path, dataset="unit", concurrency=2, progress=False)
    raw = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    train = [json.loads(x) for x in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in raw) == ["p1#0", "p2#0"] and all(r["status"] == "ok" for r in raw)
    assert len(train) == 2 and all(set(t) == {"messages"} for t in train)  # both r2 == 1
    assert m == json.loads((tmp_path / "manifest.json").read_text())
    assert m["counts"] == {"items": 2, "ok": 2, "failed": 0, "dropped": 0, "drop_reasons": {}, "usable": 2, "examples": 2}
    assert m["yield"] == 1.0 and m["kind"] == "score" and m["models"] == {"model": "fake-logprob-model"}
    assert m["tokens"]["calls"] == 4 and m["tokens"]["completion_tokens"] == sum(r["usage"]["completion_tokens"] for r in raw)
    assert m["config"]["alpha"] == 10.0 and m["config"]["seed"] == 0 and m["dataset"] == {"name": "unit"}
    assert m["sc_chains_version"] and m["run"]["ok"] == 2
    # a rerun skips everything; another config into the same folder is refused
    m2 = run_datagen(gen, [P, P2], tmp_path, dataset="unit", progress=False)
    assert m2["run"]["skipped"] == 2 and m2["counts"]["ok"] == 2
    with pytest.raises(DatagenMismatchError, match="alpha"):
        run_datagen(ScoreGenerator(gen.model, ScoreConfig(alpha=5.0)), [P], tmp_path, dataset="unit", progress=False)


def test_failures_are_retried_then_recorded_then_resumed(tmp_path):
    def flaky(req):
        if "2+2" in req.messages[0]["content"]:
            raise ConnectionError("server went away")
        return score_reply(req)

    fake = FakeLogprobModel(default=flaky)
    m = run_datagen(ScoreGenerator(fake), [P, P2], tmp_path, dataset="unit", retries=2, backoff=0.0,
                    concurrency=1, progress=False)
    assert m["counts"]["ok"] == 1 and m["counts"]["failed"] == 1
    assert m["failures"] == [{"key": "p2#0", "error": "ConnectionError: server went away"}]
    p2_calls = [c for c in fake.calls if "2+2" in c.messages[0]["content"]]
    assert len(p2_calls) == 3  # 1 try + 2 retries
    failed = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines() if '"failed"' in x]
    assert failed == [{"key": "p2#0", "status": "failed", "error": "ConnectionError: server went away", "attempts": 3}]
    # the server is back: only the failed item runs again
    fixed = FakeLogprobModel(default=score_reply)
    m = run_datagen(ScoreGenerator(fixed), [P, P2], tmp_path, dataset="unit", progress=False)
    assert m["counts"]["ok"] == 2 and m["counts"]["failed"] == 0 and m["run"]["skipped"] == 1
    assert len(fixed.calls) == 2
    keys = [json.loads(x)["key"] for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert sorted(keys) == ["p1#0", "p2#0"]
