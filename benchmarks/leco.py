"""LECO vs plain chain-of-thought, and LECO with vs without KV/prefill reuse, in one run.

    .venv/bin/python benchmarks/leco.py --model hf:default --n 10 --dataset gsm8k

For each problem: one greedy CoT call (the same LECO prompt, so only the rethinks differ), LECO
on an adapter that reuses its KV cache for a shared prefix, and LECO on an adapter that
re-encodes every prompt (``kv_reuse=False``). Reports accuracy, tokens generated and tokens
processed (prompt tokens minus cached) per problem, calls and wall time per problem, with ratios
against CoT, and the reuse speed-up. Greedy decoding makes both LECO runs produce the same text;
the benchmark checks that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from adapters.specs import resolve_model  # noqa: E402
from graphs.answers import answers_equal, extract_answer  # noqa: E402
from graphs.common import usage_of  # noqa: E402
from graphs.leco import LecoConfig, create_leco_graph  # noqa: E402
from graphs.leco.prompts import chat_messages  # noqa: E402
from sc_chains.datasets import load_dataset  # noqa: E402


def run_cot(model: Any, question: str, cfg: LecoConfig) -> dict[str, Any]:
    start = time.perf_counter()
    gen = model.generate(chat_messages(question, cfg.system_prompt), max_tokens=cfg.max_tokens,
                         temperature=0.0, top_logprobs=cfg.k)
    return {"answer": extract_answer(gen.text), "usage": usage_of(gen), "seconds": time.perf_counter() - start,
            "rethinks": 0, "texts": [gen.text]}


def run_leco(model: Any, question: str, cfg: LecoConfig) -> dict[str, Any]:
    if hasattr(model, "clear_cache"):
        model.clear_cache()  # no help from the previous problem or the CoT call
    graph = create_leco_graph(model, cfg)
    start = time.perf_counter()
    out = graph.invoke({"question": question})
    return {"answer": out["answer"], "usage": out["usage"], "seconds": time.perf_counter() - start,
            "rethinks": len(out["attempts"]) - 1, "texts": [a["response"] for a in out["attempts"]],
            "first": out["attempts"][0]["answer"], "stop": out["stop_reason"]}


def summarise(name: str, rows: list[dict[str, Any]], golds: list[str], base: dict[str, float] | None) -> dict[str, float]:
    n = len(rows)
    s = {
        "acc": sum(answers_equal(r["answer"], g) for r, g in zip(rows, golds)) / n,
        "gen": statistics.fmean(r["usage"]["completion_tokens"] for r in rows),
        "proc": statistics.fmean(r["usage"]["prompt_tokens"] - r["usage"]["cached_tokens"] for r in rows),
        "calls": statistics.fmean(r["usage"]["calls"] for r in rows),
        "sec": statistics.fmean(r["seconds"] for r in rows),
    }
    b = base or s
    print(f"| {name:<22} | {s['acc']:6.1%} | {s['gen']:7.1f} ({s['gen'] / b['gen']:4.2f}x) "
          f"| {s['proc']:7.1f} ({s['proc'] / b['proc']:4.2f}x) | {s['calls']:5.2f} "
          f"| {s['sec']:6.2f} ({s['sec'] / b['sec']:4.2f}x) |")
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="hf:default")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--dataset", choices=["gsm8k", "svamp"], default="gsm8k")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--max-rethinks", type=int, default=3)
    ap.add_argument("--rethink-temperature", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)

    problems = load_dataset(args.dataset, limit=args.n)
    reuse = resolve_model(args.model)
    fresh = resolve_model(args.model, kv_reuse=False) if args.model.startswith("hf:") else reuse
    if reuse is fresh:
        print("note: not an hf: model, so the no-reuse run uses the same adapter", file=sys.stderr)
    cfg = LecoConfig(max_tokens=args.max_tokens, max_rethinks=args.max_rethinks, max_completion_tokens=args.max_tokens * 4,
                     rethink_temperature=args.rethink_temperature, seed=args.seed)

    cot, leco, leco_fresh = [], [], []
    t0 = time.perf_counter()
    for i, p in enumerate(problems):
        cot.append(run_cot(fresh, p.question, cfg))
        leco.append(run_leco(reuse, p.question, cfg))
        leco_fresh.append(run_leco(fresh, p.question, cfg))
        print(f"[{i + 1}/{len(problems)}] gold={p.answer} cot={cot[-1]['answer']} leco={leco[-1]['answer']} "
              f"(answers {leco[-1]['first']}.., rethinks {leco[-1]['rethinks']}, stop {leco[-1]['stop']}) "
              f"{time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)

    golds = [p.answer for p in problems]
    print(f"\nLECO benchmark: {args.dataset}, n={len(problems)}, model={reuse.name}, greedy, "
          f"max_tokens={args.max_tokens}, max_rethinks={args.max_rethinks}, "
          f"rethink_temperature={args.rethink_temperature}\n")
    print("| method                 |    acc | generated tok/problem | processed tok/problem | calls | wall s/problem  |")
    print("|------------------------|--------|-----------------------|-----------------------|-------|-----------------|")
    base = summarise("CoT (1 call)", cot, golds, None)
    s_reuse = summarise("LECO, KV/prefill reuse", leco, golds, base)
    s_fresh = summarise("LECO, re-encode", leco_fresh, golds, base)
    same = sum(a["texts"] == b["texts"] for a, b in zip(leco, leco_fresh))
    changed = sum(r["answer"] != r["first"] for r in leco)
    rethinks = [r["rethinks"] for r in leco]
    repeat = sum(1 for r in leco for t in r["texts"][1:] if t == r["texts"][0])
    print(f"\nreuse vs re-encode: {s_fresh['sec'] / s_reuse['sec']:.2f}x faster, "
          f"{s_fresh['proc'] / max(s_reuse['proc'], 1e-9):.2f}x fewer tokens processed; "
          f"identical LECO texts in {same}/{len(problems)} problems")
    print(f"LECO: {statistics.fmean(rethinks):.2f} rethinks/problem; final answer differs from the first "
          f"attempt's in {changed}/{len(problems)}; rethinks that reproduced the first response verbatim: "
          f"{repeat}/{sum(rethinks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
