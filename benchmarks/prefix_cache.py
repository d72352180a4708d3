"""Multi-sequence prefix KV cache vs one kept sequence: concurrent two-turn conversations.

``--requests`` GSM-IC problems (shipped with the package) are drafted concurrently (one
continuous batch), then each conversation's second turn (the draft as the assistant message and
a review request, as a critique's revision sends it) is asked concurrently. Two models share the
loaded weights: ``prefix_cache_mb=0`` (one kept sequence: the previous behaviour) and the
default budget (every finished row's cache is kept). Reported per mode for the second turn:
wall time, CPU time of this process, prompt tokens, prompt tokens taken from the cache, and the
ratios (modes alternate, ``--repeats`` rounds, best round each). The greedy second-turn texts
must match between the modes (exit non-zero otherwise, unless ``--allow-mismatch`` N).

Usage: ``python benchmarks/prefix_cache.py [--model hf:default] [--dtype float32] [--requests 8]
[--threads 1] [--repeats 2] [--out benchmarks/results/prefix_cache.txt]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REVIEW = "Review your solution step by step. If you find a mistake, fix it. End with \"The answer is X.\""


def _turns(model: Any, problems: list[Any], draft_tokens: int) -> list[Any]:
    drafts = model.generate_batch([model.request(p.question, max_tokens=draft_tokens) for p in problems])
    return [model.request([{"role": "user", "content": p.question}, {"role": "assistant", "content": d.text},
                           {"role": "user", "content": REVIEW}], max_tokens=draft_tokens // 2)
            for p, d in zip(problems, drafts)]


def _round(model: Any, problems: list[Any], draft_tokens: int) -> dict[str, Any]:
    model.clear_cache()
    second = _turns(model, problems, draft_tokens)
    wall, cpu = time.perf_counter(), time.process_time()
    gens = model.generate_batch(second)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "texts": [g.text for g in gens],
            "prompt": sum(g.usage.prompt_tokens for g in gens), "cached": sum(g.usage.cached_tokens for g in gens)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="hf:default")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--draft-tokens", type=int, default=192)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--allow-mismatch", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from adapters.hf import HFModel
    from adapters.specs import resolve_model
    from sc_chains.datasets import load_dataset

    base = resolve_model(a.model, dtype=a.dtype, max_batch_size=a.requests)
    one = HFModel(base.model, base.tokenizer, name="one-sequence", max_batch_size=a.requests, prefix_cache_mb=0)
    problems = load_dataset("gsm-ic", limit=a.requests, seed=0)
    modes = {"one kept sequence": one, "multi-sequence": base}
    best: dict[str, dict[str, Any]] = {}
    for _ in range(a.repeats):
        for name, model in modes.items():
            r = _round(model, problems, a.draft_tokens)
            if name not in best or r["cpu"] < best[name]["cpu"]:
                best[name] = r
    lines = [f"$ python benchmarks/prefix_cache.py {' '.join(argv if argv is not None else sys.argv[1:])}",
             f"model {a.model} ({a.dtype}), torch threads {a.threads}, {a.requests} concurrent two-turn "
             f"conversations (GSM-IC), draft max_tokens {a.draft_tokens}, best of {a.repeats} alternating rounds",
             f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}"]
    for name, r in best.items():
        lines.append(f"{name:18s} second turn: wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  prompt tokens "
                     f"{r['prompt']}  from the cache {r['cached']} ({r['cached'] / max(1, r['prompt']):.0%})")
    o, m = best["one kept sequence"], best["multi-sequence"]
    same = sum(x == y for x, y in zip(o["texts"], m["texts"]))
    lines.append(f"one/multi: {o['wall'] / m['wall']:.2f}x wall, {o['cpu'] / m['cpu']:.2f}x cpu; "
                 f"same greedy text: {same}/{len(problems)}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n")
    return 0 if len(problems) - same <= a.allow_mismatch else 1


if __name__ == "__main__":
    raise SystemExit(main())
