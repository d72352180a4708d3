"""S2A filter: the relevance calls one after another vs as one batch (the cleaning step only).

The filter (``S2AConfig(mode="filter")``, chain ``s2a-filter``) asks one one-token yes/no
question per context sentence. :func:`graphs.s2a.filter.relevance_loop` yields them as one
:class:`graphs.loop.Batch`. This runs S2A's cleaning step (:func:`graphs.s2a.loop.rewrite_loop`,
no answer call) on ``--n`` GSM-IC problems both ways, on one local model:

- ``sequential``: the batch's calls one after another (:func:`graphs.loop.one_by_one`), each
  ``generate`` starting from the previous call's prefix KV cache (the behaviour before batching);
- ``batched``: the whole batch through ``HFModel.batch`` (the graph's path): the continuous
  engine prefills the prompts' common prefix once and their suffixes as one padded batch;
- ``batched-noshare``: the same, with that shared prefill switched off
  (``MIN_SHARED_PREFIX`` raised past any prompt): each row prefilled on its own, as before it.

Per problem the modes alternate (their order rotates from problem to problem) and the kept prefix
cache is cleared before each run, so the machine's background load hits both alike. Reported:
wall and process CPU time per mode (sums, and the per-problem ratio batched / sequential), the
relevance calls and tokens, and whether the two records agree (same kept/dropped sentences; the
largest score difference, float noise of batched rows).

    OMP_NUM_THREADS=1 python benchmarks/s2a_filter_batch.py --n 10 --out benchmarks/results/s2a_filter_batch.txt
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from statistics import mean, median
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from adapters.hf import continuous  # noqa: E402
from adapters.specs import resolve_model  # noqa: E402
from graphs.driver import execute  # noqa: E402
from graphs.loop import drive, one_by_one  # noqa: E402
from graphs.s2a.config import S2AConfig  # noqa: E402
from graphs.s2a.loop import rewrite_loop  # noqa: E402
from sc_chains.datasets import load_dataset  # noqa: E402

CONFIG = S2AConfig(mode="filter", rewrite="irrelevant", instruction="")
"""The eval's GSM-IC settings, filter variant (as ``benchmarks/s2a_variants.py``)."""
MODES = ("sequential", "batched", "batched-noshare")


def run(model: Any, question: str, mode: str) -> dict[str, Any]:
    """One cleaning step; its record, cost, wall and process CPU seconds."""
    model.clear_cache()
    one = lambda req: execute(model, req)  # noqa: E731
    call = one_by_one(one) if mode == "sequential" else one
    shared = continuous.MIN_SHARED_PREFIX
    continuous.MIN_SHARED_PREFIX = 10**9 if mode == "batched-noshare" else shared
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        record, cost = drive(rewrite_loop(question, CONFIG), call, on_emit=lambda e: None)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        continuous.MIN_SHARED_PREFIX = shared
    return {"record": record, "cost": cost, "wall": wall, "cpu": cpu}


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, float]:
    """Same decisions and removed sentences; the largest score difference."""
    ra, rb = a["record"], b["record"]
    same = ra["removed"] == rb["removed"] and [s["kept"] for s in ra["scores"]] == [s["kept"] for s in rb["scores"]]
    diffs = [abs(x["score"] - y["score"]) for x, y in zip(ra["scores"], rb["scores"])
             if x["score"] is not None and y["score"] is not None]
    return same, max(diffs, default=0.0)


def report(args: argparse.Namespace, rows: list[dict[str, dict[str, Any]]]) -> list[str]:
    tot = {m: {k: sum(r[m][k] for r in rows) for k in ("wall", "cpu")} for m in MODES}
    calls = sum(r["batched"]["cost"]["calls"] for r in rows)
    lines = [
        f"S2A filter cleaning step, relevance calls one by one vs one batch: {len(rows)} GSM-IC problems, "
        f"model {args.model} ({args.dtype}), torch threads {torch.get_num_threads()}, "
        f"{calls} relevance calls ({calls / len(rows):.1f} per problem), batching {args.batching}",
        f"command: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} python benchmarks/s2a_filter_batch.py "
        f"--model {args.model} --dtype {args.dtype} --n {args.n}",
        "the modes alternate per problem (their order rotating); background load on the machine: "
        "compare the ratios, not the absolute times",
        "",
    ]
    for m in MODES:
        lines.append(f"{m:>16}: wall {tot[m]['wall']:.2f} s, cpu {tot[m]['cpu']:.2f} s "
                     f"({tot[m]['wall'] / len(rows):.3f} s / {tot[m]['cpu'] / len(rows):.3f} s per problem); "
                     f"prompt tokens {sum(r[m]['cost']['prompt_tokens'] for r in rows)}, "
                     f"of them from a KV cache {sum(r[m]['cost']['cached_tokens'] for r in rows)}")
    for m in MODES[1:]:
        ratio = {k: [r[m][k] / r["sequential"][k] for r in rows] for k in ("wall", "cpu")}
        agree = [compare(r["sequential"], r[m]) for r in rows]
        lines += [
            f"{m} / sequential, per problem: wall median {median(ratio['wall']):.2f} (mean {mean(ratio['wall']):.2f}, "
            f"range {min(ratio['wall']):.2f}-{max(ratio['wall']):.2f}); cpu median {median(ratio['cpu']):.2f} "
            f"(mean {mean(ratio['cpu']):.2f}); totals: wall {tot[m]['wall'] / tot['sequential']['wall']:.2f}x, "
            f"cpu {tot[m]['cpu'] / tot['sequential']['cpu']:.2f}x",
            f"  same records as sequential: {sum(s for s, _ in agree)}/{len(rows)} problems with the same kept/dropped "
            f"sentences; largest score difference {max(d for _, d in agree):.2e}",
        ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="hf:default")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batching", default="auto", choices=["auto", "continuous", "static"])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model = resolve_model(args.model, dtype=args.dtype, coalesce=False, batching=args.batching)
    problems = load_dataset("gsm-ic", limit=args.n)
    for mode in MODES:  # warm-up (not counted)
        run(model, problems[0].question, mode)
    rows = []
    for i, p in enumerate(problems):
        k = i % len(MODES)
        row = {m: run(model, p.question, m) for m in MODES[k:] + MODES[:k]}
        rows.append(row)
        print(f"[{i + 1}/{len(problems)}] {p.id}: " + ", ".join(f"{m} {row[m]['wall']:.2f} s" for m in MODES), flush=True)
    text = "\n".join(report(args, rows))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
