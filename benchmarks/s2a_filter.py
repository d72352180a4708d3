"""S2A filter variant on GSM-IC: does the yes/no relevance score find the inserted distractor?

For ``--n`` GSM-IC problems (``sc_chains.datasets``: a GSM8K problem with one inserted
irrelevant sentence, recorded in ``meta["distractor"]``) it splits each problem into context
sentences and the question (:func:`graphs.s2a.filter.split_problem`), asks the model one yes/no
relevance question per context sentence for each ``--instruction`` (one batch per problem,
greedy, one token, top-20 logprobs) and scores ``P(yes) / (P(yes) + P(no))``. It reports:

- **detection rate**: problems whose distractor is dropped at the threshold (score < t);
- **false drops**: real (non-distractor) context sentences dropped at the threshold;
- **lowest**: problems where the distractor has the lowest score of its problem;
- **AUROC**: how well ``1 - score`` separates distractors from real sentences, pooled over all
  sentences (Mann-Whitney, ties count 1/2), and the mean of the per-problem AUROCs.

No accuracy is measured here (no answers are generated): this is the scoring part only.

    python benchmarks/s2a_filter.py --n 20 --out benchmarks/results/s2a_filter.txt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from statistics import mean

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.specs import resolve_model  # noqa: E402
from graphs.driver import model_requests  # noqa: E402
from graphs.loop import drive, one_by_one  # noqa: E402
from graphs.s2a.filter import (  # noqa: E402
    RELEVANCE_INSTRUCTION,
    RELEVANCE_TOP_LOGPROBS,
    drop_decisions,
    relevance_loop,
    relevance_messages,
    relevance_score,
    split_problem,
)
from sc_chains.datasets import load_dataset  # noqa: E402

INSTRUCTIONS = {
    "needed": RELEVANCE_INSTRUCTION,
    "relevant": "Is this sentence relevant to answering the question? Answer with Yes or No only.",
}
DATA = None  # the packaged data (pass --data for another copy)


def auroc(pos: list[float], neg: list[float]) -> float | None:
    """P(a positive scores above a negative), ties 1/2 (``None`` if a class is empty)."""
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def score_problem(model, problem, instruction: str, mode: str) -> list[dict]:
    """One problem's sentence scores. ``sequential``: the filter's loop (:func:`relevance_loop`),
    its batch run one call after another (:func:`graphs.loop.one_by_one`), so the local model's prefix KV cache shares the problem's prefix;
    ``batch``: one padded batch (no sharing)."""
    if mode == "sequential":
        result = drive(relevance_loop(problem.question, instruction=instruction),
                       one_by_one(lambda call: model.generate(model_requests(model, call, [])[0])), on_emit=lambda e: None)
        scores = result.scores
    else:
        context, question = split_problem(problem.question)
        reqs = [relevance_messages(problem.question, question, s, instruction=instruction) for s in context]
        gens = model.batch(reqs, max_tokens=1, temperature=0.0, top_logprobs=RELEVANCE_TOP_LOGPROBS)
        scores = [{"text": s, "score": relevance_score(g)[2], "p_yes": relevance_score(g)[0],
                   "p_no": relevance_score(g)[1]} for s, g in zip(context, gens)]
    return [{"text": x["text"], "distractor": x["text"].strip() == problem.meta["distractor"].strip(),
             "p_yes": x["p_yes"], "p_no": x["p_no"], "score": x["score"]} for x in scores]


def summarize(name: str, results: list[list[dict]], thresholds: list[float]) -> list[str]:
    usable = [r for r in results if sum(x["distractor"] for x in r) == 1]
    val = [[(0.5 if x["score"] is None else x["score"]) for x in r] for r in usable]
    pos = [1 - v for r, vs in zip(usable, val) for x, v in zip(r, vs) if x["distractor"]]
    neg = [1 - v for r, vs in zip(usable, val) for x, v in zip(r, vs) if not x["distractor"]]
    per = [auroc([1 - v for x, v in zip(r, vs) if x["distractor"]], [1 - v for x, v in zip(r, vs) if not x["distractor"]])
           for r, vs in zip(usable, val)]
    per = [a for a in per if a is not None]
    lowest = sum(1 for r, vs in zip(usable, val)
                 if min(vs) == next(v for x, v in zip(r, vs) if x["distractor"])
                 and sum(v == min(vs) for v in vs) == 1)
    unknown = sum(x["score"] is None for r in usable for x in r)
    a = auroc(pos, neg)
    lines = [f"instruction {name!r}: {INSTRUCTIONS[name]}",
             f"  problems with the distractor found as one sentence: {len(usable)}/{len(results)}; "
             f"context sentences: {len(pos)} distractors, {len(neg)} real; unknown scores: {unknown}",
             f"  mean score: distractor {mean(1 - p for p in pos):.3f}, real {mean(1 - n for n in neg):.3f}",
             f"  AUROC (pooled): {a:.3f}; mean per-problem AUROC: {mean(per):.3f}" if a is not None else "  AUROC: n/a",
             f"  distractor strictly lowest in its problem: {lowest}/{len(usable)} ({lowest / max(1, len(usable)):.0%})"]
    rules = [("threshold", t, 0.0, f"threshold {t:.2f}") for t in thresholds]
    rules += [("lowest", 0.5, m, f"lowest, margin {m:.2f}") for m in (0.0, 0.02, 0.05)]
    for rule, t, m, label in rules:  # the filter's own decisions (an unknown score is kept)
        det = fd = 0
        for r in usable:
            drops = drop_decisions([x["score"] for x in r], rule=rule, threshold=t, margin=m)
            det += sum(d for x, d in zip(r, drops) if x["distractor"])
            fd += sum(d for x, d in zip(r, drops) if not x["distractor"])
        lines.append(f"  {label}: detection rate {det}/{len(pos)} ({det / max(1, len(pos)):.0%}), "
                     f"false drops {fd}/{len(neg)} ({fd / max(1, len(neg)):.0%})")
    return lines


def _resume(path: str | None, names: list[str], results: dict[str, list[list[dict]]], ids: set[str]) -> set[str]:
    """Load the problems (of ``ids``) an earlier run already scored (``--jsonl``)."""
    if not path or not Path(path).exists():
        return set()
    recs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    recs = [r for r in recs if r["id"] in ids]
    seen: dict[str, set[str]] = {}
    for rec in recs:
        seen.setdefault(rec["id"], set()).add(rec["instruction"])
    complete = {pid for pid, got in seen.items() if set(names) <= got}
    for rec in recs:  # a problem cut off half-way is scored again from the start
        if rec["id"] in complete and rec["instruction"] in names:
            results[rec["instruction"]].append(rec["rows"])
    return complete


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="hf:qwen2.5-coder-0.5b")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--mode", default="sequential", choices=["sequential", "batch"])
    ap.add_argument("--variant", default="in-topic", choices=["in-topic", "random"])
    ap.add_argument("--instructions", default="needed,relevant")
    ap.add_argument("--thresholds", default="0.3,0.4,0.45,0.5,0.7")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--out", default=None)
    ap.add_argument("--jsonl", default=None, help="append every score here (and resume from it)")
    args = ap.parse_args()
    t0 = time.time()
    problems = load_dataset(f"gsm-ic:{args.variant}", limit=args.n, path=args.data)
    names = args.instructions.split(",")
    thresholds = [float(t) for t in args.thresholds.split(",")]
    results: dict[str, list[list[dict]]] = {n: [] for n in names}
    done = _resume(args.jsonl, names, results, {p.id for p in problems})  # a killed run continues where it stopped
    local = args.model.startswith("hf:") and args.model != "hf:tiny-random"
    if all(p.id in done for p in problems):
        model = None  # everything is scored already: only the summary is computed
    elif local:
        model = resolve_model(args.model, dtype=args.dtype, coalesce=False)
    else:
        model = resolve_model(args.model)
    for i, p in enumerate(problems):
        if p.id in done:
            continue
        for n in names:
            rows = score_problem(model, p, INSTRUCTIONS[n], args.mode)
            results[n].append(rows)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps({"id": p.id, "instruction": n, "rows": rows}) + "\n")
        print(f"[{i + 1}/{len(problems)}] {p.id} {time.time() - t0:.0f}s", flush=True)
    header = [f"S2A filter relevance scores on GSM-IC ({args.variant}), {len(problems)} problems, "
              f"model {args.model} ({args.dtype}), greedy one token, top-{RELEVANCE_TOP_LOGPROBS} logprobs, {args.mode} calls, "
              (f"{time.time() - t0:.0f}s wall" if model is not None else f"scores loaded from {args.jsonl}"),
              f"command: python benchmarks/s2a_filter.py --model {args.model} --n {args.n} --variant {args.variant} "
              f"--mode {args.mode} --instructions {args.instructions}",
              "score = P(yes)/(P(yes)+P(no)); a sentence is dropped when score < threshold; "
              "positive class for AUROC = the inserted distractor (scored by 1 - score; an unknown score counts as 0.5 there "
              "and is kept by the filter)", ""]
    body = [line for n in names for line in [*summarize(n, results[n], thresholds), ""]]
    text = "\n".join(header + body)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
