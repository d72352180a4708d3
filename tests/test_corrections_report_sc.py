"""The corrections report's sc@k curve: votes over the first k of an sc record's samples."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from corrections_report import sc_curve, sc_prefixes  # noqa: E402


def _sc(pid: str, gold: str, answers: list[str | None], tokens: list[int]) -> dict:
    cands = [{"index": str(i), "answer": a, "usage": repr({"calls": 1, "completion_tokens": t})}
             for i, (a, t) in enumerate(zip(answers, tokens))]
    return {"status": "ok", "chain": "sc", "problem_id": pid, "gold": gold, "correct": None,
            "trace": {"candidates": cands[::-1]}, "usage": {"completion_tokens": sum(tokens)}}


def test_sc_prefixes_vote_over_the_first_k_samples_in_order() -> None:
    rec = _sc("p", "7", ["8", "7", "7", None], [10, 20, 30, 40])
    assert sc_prefixes(rec) == [(False, 10), (False, 30), (True, 60), (True, 100)]  # k=2: a tie keeps the first


def test_sc_curve_and_the_equal_token_comparison() -> None:
    recs = [_sc("a", "7", ["7", "8", "8"], [10, 10, 10]), _sc("b", "1", ["2", "1", "1"], [10, 10, 10])]
    recs += [{"status": "ok", "chain": "leco-vote", "problem_id": p, "correct": c, "usage": {"completion_tokens": 15}}
             for p, c in (("a", True), ("b", False))]
    lines = sc_curve(recs)
    assert lines[0] == ("- sc@k from the same samples (the vote over the first k; n = 2): "
                        "k=1 50.0% at 10 tokens; k=2 50.0% at 20 tokens; k=3 50.0% at 30 tokens")
    assert lines[1].startswith("- leco-vote vs sc@2 (about equal generated tokens; same 2 problems): 50.0% vs 50.0%, +0.0")
    assert lines[1].endswith("at 0.75x sc@2's generated tokens")
    assert sc_curve([r for r in recs if r["chain"] != "sc"]) == []
