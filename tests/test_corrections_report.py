"""benchmarks/corrections_report.py: the paired comparisons behind CORRECTIONS.md, on literals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("corrections_report", ROOT / "benchmarks" / "corrections_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rec(chain: str, pid: str, correct: bool, tokens: int) -> dict:
    return {"status": "ok", "chain": chain, "problem_id": pid, "correct": correct,
            "usage": {"completion_tokens": tokens}}


def test_paired_diff_ci(report) -> None:
    d, lo, hi = report.paired_diff_ci(0.25, 0.05, 100)
    assert d == pytest.approx(0.20) and lo < 0.20 < hi and hi - lo == pytest.approx(2 * 1.96 * (0.30 - 0.04) ** 0.5 / 10)
    assert report.paired_diff_ci(None, 0.1, 10) is None


def test_head_to_head_pairs_only_shared_problems(report) -> None:
    records = [
        _rec("leco-vote", "p1", True, 50), _rec("leco-vote", "p2", False, 50), _rec("leco-vote", "p3", True, 50),
        _rec("sc", "p1", True, 100), _rec("sc", "p2", True, 100), _rec("sc", "p4", True, 100),
        {**_rec("sc", "p3", False, 100), "status": "failed"},
    ]
    line = report.head_to_head(records, "leco-vote", "sc")
    assert line.startswith("- leco-vote vs sc (same 2 problems): 50.0% vs 100.0%, -50.0 points")
    assert line.endswith("at 0.50x the generated tokens")
    assert report.head_to_head(records, "leco-vote", "critique") is None


def test_s2a_cleaning_counts_drops_against_the_oracles_clean_problem(report) -> None:
    from sc_chains.eval.chains import BASELINE_PROMPT

    clean = "Ann has 3 apples. She buys 2 more. How many apples does she have?"
    noisy = "Ann has 3 apples. Bob's cat is 9 years old. She buys 2 more. How many apples does she have?"

    def oracle(pid: str) -> dict:
        return {**_rec("oracle", pid, True, 10), "question": noisy, "trace": {"prompt": BASELINE_PROMPT.format(question=clean)}}

    def s2a(pid: str, correct: bool, removed: list[str]) -> dict:
        return {**_rec("s2a-filter", pid, correct, 10), "question": noisy, "trace": {"removed": removed}}

    records = [oracle("p1"), oracle("p2"), oracle("p3"),
               s2a("p1", True, ["Bob's cat is 9 years old."]),   # the distractor: detected
               s2a("p2", False, ["She buys 2 more."]),            # a real sentence: false drop
               s2a("p3", True, []), s2a("p4", True, ["x"])]       # nothing dropped; p4 has no oracle
    line = report.s2a_cleaning(records, "s2a-filter")
    assert "added sentence dropped 1/3 (33.3%, accuracy 100.0%)" in line
    assert "kept 2/3 (66.7%, accuracy 50.0%)" in line
    assert "a clean-problem sentence dropped 1/3 (33.3%, accuracy 0.0%)" in line
    assert report.s2a_cleaning(records, "s2a") is None


def _sc(pid: str, gold: str, answers: list[str | None], tokens: list[int]) -> dict:
    cands = [{"index": str(i), "answer": a, "usage": repr({"calls": 1, "completion_tokens": t})}
             for i, (a, t) in enumerate(zip(answers, tokens))]
    return {"status": "ok", "chain": "sc", "problem_id": pid, "gold": gold, "correct": None,
            "trace": {"candidates": cands[::-1]}, "usage": {"completion_tokens": sum(tokens)}}


def test_sc_prefixes_vote_over_the_first_k_samples_in_order(report) -> None:
    rec = _sc("p", "7", ["8", "7", "7", None], [10, 20, 30, 40])
    assert report.sc_prefixes(rec) == [(False, 10), (False, 30), (True, 60), (True, 100)]  # k=2: a tie keeps the first


def test_sc_curve_and_the_equal_token_comparison(report) -> None:
    recs = [_sc("a", "7", ["7", "8", "8"], [10, 10, 10]), _sc("b", "1", ["2", "1", "1"], [10, 10, 10])]
    recs += [{"status": "ok", "chain": "leco-vote", "problem_id": p, "correct": c, "usage": {"completion_tokens": 15}}
             for p, c in (("a", True), ("b", False))]
    lines = report.sc_curve(recs)
    assert lines[0] == ("- sc@k from the same samples (the vote over the first k; n = 2): "
                        "k=1 50.0% at 10 tokens; k=2 50.0% at 20 tokens; k=3 50.0% at 30 tokens")
    assert lines[1].startswith("- leco-vote vs sc@2 (about equal generated tokens; same 2 problems): 50.0% vs 50.0%, +0.0")
    assert lines[1].endswith("at 0.75x sc@2's generated tokens")
    assert report.sc_curve([r for r in recs if r["chain"] != "sc"]) == []


def test_program_agreement_counts_the_programs_behind_the_answer(report) -> None:
    def rec(pid: str, critique: str, correct: bool) -> dict:
        return {"status": "ok", "chain": "critique-program-sc", "problem_id": pid, "correct": correct,
                "trace": {"turns": [{"critique": critique}]}}

    recs = [rec("a", "5 of 5 Python programs that compute the answer printed 7, which agrees", True),
            rec("b", "5 of 5 Python programs that compute the answer printed 3, but your final answer", False),
            rec("c", "No external check: the programs printed nothing, 4; it is kept.", True),
            rec("d", "2 of 5 Python programs that compute the answer printed 1, which agrees", True)]
    assert report.program_agreement(recs) == ("- critique-program-sc, programs printing the winning answer "
                                              "(problems, accuracy): 0: 1 (100% right); 2: 1 (100% right); "
                                              "5: 2 (50% right)")
    assert report.program_agreement(recs, "sc") is None


def test_leco_vote_diagnosis_reads_cuts_drafts_and_the_equal_weight_vote(report) -> None:
    def leco(pid: str, gold: str, cands: list[str | None], cut_step: int, correct: bool) -> dict:
        return {**_rec("leco-vote", pid, correct, 10), "gold": gold,
                "trace": {"candidates": cands, "cuts": [{"step": cut_step}]}}

    records = [
        _rec("baseline", "p1", True, 5), _rec("baseline", "p2", False, 5), _rec("baseline", "p3", False, 5),
        # draft 1 weighs 1.5 against 2 + 2: "1" wins weighted, the recent "2" wins with equal weights
        leco("p1", "2", ["1", "2", "1", "2"], 0, False),
        leco("p2", "5", ["5", "5", "4", None], 2, True),     # draft right, cut at step 3
        leco("p3", "9", ["7", "8", "7", "3"], 0, False),     # no candidate right
        leco("p4", "1", ["1"], 0, True),                     # no baseline record: left out
    ]
    line = report.leco_vote_diagnosis(records, "leco-vote")
    assert line == ("- leco-vote diagnosis (n = 3): first cut at step 1 (empty kept prefix) 66.7%; "
                    "draft 33.3% vs baseline 33.3%; any candidate right 66.7%; "
                    "vote with equal weights (post hoc, same candidates) 66.7% vs 33.3%")
    assert report.leco_vote_diagnosis(records, "leco-vote-plain") is None


def test_draft_noise_compares_the_same_greedy_first_call_across_runs(report) -> None:
    def two(chain: str, pid: str, text: str, ok: bool) -> dict:
        return {**_rec(chain, pid, ok, 10), "response_t1": text, "correct_t1": ok}

    records = [two("critique", "p1", "a", True), two("critique-program", "p1", "a", True),
               two("critique", "p2", "b", True), two("critique-program", "p2", "b2", False),
               two("critique", "p3", "c", False), two("critique-program", "p3", "c2", False),
               two("critique", "p4", "d", False), _rec("critique-program", "p4", False, 10)]  # p4: no first attempt
    assert report.draft_noise(records) == (
        "- greedy draft noise floor (critique vs critique-program: the same greedy first call, separate runs; "
        "n = 3): identical text 33.3%, correctness flipped 33.3%, accuracy difference -33.3 points")
    assert report.draft_noise(records, "critique", "sc") is None
