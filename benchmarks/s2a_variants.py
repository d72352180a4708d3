"""S2A variants on GSM-IC: which way of cleaning the input drops the inserted distractor?

For ``--n`` GSM-IC problems (a GSM8K problem with one inserted irrelevant sentence,
``meta["distractor"]``) it runs the cleaning step of each S2A variant through S2A's one loop
(:func:`graphs.s2a.loop.rewrite_loop`, the code the ``s2a*`` chains run; no answer call):

- ``fewshot``: the paper's irrelevant-context rewrite after two worked examples of its format
  (``S2AConfig(few_shot=True)``, chain ``s2a-fewshot``);
- ``filter``: one-token yes/no relevance score per context sentence, the clearly lowest dropped
  (``S2AConfig(mode="filter")``, chain ``s2a-filter``);
- ``zeroshot`` (the plain ``s2a`` chain) is not run again: its rewrites are read from the
  committed evaluation (``--eval-results``, the same problems, the same model and dtype).

Per variant it reports the **detection rate** (problems whose distractor sentence was dropped),
**false drops** (real sentences of the problem dropped: context sentences, and the question
counted apart), the parse status of each rewrite, and the cleaning step's calls and tokens.
A sentence counts as dropped when it is in the record's ``removed`` list (the filter: exactly the
sentences it dropped; a rewrite: sentences less than half of whose word bigrams it kept).
Every record goes to ``--jsonl`` (a rerun resumes from it). No accuracy is measured here.

    python benchmarks/s2a_variants.py --n 20 --jsonl benchmarks/results/s2a_variants.jsonl \
        --out benchmarks/results/s2a_variants.txt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.specs import resolve_model  # noqa: E402
from graphs.driver import execute  # noqa: E402
from graphs.loop import drive  # noqa: E402
from graphs.s2a.config import S2AConfig  # noqa: E402
from graphs.s2a.filter import split_problem  # noqa: E402
from graphs.s2a.loop import rewrite_loop  # noqa: E402
from sc_chains.datasets import load_dataset  # noqa: E402

VARIANTS = {
    "fewshot": {"few_shot": True},
    "filter": {"mode": "filter"},
}
"""The variants run here (S2AConfig settings, as the chains ``s2a-fewshot`` / ``s2a-filter``)."""
EVAL = "benchmarks/results/eval-gsm-ic-qwen2.5-coder-0.5b/results.jsonl"


def config(variant: str) -> S2AConfig:
    """The eval's GSM-IC settings (irrelevant-context prompt, no instruction) plus the variant's."""
    return S2AConfig(rewrite="irrelevant", instruction="", rewrite_max_tokens=256, **VARIANTS[variant])


def grade(question: str, distractor: str, removed: list[str]) -> dict[str, Any]:
    """What a cleaning step dropped, against the known distractor (pure)."""
    context, q = split_problem(question)
    gone = {s.strip() for s in removed}
    real = [s for s in context if s.strip() != distractor.strip()]
    return {"distractor_dropped": distractor.strip() in gone, "real_context": len(real),
            "real_dropped": sum(s.strip() in gone for s in real), "question_dropped": q.strip() in gone}


def run_one(model: Any, variant: str, problem: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    record, cost = drive(rewrite_loop(problem.question, config(variant)),
                         lambda req: execute(model, req), on_emit=lambda e: None)
    return {"id": problem.id, "variant": variant, "status": record["status"], "removed": record["removed"],
            "raw": record["raw"], "scores": record["scores"], "cost": cost, "wall_s": time.perf_counter() - t0,
            **grade(problem.question, problem.meta["distractor"], record["removed"])}


def zeroshot_rows(path: str, problems: list[Any]) -> list[dict[str, Any]]:
    """The plain ``s2a`` chain's rewrites of these problems from a committed eval's results."""
    if not Path(path).exists():
        return []
    by_id = {p.id: p for p in problems}
    rows = []
    for line in Path(path).read_text().splitlines():
        rec = json.loads(line)
        if rec.get("chain") == "s2a" and rec["problem_id"] in by_id:
            p, tr = by_id[rec["problem_id"]], rec["trace"]
            rows.append({"id": p.id, "variant": "zeroshot", "status": tr["parse_status"], "removed": tr["removed"],
                         "cost": None, "wall_s": None, **grade(p.question, p.meta["distractor"], tr["removed"])})
    return rows


def summarize(variant: str, rows: list[dict[str, Any]]) -> list[str]:
    n = len(rows)
    if not n:
        return [f"{variant}: no rows"]
    det = sum(r["distractor_dropped"] for r in rows)
    real = sum(r["real_context"] for r in rows)
    fd = sum(r["real_dropped"] for r in rows)
    qd = sum(r["question_dropped"] for r in rows)
    clean = sum(r["distractor_dropped"] and not r["real_dropped"] and not r["question_dropped"] for r in rows)
    status = ", ".join(f"{k} {v}" for k, v in Counter(r["status"] for r in rows).most_common())
    lines = [f"{variant} ({n} problems)",
             f"  distractor dropped: {det}/{n} ({det / n:.0%}); exactly the distractor dropped: {clean}/{n} ({clean / n:.0%})",
             f"  false drops: real context sentences {fd}/{real} ({fd / max(1, real):.0%}); question sentence {qd}/{n}",
             f"  status: {status}"]
    costs = [r["cost"] for r in rows if r.get("cost")]
    if costs:
        lines.append(f"  cleaning step per problem: {sum(c['calls'] for c in costs) / len(costs):.1f} calls, "
                     f"{sum(c['prompt_tokens'] for c in costs) / len(costs):.0f} prompt tokens, "
                     f"{sum(c['completion_tokens'] for c in costs) / len(costs):.1f} completion tokens, "
                     f"{sum(r['wall_s'] for r in rows) / n:.0f} s wall")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="hf:qwen2.5-coder-0.5b")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--variants", default="fewshot,filter")
    ap.add_argument("--eval-results", default=EVAL)
    ap.add_argument("--jsonl", default=None, help="append every record here (and resume from it)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-run", action="store_true", help="only summarise what --jsonl holds")
    args = ap.parse_args()
    t0 = time.time()
    names = args.variants.split(",")
    problems = load_dataset("gsm-ic", limit=args.n)
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if args.jsonl and Path(args.jsonl).exists():
        for line in Path(args.jsonl).read_text().splitlines():
            rec = json.loads(line)
            done.setdefault((rec["id"], rec["variant"]), rec)
    todo = [] if args.no_run else [(p, v) for p in problems for v in names if (p.id, v) not in done]
    model = resolve_model(args.model, dtype=args.dtype, coalesce=False) if todo else None
    for i, (p, v) in enumerate(todo):
        rec = run_one(model, v, p)
        done[(p.id, v)] = rec
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(rec) + "\n")
        print(f"[{i + 1}/{len(todo)}] {p.id} {v}: {rec['status']}, distractor dropped {rec['distractor_dropped']}, "
              f"real dropped {rec['real_dropped']} ({time.time() - t0:.0f}s)", flush=True)
    complete = [p for p in problems if all((p.id, v) in done for v in names)]  # a stopped run: the problems done
    ids = [p.id for p in complete]
    header = [f"S2A variants on GSM-IC, {len(complete)} problems (of the first {args.n} of 'gsm-ic'), model {args.model} "
              f"({args.dtype}), greedy; the cleaning step only (no answer call)",
              f"command: python benchmarks/s2a_variants.py --n {args.n} --variants {args.variants}"
              + (f" --jsonl {args.jsonl}" if args.jsonl else ""),
              "dropped = in the record's 'removed' list; false drops = real sentences of the problem dropped", ""]
    body: list[str] = []
    zs = zeroshot_rows(args.eval_results, complete)
    if zs:
        body += [*summarize("zeroshot (s2a; read from the committed eval)", zs), ""]
    for v in names:
        body += [*summarize(v, [done[(i, v)] for i in ids if (i, v) in done]), ""]
    for v in names:  # a variant that ran on more problems than the others: all of its problems too
        more = [p for p in problems if (p.id, v) in done]
        if len(more) > len(complete):
            body += [f"-- {v} on every problem it ran ({len(more)}), with the zero-shot rewrite on the same problems:",
                     *summarize(v, [done[(p.id, v)] for p in more]),
                     *summarize("zeroshot (s2a; read from the committed eval)", zeroshot_rows(args.eval_results, more)), ""]
    text = "\n".join(header + body)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
