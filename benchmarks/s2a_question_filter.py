"""S2A's question-likelihood filter on GSM-IC: does it find the inserted sentence, and does it
leave clean problems alone?

For ``--n`` GSM-IC problems (a GSM8K problem with one inserted irrelevant sentence,
``meta["distractor"]``; the clean problem is ``meta["oracle"]``) it scores, through the library
(:func:`graphs.s2a.likelihood.question_pairs`, ``LogprobModel.score_texts``,
:func:`~graphs.s2a.likelihood.question_gains`), each context sentence's leave-one-out gain in
the question's log-probability, on the problem with the distractor and on the clean problem, and
applies :func:`~graphs.s2a.likelihood.drop_by_gain` (rule ``lowest``, ``gain_below`` 0, the
defaults). It reports:

- **lowest**: problems whose distractor has the lowest gain of its problem;
- **AUROC**: how well a low gain separates distractors from real sentences (pooled);
- **detection** / **false drops** with the default rule; **exact**: problems cleaned to exactly
  the clean problem;
- on the clean problems: how many lose a sentence (false drops where nothing should go).

No answers are generated (accuracy is the eval's ``s2a-filter-question`` chain). Resumable:
``--jsonl`` keeps every gain and a rerun skips the problems it holds.

    python benchmarks/s2a_question_filter.py --n 200 --jsonl benchmarks/results/s2a_question_filter_gains.jsonl \
        --out benchmarks/results/s2a_question_filter.txt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.specs import resolve_model  # noqa: E402
from graphs.s2a.filter import split_problem  # noqa: E402
from graphs.s2a.likelihood import drop_by_gain, question_gains, question_pairs  # noqa: E402
from sc_chains.datasets import load_dataset  # noqa: E402
from s2a_filter import auroc  # noqa: E402


def gains_of(model, text: str, distractor: str | None) -> list[dict]:  # noqa: ANN001
    """Each context sentence of ``text``: its gain, whether it is the distractor."""
    context, question = split_problem(text)
    if not context:
        return []
    gains = question_gains(model.score_texts(question_pairs(context, question)))
    return [{"text": s, "distractor": s.strip() == (distractor or "").strip(), "gain": g} for s, g in zip(context, gains)]


def summarize(noisy: list[list[dict]], clean: list[list[dict]], below: float = 0.0) -> list[str]:
    found = [rows for rows in noisy if any(r["distractor"] for r in rows)]
    lowest = sum(1 for rows in found if min(rows, key=lambda r: r["gain"])["distractor"])
    pos = [-r["gain"] for rows in found for r in rows if r["distractor"]]
    neg = [-r["gain"] for rows in found for r in rows if not r["distractor"]]
    drops = [drop_by_gain([r["gain"] for r in rows], gain_below=below) for rows in found]
    hit = sum(any(d and r["distractor"] for d, r in zip(ds, rows)) for ds, rows in zip(drops, found))
    false = sum(d and not r["distractor"] for ds, rows in zip(drops, found) for d, r in zip(ds, rows))
    exact = sum(all(d == r["distractor"] for d, r in zip(ds, rows)) for ds, rows in zip(drops, found))
    clean_drops = [drop_by_gain([r["gain"] for r in rows], gain_below=below) for rows in clean]
    touched = sum(any(ds) for ds in clean_drops)
    n_clean = sum(len(rows) for rows in clean)
    pct = lambda a, b: f"{a}/{b} ({100 * a / max(b, 1):.1f}%)"  # noqa: E731
    return [
        f"problems with the distractor found as one sentence: {len(found)}/{len(noisy)}; "
        f"context sentences: {len(pos)} distractors, {len(neg)} real",
        f"distractor has the lowest gain of its problem: {pct(lowest, len(found))}",
        f"AUROC (pooled; a low gain = distractor): {auroc(pos, neg):.3f}",
        f"rule lowest, gain below {below:g}: distractor dropped {pct(hit, len(found))}; "
        f"real sentences dropped {pct(false, len(neg))}; cleaned to exactly the clean problem {pct(exact, len(found))}",
        f"clean problems (no distractor): a sentence dropped in {pct(touched, len(clean))} "
        f"({sum(map(sum, clean_drops))} of {n_clean} sentences)",
    ]


def tradeoff(noisy: list[list[dict]], clean: list[list[dict]], belows: list[float]) -> list[str]:
    """One line per ``gain_below``: distractor dropped, real sentences dropped, clean problems touched."""
    out = ["gain_below | distractor dropped | real sentences dropped | clean problems losing a sentence"]
    for below in belows:
        hit = sum(any(d and r["distractor"] for d, r in zip(drop_by_gain([r["gain"] for r in rows], gain_below=below), rows))
                  for rows in noisy)
        false = sum(d and not r["distractor"] for rows in noisy
                    for d, r in zip(drop_by_gain([r["gain"] for r in rows], gain_below=below), rows))
        touched = sum(any(drop_by_gain([r["gain"] for r in rows], gain_below=below)) for rows in clean)
        real = sum(1 for rows in noisy for r in rows if not r["distractor"])
        out.append(f"{below:g} | {100 * hit / len(noisy):.1f}% | {100 * false / max(real, 1):.1f}% | "
                   f"{100 * touched / len(clean):.1f}%")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="hf:qwen2.5-coder-0.5b")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--start", type=int, default=0, help="report on problems [start, n) only (a tuning split)")
    ap.add_argument("--gain-below", type=float, default=0.0, help="the rule's gain_below for the summary")
    ap.add_argument("--tradeoff", default="0,-0.5,-1,-2,-3", help="gain_below values for the trade-off table")
    ap.add_argument("--out", default=None)
    ap.add_argument("--jsonl", default=None, help="append every gain here (and resume from it)")
    args = ap.parse_args()
    t0 = time.time()
    problems = load_dataset("gsm-ic", limit=args.n, seed=0)
    done: dict[str, dict] = {}
    if args.jsonl and Path(args.jsonl).exists():
        done = {r["id"]: r for r in map(json.loads, Path(args.jsonl).read_text().splitlines())}
    todo = [p for p in problems if p.id not in done]
    model = resolve_model(args.model, **({"dtype": args.dtype} if args.model.startswith("hf:") else {})) if todo else None
    for i, p in enumerate(todo):
        row = {"id": p.id, "noisy": gains_of(model, p.question, p.meta.get("distractor")),
               "clean": gains_of(model, p.meta.get("oracle", p.question), None)}
        done[p.id] = row
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")
        print(f"[{i + 1}/{len(todo)}] {p.id} {time.time() - t0:.0f}s", flush=True)
    rows = [done[p.id] for p in problems][args.start:]
    header = [f"S2A question-likelihood filter on GSM-IC (in-topic), {len(problems)} problems, model {args.model} "
              f"({args.dtype}); gain = log P(question | context) - log P(question | context without the sentence), "
              "nats, raw text, no generation; " + (f"{time.time() - t0:.0f}s wall" if todo else f"gains from {args.jsonl}"),
              f"command: python benchmarks/s2a_question_filter.py --model {args.model} --n {args.n} --start {args.start} "
              f"--gain-below {args.gain_below:g}; reported on problems {args.start} to {args.n - 1}", ""]
    noisy, clean = [r["noisy"] for r in rows], [r["clean"] for r in rows]
    belows = [float(b) for b in args.tradeoff.split(",")]
    text = "\n".join(header + summarize(noisy, clean, args.gain_below) + ["", *tradeoff(noisy, clean, belows)])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
