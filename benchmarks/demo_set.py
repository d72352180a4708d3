"""How often each method helps, on the demo's small problem sets: the numbers ``sc-chains demo`` prints.

For each method (``s2a``, ``leco``, ``critique``) it runs ``--n`` seeded problems from
:mod:`sc_chains.demo_examples` through the method and its plain baseline (S2A: a plain answer to
the prompt with the wrong suggestion; LECO: its own first chain-of-thought attempt; critique: the
first draft), greedy, with the demo's settings and repetition stop, and writes per-problem
records plus the i->c / c->i counts to ``--out`` (default ``benchmarks/results/demo_set.json``).
Results are saved after every problem and a rerun resumes (same model, seed and settings).

    .venv/bin/python benchmarks/demo_set.py                       # hf:default, n=10 per method
    .venv/bin/python benchmarks/demo_set.py --methods s2a --n 12
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.specs import resolve_model  # noqa: E402
from sc_chains.demo_examples import (  # noqa: E402
    DEMO_SEED,
    DEMO_SETTINGS,
    METHODS,
    RepetitionStop,
    compare,
    problems_for,
)

OUT = Path(__file__).resolve().parent / "results" / "demo_set.json"


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of one method's records: accuracy before/after and the flips."""
    flips = {k: sum(r["flip"] == k for r in records) for k in ("i->c", "c->i", "c->c", "i->i")}
    out: dict[str, Any] = {
        "n": len(records),
        "baseline_correct": sum(r["baseline_correct"] for r in records),
        "method_correct": sum(r["method_correct"] for r in records),
        **flips,
        "method_tokens": sum(r["method_cost"]["completion_tokens"] for r in records),
        "method_seconds": round(sum(r["method_cost"]["seconds"] for r in records), 1),
    }
    if records and "suggested" in records[0]:
        out["baseline_says_suggested"] = sum(r["baseline_says_suggested"] for r in records)
        out["method_says_suggested"] = sum(r["method_says_suggested"] for r in records)
    return out


def merge(paths: list[Path], out: Path) -> int:
    """One result file from several runs of the same model, seed and settings (one method each)."""
    parts = [json.loads(p.read_text()) for p in paths]
    keys = ("model", "seed", "settings", "decoding", "repetition_stop")
    if any({k: p.get(k) for k in keys} != {k: parts[0].get(k) for k in keys} for p in parts):
        raise SystemExit("the files come from runs with different models, seeds or settings: not merged")
    data = {**parts[0], "methods": {}}
    for p in parts:
        data["methods"].update(p["methods"])
    out.write_text(json.dumps(data, indent=1) + "\n")
    print({m: e["summary"] for m, e in data["methods"].items()})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="hf:default")
    ap.add_argument("--n", type=int, default=10, help="problems per method (default 10)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy machine)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="instead of running: merge the methods of these result files (one run each) into --out")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    identity = {"model": args.model, "seed": DEMO_SEED, "settings": DEMO_SETTINGS, "decoding": "greedy",
                "repetition_stop": True}
    data: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if {k: data.get(k) for k in identity} != json.loads(json.dumps(identity)):
        data = {**identity, "methods": {}}
    data["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    model = RepetitionStop(resolve_model(args.model))
    for method in args.methods.split(","):
        entry = data["methods"].setdefault(method, {"records": []})
        done = {r["id"] for r in entry["records"]}
        for p in problems_for(method, args.n):
            if p.id in done:
                continue
            start = time.perf_counter()
            record, _ = compare(method, model, p)
            entry["records"].append(record)
            entry["summary"] = summarize(entry["records"])
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(data, indent=1) + "\n")
            print(f"{method} #{p.id}: gold {p.gold}, baseline {record['baseline']!r}, "
                  f"{method} {record['method']!r} ({record['flip']}), {time.perf_counter() - start:.1f}s", flush=True)
        entry["summary"] = summarize(entry["records"])
        print(method, json.dumps(entry["summary"]), flush=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
