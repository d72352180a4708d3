"""What an eval's traces say beyond the summary table: inside LECO and critique, per chain.

Reads ``results.jsonl`` of one or more ``sc-chains eval`` runs and prints, per run:
- LECO (``leco``, ``s2a+leco``): first-attempt accuracy vs final (what the rethinks and the vote
  did on their own), rethinks per problem, how often the final answer differs from the first,
  and why the loop stopped;
- critique: the first attempt's accuracy, and how often the revision changed the answer;
- S2A: rewrite parse statuses and how many input sentences the rewrite dropped.

Usage: ``python benchmarks/eval_extras.py benchmarks/results/eval-gsm-ic-qwen2.5-coder-0.5b ...``
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from graphs.answers import extract_answer
from sc_chains.eval.metrics import check_answer


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "0/0"


def leco_lines(name: str, recs: list[dict[str, Any]]) -> list[str]:
    firsts, changed, rethinks, stops = 0, 0, [], Counter()
    for r in recs:
        trace = r["trace"].get("answer_trace", r["trace"]) if name == "s2a+leco" else r["trace"]
        attempts = trace.get("attempts") or []
        first = attempts[0].get("answer") if attempts else None
        if first is None and attempts:
            first = extract_answer(attempts[0].get("response") or "")
        firsts += bool(check_answer(first, r["gold"]))
        changed += first != r.get("answer")
        rethinks.append(max(0, len(attempts) - 1))
        stops[trace.get("stop_reason")] += 1
    n = len(recs)
    final = sum(bool(r.get("correct")) for r in recs)
    return [
        f"  first attempt correct {_pct(firsts, n)} -> final {_pct(final, n)}; "
        f"final answer differs from the first in {_pct(changed, n)}",
        f"  rethinks per problem {sum(rethinks) / max(1, n):.2f} (distribution {dict(sorted(Counter(rethinks).items()))}); "
        f"stop reasons {dict(stops)}",
    ]


def critique_lines(recs: list[dict[str, Any]]) -> list[str]:
    n = len(recs)
    t1 = sum(bool(r.get("correct_t1")) for r in recs)
    same = sum(r.get("answer_t1") == r.get("answer") for r in recs)
    return [f"  attempt 1 correct {_pct(t1, n)} -> attempt 2 {_pct(sum(bool(r.get('correct')) for r in recs), n)}; "
            f"answer kept in {_pct(same, n)}"]


def s2a_lines(recs: list[dict[str, Any]]) -> list[str]:
    statuses = Counter(r["trace"].get("parse_status") for r in recs)
    dropped = [len(r["trace"].get("removed") or []) for r in recs]
    return [f"  rewrite parse {dict(statuses)}; sentences dropped per problem {sum(dropped) / max(1, len(recs)):.2f}"]


def main(folders: list[str]) -> None:
    for folder in folders:
        path = Path(folder) / "results.jsonl"
        recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        recs = [r for r in recs if r.get("status") == "ok"]
        print(f"== {folder}")
        for name in dict.fromkeys(r["chain"] for r in recs):
            mine = [r for r in recs if r["chain"] == name]
            lines: list[str] = []
            if name in ("leco", "s2a+leco"):
                lines += leco_lines(name, mine)
            if name == "critique":
                lines += critique_lines(mine)
            if name.startswith("s2a"):
                lines += s2a_lines(mine)
            if lines:
                print(f"{name} (n={len(mine)})")
                print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
