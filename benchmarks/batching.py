"""Continuous vs static batching in the local HF adapter: 16 concurrent requests of mixed lengths.

Sixteen ``agenerate`` calls (asyncio tasks, as ``sc-chains eval --concurrency 16`` makes them)
with prompts of mixed lengths and ``max_tokens`` from 16 to 256, all greedy, on one model:

- static (``batching="static"``): the calls that arrive together run as left-padded batches of
  ``--max-batch-size`` rows, each to the end of its longest row;
- continuous (``batching="continuous"``, the default): a row that finishes leaves the batch and
  a waiting call joins at the next decoding step.

Both models share the loaded weights. Reported per mode: wall time, CPU time of this process
(``time.process_time``, all threads; the machine may be shared), generated tokens, tokens/s,
decode steps, and the continuous/static ratios measured in the same run (modes alternate,
``--repeats`` rounds, best round each). The greedy texts must be identical in both modes (the
script exits non-zero otherwise, unless ``--allow-mismatch`` says how many near-tie flips a
reduced-precision dtype may show).

Usage: ``python benchmarks/batching.py [--model hf:default] [--dtype bfloat16] [--requests 16]
[--max-batch-size 8] [--repeats 2] [--threads 1] [--out benchmarks/results/batching.txt]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = [
    "the history of the printing press", "how volcanoes form", "a robot who learns to paint",
    "why the moon has phases", "the water cycle", "a day in the life of a lighthouse keeper",
    "how bees make honey", "the rules of chess", "a dragon who is afraid of heights",
    "how a bicycle stays upright", "the invention of the telephone", "life on a space station",
    "how bread rises", "a cat that becomes mayor of a town", "why leaves change colour in autumn",
    "the first journey to the South Pole",
]  # fmt: skip

CONTEXT = ("Here is some background you may use. The reader is a curious twelve-year-old who "
           "likes clear examples, short sentences and a friendly tone. Avoid jargon, explain any "
           "term you must use, and end with one surprising fact. ")


def workload(n: int, low: int = 16, high: int = 256) -> list[tuple[str, int]]:
    """``n`` (prompt, max_tokens): prompts of three lengths, max_tokens spread over low..high and
    shuffled (a fixed permutation) so long and short rows share every batch."""
    budgets = [low + ((high - low) * i) // max(1, n - 1) for i in range(n)]
    order = [(7 * i + 3) % n for i in range(n)] if n % 7 else list(range(n))
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Write a long, detailed text about {topic}."
        if i % 3 == 1:
            prompt = CONTEXT + prompt
        elif i % 3 == 2:
            prompt = CONTEXT * 3 + prompt + " Use several paragraphs."
        out.append((prompt, budgets[order[i]]))
    return out


def run_mode(model: Any, work: list[tuple[str, int]]) -> dict[str, Any]:
    """All requests at once; wall and CPU time, tokens, texts, the batcher's steps."""

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(model.agenerate(p, max_tokens=mt, top_logprobs=2) for p, mt in work))

    before = model.coalesce_stats
    wall, cpu = time.perf_counter(), time.process_time()
    gens = asyncio.run(all_at_once())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = model.coalesce_stats
    tokens = sum(g.usage.completion_tokens for g in gens)
    return {"wall": wall, "cpu": cpu, "tokens": tokens, "texts": [g.text for g in gens], "gens": gens,
            "lengths": [g.usage.completion_tokens for g in gens],
            "steps": after.steps - before.steps, "batches": after.batches - before.batches}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:default", help="an hf: spec (default: hf:default, SmolLM2-135M)")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16, ...")
    parser.add_argument("--device", default=None)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--min-tokens", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (on a loaded machine 1 avoids OpenMP oversubscription)")
    parser.add_argument("--allow-mismatch", type=int, default=0,
                        help="greedy texts that may differ between the modes (near ties in low precision)")
    parser.add_argument("--out", default=None, help="also append the report to this file")
    args = parser.parse_args()

    import torch

    from adapters.specs import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)

    opts = {"device": args.device, "dtype": args.dtype, "max_batch_size": args.max_batch_size,
            "coalesce_wait_s": 0.05, "kv_reuse": False}  # fmt: skip
    static = resolve_model(args.model, batching="static", **opts)
    cont = resolve_model(args.model, batching="continuous", **opts)
    static.generate("warm up", max_tokens=4)
    cont.generate("warm up", max_tokens=4)
    work = workload(args.requests, args.min_tokens, args.max_tokens)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    best = best_of({"static": static, "continuous": cont}, work, args.repeats)
    s, c = best["static"], best["continuous"]
    lines = [*header_lines(args, f"{static.device} ({static.model.dtype})", uptime),
             f"generated tokens per request: {c['lengths']}"]
    same, compared = compare_lines(("static", s), ("continuous", c), steps=True)
    report = "\n".join(lines + compared)
    print(report)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(report + "\n\n")
    if args.requests - same > args.allow_mismatch:
        sys.exit(f"greedy texts differ between the modes: {args.requests - same} of {args.requests}")


def header_lines(args: argparse.Namespace, where: str, uptime: str, setup: str = "") -> list[str]:
    """The report's first lines: the command, the model and workload, the load before and after."""
    import torch

    return [
        "$ " + " ".join([os.path.basename(sys.executable), *sys.argv]),
        f"model {args.model} on {where}, torch threads {torch.get_num_threads()}, {args.requests} concurrent "
        f"requests, max_tokens {args.min_tokens}..{args.max_tokens}, max_batch_size {args.max_batch_size}, "
        f"{setup}best of {args.repeats} alternating rounds",
        f"uptime before: {uptime}",
        f"uptime after:  {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}",
    ]


def best_of(models: dict[str, Any], work: list[tuple[str, int]], repeats: int) -> dict[str, dict[str, Any]]:
    """Each model's fastest (wall) of ``repeats`` rounds of ``work``, the models alternating in
    every round so that load drifts hit all of them (progress on stderr)."""
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for name, model in models.items():
            r = run_mode(model, work)
            print(f"  {name}: wall {r['wall']:.1f} s, cpu {r['cpu']:.1f} s, {r['tokens']} tokens", file=sys.stderr,
                  flush=True)
            if name not in best or r["wall"] < best[name]["wall"]:
                best[name] = r
    return best


def compare_lines(base: tuple[str, dict[str, Any]], new: tuple[str, dict[str, Any]], *,
                  steps: bool = False) -> tuple[int, list[str]]:
    """How many greedy texts are the same, and the report lines: each mode's time and rate, the
    ratio ``new/base``, and where every differing reply parts."""
    (bn, b), (nn, n) = base, new
    width = max(len(bn), len(nn))
    lines = []
    for name, r in (base, new):
        extra = f"  steps {r['steps']}  batches {r['batches']}" if steps else ""
        lines.append(f"{name:<{width}} wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  tokens {r['tokens']:5d}  "
                     f"{r['tokens'] / r['wall']:6.1f} tok/s (wall)  {r['tokens'] / r['cpu']:6.1f} tok/cpu-s{extra}")
    same = sum(x == y for x, y in zip(b["texts"], n["texts"]))
    lines.append(f"{nn}/{bn}: {(n['tokens'] / n['wall']) / (b['tokens'] / b['wall']):.2f}x tok/s (wall), "
                 f"{(n['tokens'] / n['cpu']) / (b['tokens'] / b['cpu']):.2f}x tok/cpu-s; "
                 f"same greedy text: {same}/{len(b['texts'])}")
    for i, (x, y) in enumerate(zip(b["gens"], n["gens"])):
        if x.text != y.text:
            lines.append(f"  request {i}: {_divergence(x, y, (bn, nn))}")
    return same, lines


def _divergence(a: Any, b: Any, names: tuple[str, str] = ("static", "continuous")) -> str:
    """Where two greedy replies part: the first differing token and how close its top two
    choices were in each mode (a near tie flips under batching noise in low precision)."""
    k = next((i for i, (x, y) in enumerate(zip(a.tokens, b.tokens)) if x.token_id != y.token_id),
             min(len(a.tokens), len(b.tokens)))
    if k >= min(len(a.tokens), len(b.tokens)):
        return f"same tokens for {k}, then one reply ends"

    def gap(t: Any) -> str:
        tops = [x.logprob for x in t.top_logprobs]
        return f"{tops[0] - tops[1]:.3f}" if len(tops) > 1 else "?"

    return (f"first different token at {k} of {len(a.tokens)}; top-1 minus top-2 logprob there: "
            f"{names[0]} {gap(a.tokens[k])}, {names[1]} {gap(b.tokens[k])}")


if __name__ == "__main__":
    main()
