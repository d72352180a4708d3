"""Benchmark the local HF adapter against its own baselines, measured in the same run.

(a) HFModel.generate vs raw ``model.generate`` (same greedy settings, same tokens): tokens/s.
(b) A LECO-style retry from a kept prefix: prefix KV reuse vs re-encoding prompt + prefix.
(c) A batch of 8 prompts in one padded batch vs one by one: throughput.
(d) 8 concurrent ``agenerate`` calls (asyncio tasks, as ``sc-chains eval --concurrency 8``
    makes them): coalesced into batches (``coalesce=True``, the default) vs run one at a time
    under the model lock (``coalesce=False``): throughput.

Usage: ``python benchmarks/hf_adapter.py [--model hf:default] [--max-tokens 32] [--repeats 3]
[--dtype bfloat16]``.
Each timing is the best of ``--repeats`` runs; baseline and candidate alternate so machine
load drifts hit both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [
    "Write a short poem about the sea.",
    "Explain what a prime number is.",
    "What is the capital of France? Answer in one sentence.",
    "Give three tips for learning to cook.",
    "Describe a cat to someone who has never seen one.",
    "Why is the sky blue?",
    "List the planets of the solar system.",
    "What is 12 times 13? Show your work.",
]


def best_of(repeats: int, *fns: Callable[[], Any]) -> list[float]:
    """Best wall time of each function over ``repeats`` alternating rounds."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def long_prompt() -> str:
    """A few-shot GSM8K prompt (a long shared prefix, as LECO retries see it)."""
    from sc_chains.datasets import load_dataset

    shots = [f"Question: {p.question}\nAnswer: {p.meta['solution']}" for p in load_dataset("gsm8k", limit=4)]
    return "Solve step by step.\n\n" + "\n\n".join(shots) + "\n\nQuestion: A shop sells 7 pens a day. How many in 3 weeks?"


def bench_generate(m: Any, max_tokens: int, repeats: int) -> tuple[float, float, bool]:
    import torch

    req = m.request(PROMPTS[0], max_tokens=max_tokens)
    ids = torch.tensor([m.encode(req)], device=m.device)
    out: dict[str, Any] = {}

    def ours() -> None:
        out["ours"] = m.generate(req)

    def raw() -> None:
        with torch.inference_mode():
            out["raw"] = m.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens, do_sample=False,
                temperature=None, top_p=None, top_k=None, pad_token_id=m.pad_id,
            )  # fmt: skip

    t_raw, t_ours = best_of(repeats, raw, ours)
    raw_ids = out["raw"][0, ids.shape[1] :].tolist()
    ours_ids = out["ours"].usage.completion_tokens
    same = raw_ids[: len(out["ours"].tokens)] == [t.token_id for t in out["ours"].tokens]
    return len(raw_ids) / t_raw, ours_ids / t_ours, same


def bench_retry(reuse: Any, plain: Any, max_tokens: int, repeats: int) -> tuple[float, float, int, int, bool]:
    prompt = long_prompt()
    first = plain.generate(prompt, max_tokens=max_tokens)
    prefix = first.text[: len(first.text) // 2]
    t_plain = t_reuse = float("inf")
    for _ in range(repeats):
        reuse.generate(prompt, max_tokens=max_tokens)  # the attempt whose prefix is kept (untimed)
        start = time.perf_counter()
        kept = reuse.generate(prompt, max_tokens=8, prefill=prefix)
        t_reuse = min(t_reuse, time.perf_counter() - start)
        start = time.perf_counter()
        again = plain.generate(prompt, max_tokens=8, prefill=prefix)
        t_plain = min(t_plain, time.perf_counter() - start)
    return t_plain, t_reuse, kept.usage.prompt_tokens, kept.usage.cached_tokens, kept.text == again.text


def bench_batch(m: Any, max_tokens: int, repeats: int) -> tuple[float, float, int]:
    reqs = [m.request(p, max_tokens=max_tokens) for p in PROMPTS]
    out: dict[str, Any] = {}

    def sequential() -> None:
        out["seq"] = [m.generate(r) for r in reqs]

    def batched() -> None:
        out["batch"] = m.generate_batch(reqs)

    t_seq, t_batch = best_of(repeats, sequential, batched)
    n_seq = sum(g.usage.completion_tokens for g in out["seq"])
    n_batch = sum(g.usage.completion_tokens for g in out["batch"])
    same = sum(a.text == b.text for a, b in zip(out["seq"], out["batch"]))
    return n_seq / t_seq, n_batch / t_batch, same


def bench_coalesce(m: Any, max_tokens: int, repeats: int) -> tuple[float, float, int, float]:
    out: dict[str, Any] = {}

    async def concurrent() -> list[Any]:
        return await asyncio.gather(*(m.agenerate(p, max_tokens=max_tokens) for p in PROMPTS))

    def direct() -> None:
        m.coalesce = False
        out["direct"] = asyncio.run(concurrent())

    def coalesced() -> None:
        m.coalesce = True
        out["coalesced"] = asyncio.run(concurrent())

    before = m.coalesce_stats
    t_direct, t_coalesced = best_of(repeats, direct, coalesced)
    m.coalesce = True
    after = m.coalesce_stats
    mean = (after.requests - before.requests) / max(1, after.batches - before.batches)
    n_direct = sum(g.usage.completion_tokens for g in out["direct"])
    n_coalesced = sum(g.usage.completion_tokens for g in out["coalesced"])
    same = sum(a.text == b.text for a, b in zip(out["direct"], out["coalesced"]))
    return n_direct / t_direct, n_coalesced / t_coalesced, same, mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:default", help="an hf: spec (default: hf:default, SmolLM2-135M)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16, ...")
    args = parser.parse_args()

    import torch

    from adapters.specs import resolve_model

    opts = {"device": args.device, "dtype": args.dtype}
    plain = resolve_model(args.model, kv_reuse=False, max_batch_size=8, **opts)
    reuse = resolve_model(args.model, kv_reuse=True, **opts)
    plain.generate("warm up", max_tokens=4)
    print(f"model {args.model} on {plain.device} ({plain.model.dtype}), torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}, best of {args.repeats}")  # fmt: skip

    raw_tps, ours_tps, same_a = bench_generate(plain, args.max_tokens, args.repeats)
    t_plain, t_reuse, prompt_tokens, cached, same_b = bench_retry(reuse, plain, args.max_tokens, args.repeats)
    seq_tps, batch_tps, same_c = bench_batch(plain, args.max_tokens // 2, args.repeats)
    direct_tps, co_tps, same_d, mean_batch = bench_coalesce(plain, args.max_tokens // 2, args.repeats)

    rows = [
        ("(a) generate tok/s", f"raw model.generate {raw_tps:.1f}", f"HFModel {ours_tps:.1f}",
         f"{ours_tps / raw_tps:.2f}x", f"same tokens: {same_a}"),
        ("(b) retry from kept prefix (s)", f"re-encode {t_plain:.3f}", f"KV reuse {t_reuse:.3f}",
         f"{t_plain / t_reuse:.2f}x faster", f"{cached}/{prompt_tokens} tokens cached, same text: {same_b}"),
        ("(c) 8 prompts tok/s", f"sequential {seq_tps:.1f}", f"batch of 8 {batch_tps:.1f}",
         f"{batch_tps / seq_tps:.2f}x", f"same text: {same_c}/8"),
        ("(d) 8 concurrent agenerate tok/s", f"one at a time {direct_tps:.1f}", f"coalesced {co_tps:.1f}",
         f"{co_tps / direct_tps:.2f}x", f"same text: {same_d}/8, mean batch {mean_batch:.1f}"),
    ]  # fmt: skip
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    header = ("benchmark", "baseline", "HFModel", "ratio", "check")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
