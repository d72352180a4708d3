"""Load on ``sc-chains serve``: 200 concurrent clients per chain, and the server's own overhead.

For each upstream (the scripted fake, ``hf:tiny-random``) and each chain, in one run:

- **in-process**: the same chain, called directly (``ChainSet.run``: the code the server runs
  behind HTTP) -- sequentially (``--seq`` calls) and with ``--clients`` at once;
- **server**: the same requests over HTTP to a real uvicorn server on 127.0.0.1 (in a thread of
  this process), from ``--clients`` concurrent connections of an ``httpx.AsyncClient``.

Reported: errors (non-200 or exceptions; target 0), p50/p99 latency, requests/s, and the
server's overhead per request = p50(server, one at a time) - p50(in-process, one at a time),
the two interleaved call by call so both see the same machine load (target < 5 ms); and the
same difference in process CPU time (all threads: server, client, model workers), which a busy
machine does not inflate the way it inflates wall time. The sequential pair isolates the
per-request cost (HTTP, JSON, validation, the trace in the response); under 200 concurrent
clients latency is mostly queueing, so the concurrent columns are throughput figures. The client
runs in this process too, so the overhead includes the client's own HTTP work (an upper bound on
the server's share).

On ``hf:tiny-random`` each call makes at most ``--tiny-max-tokens`` tokens, LECO rethinks once and
critique revises once (``TINY_SETTINGS``), and the concurrent in-process pass is off by default:
on a small shared CPU its 200-client passes take minutes per chain.

Run: ``.venv/bin/python benchmarks/serve.py [--clients 200] [--seq 40] [--out benchmarks/results/serve.txt]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from adapters.specs import resolve_model
from sc_chains.server import running_server
from sc_chains.server.app import question_of
from sc_chains.testing import FakeLogprobModel

CHAINS = ["baseline", "s2a", "leco", "critique", "s2a+leco"]
ANSWER = "Step 1: Tom has 3 apples.\nStep 2: 3 + 4 = 7.\nThe answer is 7."
TINY_SETTINGS = {"leco": {"max_rethinks": 1}, "critique": {"max_turns": 1}, "s2a+leco": {"leco": {"max_rethinks": 1}}}
"""On hf:tiny-random (gibberish, so no draft is ever approved) each chain makes at most a few calls."""
MESSAGES = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"}]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


async def _timed(n: int, concurrency: int, one: Callable[[], Awaitable[bool]]) -> dict[str, Any]:
    """Run ``one`` n times, at most ``concurrency`` at once: latencies, errors, requests/s."""
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    errors = 0

    async def run() -> None:
        nonlocal errors
        async with sem:
            t = time.perf_counter()
            try:
                ok = await one()
            except Exception:  # noqa: BLE001 - counted as an error
                ok = False
            lat.append(time.perf_counter() - t)
            errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(n)))
    wall = time.perf_counter() - start
    return {"p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "rps": n / wall, "errors": errors}


async def _bench_chain(chains: Any, url: str, chain: str, body: dict[str, Any],
                       clients: int, seq: int, inproc_concurrent: bool) -> dict[str, Any]:
    """One chain: the interleaved sequential pair on one connection, then the concurrent passes
    (a fresh pool of ``clients`` connections, so an idle pool never slows the sequential pair)."""
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        out = await _sequential(chains, client, chain, body, seq)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:
        inproc, http = _callers(chains, client, chain, body)
        out["con_in"] = (await _timed(clients, clients, inproc) if inproc_concurrent
                         else {"p50": float("nan"), "rps": float("nan"), "errors": 0})
        out["con_http"] = await _timed(clients, clients, http)
    return out


def _callers(chains: Any, client: httpx.AsyncClient, chain: str, body: dict[str, Any]) -> tuple[Any, Any]:
    """``(inproc, http)``: one call of the chain in this process, one request to the server."""
    body = {**body, "sc_chains": (body.get("sc_chains") or {}).get(chain, {})}
    settings = chains.settings(chain, body["sc_chains"], {"max_tokens": body.get("max_tokens")})
    graph = None if chain == "baseline" else chains.graph(chain, settings)
    call = {"max_tokens": body["max_tokens"]} if chain == "baseline" and body.get("max_tokens") else {}

    async def inproc() -> bool:
        r = await chains.run(chain, graph, question_of(MESSAGES), messages=MESSAGES, call=call)
        return bool(r.text)

    async def http() -> bool:
        r = await client.post("/chat/completions", json={**body, "model": chain})
        return r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])

    return inproc, http


async def _sequential(chains: Any, client: httpx.AsyncClient, chain: str, body: dict[str, Any],
                      seq: int) -> dict[str, Any]:
    inproc, http = _callers(chains, client, chain, body)
    await _timed(3, 1, http)  # warm-up: graph cache, connection
    seq_in, seq_http = {"p50": [], "errors": 0, "cpu": 0.0}, {"p50": [], "errors": 0, "cpu": 0.0}
    for _ in range(seq):  # interleaved, so both sides see the same machine load
        for side, fn in ((seq_in, inproc), (seq_http, http)):
            cpu = time.process_time()
            r = await _timed(1, 1, fn)
            side["cpu"] += time.process_time() - cpu
            side["p50"].append(r["p50"])
            side["errors"] += r["errors"]
    for side in (seq_in, seq_http):
        side["p50"] = statistics.median(side["p50"])
    out: dict[str, Any] = {"seq_in": seq_in, "seq_http": seq_http}
    out["overhead_ms"] = (seq_http["p50"] - seq_in["p50"]) * 1e3
    out["cpu_overhead_ms"] = (seq_http["cpu"] - seq_in["cpu"]) / seq * 1e3
    return out


async def _bench_upstream(name: str, model: Any, body: dict[str, Any], clients: int, seq: int,
                          emit: Callable[[str], None], inproc_concurrent: bool = True) -> None:
    with running_server(model) as url:
        from sc_chains.server.chains import ChainSet

        chains = ChainSet(model)
        for chain in CHAINS:
            r = await _bench_chain(chains, url, chain, body, clients, seq, inproc_concurrent)
            c, s = r["con_http"], r["con_in"]
            emit(f"{name:<13} {chain:<9} {c['errors']:>4} {c['p50'] * 1e3:>9.1f} {c['p99'] * 1e3:>9.1f} "
                 f"{c['rps']:>8.1f} | {s['p50'] * 1e3:>9.1f} {s['rps']:>8.1f} | "
                 f"{r['seq_in']['p50'] * 1e3:>8.2f} {r['seq_http']['p50'] * 1e3:>8.2f} {r['overhead_ms']:>8.2f}"
                 f" {r['cpu_overhead_ms']:>8.2f} {r['seq_http']['errors'] + r['seq_in']['errors'] + s['errors']:>4}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200, help="concurrent clients (default 200)")
    ap.add_argument("--seq", type=int, default=40, help="one-at-a-time calls for the overhead (default 40)")
    ap.add_argument("--tiny-max-tokens", type=int, default=4, help="max_tokens per call on hf:tiny-random")
    ap.add_argument("--tiny-clients", type=int, default=None, help="concurrent clients on hf:tiny-random "
                    "(default: --clients)")
    ap.add_argument("--tiny-seq", type=int, default=10, help="sequential calls on hf:tiny-random")
    ap.add_argument("--tiny-inproc-concurrent", action="store_true",
                    help="also run the concurrent in-process pass on hf:tiny-random (doubles its time)")
    ap.add_argument("--upstreams", default="fake,tiny-random")
    ap.add_argument("--out", default=None, help="also write the table here")
    args = ap.parse_args()
    lines: list[str] = []

    def emit(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    emit(f"sc-chains serve load benchmark: {args.clients} concurrent clients per chain, {args.seq} sequential "
         f"calls for the overhead; python {platform.python_version()}, {platform.machine()}")
    emit("concurrent columns: HTTP errors, p50/p99 latency (ms), requests/s | in-process p50 (ms), requests/s")
    emit("sequential columns: in-process p50, HTTP p50, overhead = HTTP p50 - in-process p50 (ms), CPU overhead "
         "= process CPU ms per HTTP request - per in-process call (server + client, all threads); other errors")
    emit(f"machine load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    emit(f"{'upstream':<13} {'chain':<9} {'err':>4} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8} | "
         f"{'in p50':>9} {'in r/s':>8} | {'seq in':>8} {'seq http':>8} {'ovh ms':>8} {'cpu ovh':>8} {'err':>4}")
    for up in args.upstreams.split(","):
        if up == "fake":
            model, body = FakeLogprobModel(default=ANSWER), {"messages": MESSAGES}
            asyncio.run(_bench_upstream(up, model, body, args.clients, args.seq, emit))
        else:
            model = resolve_model(f"hf:{up}")
            body = {"messages": MESSAGES, "max_tokens": args.tiny_max_tokens, "sc_chains": TINY_SETTINGS}
            emit(f"{up}: max_tokens={args.tiny_max_tokens} per call, chain settings {TINY_SETTINGS}")
            asyncio.run(_bench_upstream(up, model, body, args.tiny_clients or args.clients, args.tiny_seq, emit,
                                        args.tiny_inproc_concurrent))
        stats = getattr(model, "coalesce_stats", None)
        if stats is not None:
            emit(f"{up}: coalesced {stats.requests} model calls into {stats.batches} batches "
                 f"(mean {stats.mean_batch:.1f}, largest {stats.largest})")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
