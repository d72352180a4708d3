"""Datagen throughput: records per minute at concurrency 1, 2, 4, 8, and Ray vs local.

Starts ``python -m llama_cpp.server`` on the embedded SmolLM2 GGUF (127.0.0.1, as the tests do),
then runs the same ``score`` job (SCoRe two attempts = 2 calls per record, GSM8K problems) with
the local thread backend at each concurrency, and with the Ray backend (a local cluster, same
concurrency as ``--ray-concurrency``). Each run writes into a fresh folder. Ratios are against
local concurrency 1 measured in the same run; the levels run in alternating order over
``--repeats`` rounds, so a change in machine load affects each level alike. The Ray row times
the job only (the cluster is started before timing; its start-up is printed below the table).

Run: ``.venv/bin/python benchmarks/datagen.py [--n 4] [--max-tokens 16] [--threads 2]``
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


from sc_chains.datagen import ScoreConfig, ScoreGenerator, run_datagen
from sc_chains.datagen.common import ModelRef
from sc_chains.datasets import load_dataset
from sc_chains.testing import LLAMA_MODEL_NAME, llama_server


def _merge(manifests: list[dict]) -> dict:
    """Sum the run numbers (ok, failed, seconds) and tokens of repeated runs."""
    out = {"run": {k: sum(m["run"][k] for m in manifests) for k in ("ok", "failed", "seconds")},
           "tokens": {k: sum(m["tokens"][k] for m in manifests) for k in ("prompt_tokens", "completion_tokens")}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4, help="problems per run (default: %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=16, help="tokens per attempt (default: %(default)s)")
    ap.add_argument("--threads", default="2", help="llama.cpp threads (default: %(default)s)")
    ap.add_argument("--levels", default="1,2,4,8", help="local concurrencies (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds over the levels, alternating order")
    ap.add_argument("--ray-concurrency", type=int, default=4, help="0 skips the Ray row (default: %(default)s)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `timeout` still stops the server

    tmp = Path(tempfile.mkdtemp(prefix="bench_datagen_"))
    with llama_server(threads=args.threads, log_path=tmp / "server.log") as base:
        problems = load_dataset("gsm8k", limit=args.n)
        gen = ScoreGenerator(ModelRef(f"openai:{LLAMA_MODEL_NAME}", base_url=base),
                             ScoreConfig(max_tokens=args.max_tokens))
        run_datagen(gen, problems[:1], tmp / "warmup", dataset="gsm8k", progress=False)  # load + first call
        levels = [int(x) for x in args.levels.split(",")]
        runs: dict[int, list[dict]] = {c: [] for c in levels}
        for r in range(args.repeats):  # forward, then backward: a load change hits every level alike
            for c in levels if r % 2 == 0 else levels[::-1]:
                runs[c].append(run_datagen(gen, problems, tmp / f"local-c{c}-r{r}", dataset="gsm8k",
                                           concurrency=c, progress=False))
        rows = [(f"local c={c}", _merge(runs[c])) for c in levels]
        if args.ray_concurrency:
            from sc_chains.datagen.ray_backend import ray_session

            t = time.perf_counter()
            with ray_session():
                startup = time.perf_counter() - t
                c = args.ray_concurrency
                m = run_datagen(gen, problems, tmp / f"ray-c{c}", dataset="gsm8k", concurrency=c,
                                backend="ray", progress=False)
                rows.append((f"ray   c={c}", m))

    base_rate = None
    print(f"\ndatagen score: {args.n} GSM8K records x 2 calls x {args.repeats} rounds (Ray: 1), max_tokens {args.max_tokens}, "
          f"llama.cpp SmolLM2-135M ({args.threads} threads), {os.cpu_count()} CPUs")
    print(f"{'backend':<12} {'ok':>3} {'fail':>4} {'seconds':>8} {'records/min':>12} {'vs local c=1':>13} {'tokens':>7}")
    for name, m in rows:
        secs = m["run"]["seconds"]
        rate = m["run"]["ok"] / secs * 60 if secs else 0.0
        base_rate = base_rate or rate
        tok = m["tokens"]["prompt_tokens"] + m["tokens"]["completion_tokens"]
        print(f"{name:<12} {m['run']['ok']:>3} {m['run']['failed']:>4} {secs:>8.1f} {rate:>12.1f} "
              f"{rate / base_rate:>12.2f}x {tok:>7}")
    if args.ray_concurrency:
        print(f"(Ray local cluster start-up, not in the table: {startup:.1f}s)")


if __name__ == "__main__":
    main()
