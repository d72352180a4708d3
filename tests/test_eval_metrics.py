"""Pure evaluation metrics on literal data, and answer checking cases."""

from __future__ import annotations

import pytest

from graphs.text import edit_distance
from sc_chains.eval.metrics import (
    accuracy,
    check_answer,
    cost,
    flips,
    gap_recovered,
    two_attempt,
    wilson_interval,
)


def test_wilson_interval_matches_hand_computed_values() -> None:
    # 7/10, z = 1.96: centre (0.7 + 0.19207) / 1.38415 = 0.64449,
    # half 1.96 * sqrt(0.021 + 0.0096037) / 1.38415 = 0.24772
    lo, hi = wilson_interval(7, 10)
    assert lo == pytest.approx(0.39677, abs=1e-4)
    assert hi == pytest.approx(0.89222, abs=1e-4)
    lo, hi = wilson_interval(0, 10)  # never below 0; upper = z^2/(n+z^2) = 3.8415/13.8415
    assert lo == 0.0 and hi == pytest.approx(0.27753, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.72247, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_accuracy_dict() -> None:
    a = accuracy([True] * 7 + [False] * 3)
    assert (a["n"], a["correct"], a["accuracy"]) == (10, 7, 0.7)
    assert a["ci_low"] == pytest.approx(0.39677, abs=1e-4)
    assert accuracy([])["accuracy"] is None


def test_two_attempt_metrics_follow_score_definitions() -> None:
    # 10 problems: 4 right both times, 2 wrong->right, 1 right->wrong, 3 wrong both times
    pairs = [(True, True)] * 4 + [(False, True)] * 2 + [(True, False)] + [(False, False)] * 3
    m = two_attempt(pairs)
    assert m["accuracy_t1"] == pytest.approx(0.5)
    assert m["accuracy_t2"] == pytest.approx(0.6)
    assert m["delta"] == pytest.approx(0.1)
    assert m["delta_i_to_c"] == pytest.approx(0.2)
    assert m["delta_c_to_i"] == pytest.approx(0.1)
    assert m["delta"] == pytest.approx(m["delta_i_to_c"] - m["delta_c_to_i"])
    assert two_attempt([])["delta"] is None


def test_flips_pair_problems_by_id_and_ignore_unshared() -> None:
    before = {"a": True, "b": False, "c": False, "d": True}
    after = {"a": False, "b": True, "c": True, "e": True}
    assert flips(before, after) == {"n": 3, "i_to_c": pytest.approx(2 / 3), "c_to_i": pytest.approx(1 / 3)}


def test_gap_recovered_s2a_paper_numbers_and_zero_gap() -> None:
    assert gap_recovered(80.3, 62.8, 82.0) == pytest.approx(17.5 / 19.2)
    assert gap_recovered(0.5, 0.6, 0.6) is None
    assert gap_recovered(None, 0.5, 0.7) is None
    assert gap_recovered(0.4, 0.5, 0.7) == pytest.approx(-0.5)  # worse than baseline: negative
    # an oracle below the baseline leaves no gap: a chain below both is not "recovering" it
    assert gap_recovered(0.19, 0.30, 0.25) is None


def test_cost_aggregates_usage_and_wall_time_per_problem() -> None:
    outcomes = [
        {"usage": {"calls": 1, "prompt_tokens": 100, "completion_tokens": 50}, "wall_s": 1.0},
        {"usage": {"calls": 3, "prompt_tokens": 300, "completion_tokens": 150}, "wall_s": 2.0},
    ]
    c = cost(outcomes)
    assert c["calls_total"] == 4 and c["calls_per_problem"] == 2
    assert c["prompt_tokens_per_problem"] == 200 and c["completion_tokens_per_problem"] == 100
    assert c["total_tokens_per_problem"] == 300 and c["wall_s_per_problem"] == pytest.approx(1.5)
    assert cost([])["calls_per_problem"] is None


def test_edit_distance() -> None:
    assert edit_distance("same text", "same text") == 0.0
    assert edit_distance("abc", "xyz") == 1.0
    assert edit_distance("The answer is 5.", "The answer is 6.") == 0.25  # one word of four
    from graphs.critique.policy import edit_distance as critique_trace_distance
    from sc_chains.eval import report

    # the eval report and the critique trace use this one function
    assert report.edit_distance is edit_distance is critique_trace_distance


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("18", "18", True),
        ("18.0", "18", True),
        ("$18.00", "18", True),
        ("18 dollars", "18", True),
        ("1,000", "1000", True),
        ("1 000", "1000", True),
        ("3/4", "0.75", True),
        ("50%", "50", True),
        ("0.3333333", "1/3", True),  # float noise within rel_tol
        ("0.34", "1/3", False),
        ("\u22125", "-5", True),  # unicode minus
        ("x = 5", "5", True),
        ("17", "18", False),
        (None, "18", False),
        ("", "18", False),
        ("Paris", "paris.", True),
        ("Lyon", "Paris", False),
    ],
)
def test_check_answer_cases(pred: str | None, gold: str, expected: bool) -> None:
    assert check_answer(pred, gold) is expected


def test_summary_counts_s2a_parse_fallbacks_and_the_table_shows_them() -> None:
    from sc_chains.eval.report import markdown_table, summarize

    def rec(i: int, status: str) -> dict:
        return {"key": f"s2a::p{i}", "status": "ok", "chain": "s2a", "correct": i == 0,
                "usage": {"calls": 2, "prompt_tokens": 10, "completion_tokens": 5}, "wall_s": 1.0,
                "trace": {"parse_status": status}}

    records = [rec(0, "ok"), rec(1, "fallback_no_context"), rec(2, "fallback_no_context")]
    summary = summarize(records, ["s2a"])
    assert summary["chains"]["s2a"]["parse_status"] == {"fallback_no_context": 2, "ok": 1}
    assert "s2a rewrites: fallback_no_context 2, ok 1 (of 3)" in markdown_table(summary)
