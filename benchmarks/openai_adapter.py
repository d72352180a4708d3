"""Benchmark (d): OpenAIModel vs the raw ``openai`` client against a local llama.cpp server.

Starts ``python -m llama_cpp.server`` on the embedded SmolLM2 GGUF, then sends the same short
greedy chat requests with logprobs through both clients, interleaved (A, B, A, B, ...) so load
drift hits both alike. Prints per-request latency (median, mean, p90) and the ratio
adapter / raw (target <= 1.05), plus the client-side cost of turning one response into a
``Generation`` vs the SDK's pydantic parse.

    .venv/bin/python benchmarks/openai_adapter.py --n 20 --max-tokens 16 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

PROMPTS = [
    "Say hello.", "Name a fruit.", "What is 2+3?", "Give one word for happy.", "Name a color.",
    "What day follows Monday?", "Say goodbye.", "Name an animal.", "What is 10-4?", "Name a planet.",
]  # fmt: skip


def stats(xs: list[float]) -> tuple[float, float, float]:
    xs = sorted(xs)
    return statistics.median(xs), statistics.fmean(xs), xs[int(0.9 * (len(xs) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="requests per client per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--top-logprobs", type=int, default=2)
    ap.add_argument("--threads", default=os.environ.get("SC_CHAINS_LLAMA_THREADS", "1"))
    args = ap.parse_args()

    import openai

    from adapters.openai_compat import OpenAIModel

    from sc_chains.testing import llama_server

    with llama_server(threads=args.threads) as base:
        raw = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
        ours = OpenAIModel("smollm2", base_url=base, api_key="x", max_retries=0)
        kw = {"max_tokens": args.max_tokens, "temperature": 0.0}

        def call_raw(p: str) -> str:
            r = raw.chat.completions.create(
                model="smollm2", messages=[{"role": "user", "content": p}], logprobs=True,
                top_logprobs=args.top_logprobs, **kw,
            )  # fmt: skip
            assert r.choices[0].logprobs is not None
            return r.choices[0].message.content or ""

        def call_ours(p: str) -> str:
            return ours.generate(p, top_logprobs=args.top_logprobs, **kw).text

        for p in PROMPTS[:2]:  # warm-up: connection pools, server caches
            call_raw(p), call_ours(p)
        t_raw: list[float] = []
        t_ours: list[float] = []
        mismatches = 0
        for r in range(args.rounds):
            for i in range(args.n):
                p = PROMPTS[i % len(PROMPTS)]
                order = [(call_raw, t_raw), (call_ours, t_ours)]
                if (i + r) % 2:
                    order.reverse()
                texts = []
                for fn, sink in order:
                    t0 = time.perf_counter()
                    texts.append(fn(p))
                    sink.append(time.perf_counter() - t0)
                mismatches += texts[0] != texts[1]

        # client-side cost only: one captured response, parsed many times
        req = ours.request(PROMPTS[0], top_logprobs=args.top_logprobs, **kw)
        path, payload = ours._payload(req)
        body = ours._client.post(path, json=payload).json()
        from openai.types.chat import ChatCompletion

        reps = 2000
        t0 = time.perf_counter()
        for _ in range(reps):
            ours._parse(body, req)
        parse_ours = (time.perf_counter() - t0) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            ChatCompletion.model_validate(body)
        parse_sdk = (time.perf_counter() - t0) / reps

    rm, ra, r90 = stats(t_raw)
    om, oa, o90 = stats(t_ours)
    n = len(t_raw)
    print(f"\nOpenAIModel vs raw openai client: {n} requests each (interleaved), llama.cpp SmolLM2, "
          f"max_tokens={args.max_tokens}, top_logprobs={args.top_logprobs}, greedy")  # fmt: skip
    print(f"{'client':<26}{'median ms':>11}{'mean ms':>10}{'p90 ms':>9}")
    print(f"{'openai.OpenAI (baseline)':<26}{rm * 1e3:>11.1f}{ra * 1e3:>10.1f}{r90 * 1e3:>9.1f}")
    print(f"{'OpenAIModel':<26}{om * 1e3:>11.1f}{oa * 1e3:>10.1f}{o90 * 1e3:>9.1f}")
    print(f"{'ratio ours/raw':<26}{om / rm:>11.3f}{oa / ra:>10.3f}{o90 / r90:>9.3f}   (target <= 1.05)")
    print(f"\nresponse -> object, client side only ({reps} reps): Generation {parse_ours * 1e6:.1f} us, "
          f"SDK ChatCompletion {parse_sdk * 1e6:.1f} us, ratio {parse_ours / parse_sdk:.2f}")  # fmt: skip
    print(f"identical texts: {n - mismatches}/{n}")


if __name__ == "__main__":
    main()
