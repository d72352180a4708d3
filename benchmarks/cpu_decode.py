"""CPU decoding: transformers' stock kernels vs the library's CPU defaults, end to end.

The batching benchmark's workload (mixed prompt lengths, ``max_tokens`` spread over a range, all
greedy, every request at once as ``sc-chains eval --concurrency`` makes them), continuous
batching, on two adapters over the same weights:

- ``stock``: ``attn_implementation="sdpa"`` and ``prepack_weights=False`` (``nn.Linear``), as
  transformers loads a model;
- ``tuned``: the defaults, ``"auto"`` for both (:mod:`adapters.hf.attention`'s decode attention
  and :mod:`adapters.hf.packed`'s pre-reordered weights on CPU).

The two run alternately, ``--repeats`` rounds, best round each; the report gives wall and
CPU time, tokens/s, the ratio measured in the same run, and how many greedy texts agree (in bf16
a near tie can flip; ``--allow-mismatch`` says how many may, else the script exits non-zero).

Usage: ``python benchmarks/cpu_decode.py [--model hf:qwen2.5-coder-0.5b] [--dtype bfloat16]
[--requests 32] [--max-batch-size 32] [--repeats 1] [--threads 1] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from batching import best_of, compare_lines, header_lines, workload  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:default", help="an hf: spec (default: hf:default, SmolLM2-135M)")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16, ...")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--min-tokens", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 on a shared machine)")
    parser.add_argument("--allow-mismatch", type=int, default=0,
                        help="greedy texts that may differ (near ties in low precision)")
    parser.add_argument("--out", default=None, help="also append the report to this file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    import torch

    from adapters.specs import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    opts = {"dtype": args.dtype, "max_batch_size": args.max_batch_size, "coalesce_wait_s": 0.05,
            "kv_reuse": False, "device": "cpu"}  # fmt: skip
    models = {"stock": resolve_model(args.model, attn_implementation="sdpa", prepack_weights=False, **opts),
              "tuned": resolve_model(args.model, attn_implementation="auto", prepack_weights="auto", **opts)}
    for m in models.values():
        m.generate("warm up", max_tokens=4)
    work = workload(args.requests, args.min_tokens, args.max_tokens)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    best = best_of(models, work, args.repeats)
    print(_report(args, models, best, uptime))


def _report(args: argparse.Namespace, models: dict[str, Any], best: dict[str, dict[str, Any]], uptime: str) -> str:
    s, d = best["stock"], best["tuned"]
    lines = header_lines(args, f"cpu ({models['stock'].model.dtype})", uptime, "continuous batching, ")
    lines.insert(2, f"attn_implementation: stock {models['stock'].model.config._attn_implementation}, "
                    f"tuned {models['tuned'].model.config._attn_implementation}; packed linear layers: "
                    f"stock {_packed(models['stock'])}, tuned {_packed(models['tuned'])}")
    same, compared = compare_lines(("stock", s), ("tuned", d))
    report = "\n".join(lines + compared)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(report + "\n\n")
    if args.requests - same > args.allow_mismatch:
        sys.exit(f"{report}\ngreedy texts differ: {args.requests - same} of {args.requests}")
    return report


def _packed(model: Any) -> int:
    from adapters.hf.packed import PackedLinear

    return sum(isinstance(m, PackedLinear) for m in model.model.modules())


if __name__ == "__main__":
    main()
