"""Streaming: time to the first token vs the whole reply, for ``ChatLogprobModel.stream``.

For each prompt, one ``stream()`` call is timed: when the first content chunk arrives (TTFT),
and when the last chunk arrives (total). In the same run, the reply's prefill and per-token
decode times are measured with plain ``generate`` calls (``max_tokens=1`` gives prefill + one
token), so the expectation "first token after about prefill + one decode step, not after the
whole reply" is checked as a ratio within the run, not against a fixed number.

Usage: ``python benchmarks/stream.py [--model hf:default] [--max-tokens 64] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [
    "Write a short poem about the sea.",
    "Explain what a prime number is.",
    "Give three tips for learning to cook.",
]


def timed_stream(chat: Any, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """``(seconds to the first content chunk, seconds to the end, chunks)`` of one stream."""
    start = time.perf_counter()
    first = None
    n = 0
    for chunk in chat.stream(prompt, max_tokens=max_tokens):
        n += 1
        if first is None and chunk.content:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (first if first is not None else total), total, n


def timed_generate(chat: Any, prompt: str, max_tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    msg = chat.invoke(prompt, max_tokens=max_tokens)
    return time.perf_counter() - start, msg.usage_metadata["output_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:default")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from adapters.specs import resolve_model
    from sc_chains.chat_model import ChatLogprobModel

    adapter = resolve_model(args.model, kv_reuse=False)  # no prefix reuse: every call pays its prefill
    chat = ChatLogprobModel(adapter, max_tokens=args.max_tokens)
    chat.invoke("warm up", max_tokens=2)
    rows = []
    for prompt in PROMPTS:
        for _ in range(args.repeats):
            one, _ = timed_generate(chat, prompt, 1)  # prefill + the first token
            whole, tokens = timed_generate(chat, prompt, args.max_tokens)
            ttft, total, chunks = timed_stream(chat, prompt, args.max_tokens)
            per_token = (whole - one) / max(tokens - 1, 1)
            rows.append({"prompt": prompt[:30], "ttft": ttft, "total": total, "chunks": chunks,
                         "prefill_plus_1": one, "per_token": per_token, "tokens": tokens})  # fmt: skip
    print(f"model {adapter.name}, max_tokens {args.max_tokens}, {args.repeats} repeats per prompt")
    print(f"{'prompt':32} {'TTFT s':>8} {'total s':>8} {'TTFT/total':>10} {'prefill+1 s':>12} {'decode/tok s':>12} {'chunks':>6}")
    for r in rows:
        print(f"{r['prompt']:32} {r['ttft']:8.3f} {r['total']:8.3f} {r['ttft'] / r['total']:10.3f} "
              f"{r['prefill_plus_1']:12.3f} {r['per_token']:12.4f} {r['chunks']:6d}")  # fmt: skip
    ttft = statistics.median(r["ttft"] for r in rows)
    total = statistics.median(r["total"] for r in rows)
    expect = statistics.median(r["prefill_plus_1"] for r in rows)
    print(f"median TTFT {ttft:.3f} s, median total {total:.3f} s (TTFT/total {ttft / total:.3f}); "
          f"median prefill + one token by generate(max_tokens=1): {expect:.3f} s (TTFT/that {ttft / expect:.2f})")


if __name__ == "__main__":
    main()
