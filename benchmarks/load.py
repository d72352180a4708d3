"""Load held: 200 concurrent ``ainvoke`` through each chain graph and through ``create_agent`` with
all three middleware, on the scripted fakes (no model time, so this measures the machinery).

For each setup: requests, errors, wall time for the whole burst, p50 / p99 latency per request,
requests/s, and the model calls made (the fakes record every call). A second burst with a
checkpointer and one ``thread_id`` per request checks that checkpointed threads hold under the
same load.

Run: ``.venv/bin/python benchmarks/load.py [--n 200] [--out benchmarks/results/load.txt]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver

from sc_chains import (
    CritiqueReviseMiddleware,
    LecoMiddleware,
    S2AMiddleware,
    create_critique_graph,
    create_leco_graph,
    create_s2a_graph,
)
from sc_chains.testing import FakeLogprobChatModel, FakeLogprobModel

QUESTION = "Tom has 3 apples and buys 4 more. I think it's 9. How many apples does he have?"
ANSWER = "Step 1: Tom starts with 3 apples.\nStep 2: 3 + 4 = 7.\nStep 3: The answer is 7."
REWRITE = (
    "Unbiased text context (includes all content except user's bias): Tom has 3 apples and buys 4 more.\n"
    "Question/Query (does not include user bias/preference): How many apples does he have?"
)


def _verifier(question: str, response: str, reference: str | None) -> tuple[bool, str]:
    ok = "7" in response
    return ok, "correct" if ok else "recount the apples"


def _graphs() -> dict[str, tuple[Callable[[Any], Any], Any]]:
    """name -> (factory(checkpointer), the fake it calls)."""
    leco_m = FakeLogprobModel(default=ANSWER)
    s2a_m = FakeLogprobModel(default=REWRITE)
    crit_m = FakeLogprobModel(default=ANSWER)
    return {
        "graph: leco": (lambda cp: create_leco_graph(leco_m, max_rethinks=2, checkpointer=cp), leco_m),
        "graph: s2a": (lambda cp: create_s2a_graph(s2a_m, checkpointer=cp), s2a_m),
        "graph: critique": (lambda cp: create_critique_graph(crit_m, critic=_verifier, checkpointer=cp), crit_m),
    }


def _agent(cp: Any) -> tuple[Any, list[Any]]:
    model = FakeLogprobChatModel(default=ANSWER)
    rewriter = FakeLogprobChatModel(default=REWRITE)
    middleware = [
        S2AMiddleware(rewriter),
        CritiqueReviseMiddleware(critic=_verifier, max_corrections=1),
        LecoMiddleware(max_corrections=1),
    ]
    return create_agent(model, tools=[], middleware=middleware, checkpointer=cp), [model, rewriter]


async def _burst(invoke: Callable[[int], Any], n: int) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            await invoke(i)
        except Exception as exc:  # counted and reported, never hidden
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "n": n, "errors": len(errors), "first_error": errors[0] if errors else "",
        "wall_s": wall, "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], "rps": n / wall,
    }


def _calls(fakes: Any) -> int:
    return sum(len(getattr(f, "calls", ())) for f in (fakes if isinstance(fakes, list) else [fakes]))


async def main_async(n: int) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for threads in (False, True):
        suffix = " (checkpointer, thread each)" if threads else ""
        for name, (factory, fake) in _graphs().items():
            graph = factory(InMemorySaver() if threads else None)
            before = _calls(fake)

            def invoke(i: int, graph: Any = graph) -> Any:
                cfg = {"configurable": {"thread_id": f"t{i}"}} if threads else None
                return graph.ainvoke({"question": f"{QUESTION} (#{i})"}, cfg)

            row = await _burst(invoke, n)
            row["model_calls"] = _calls(fake) - before
            rows.append((name + suffix, row))
        agent, fakes = _agent(InMemorySaver() if threads else None)

        def ainvoke(i: int, agent: Any = agent) -> Any:
            cfg = {"configurable": {"thread_id": f"a{i}"}} if threads else None
            return agent.ainvoke({"messages": [{"role": "user", "content": f"{QUESTION} (#{i})"}]}, cfg)

        row = await _burst(ainvoke, n)
        row["model_calls"] = _calls(fakes)
        rows.append(("create_agent + S2A, critique, LECO" + suffix, row))
    return rows


def render(rows: list[tuple[str, dict[str, Any]]]) -> str:
    head = f"{'setup':64} {'n':>4} {'errors':>6} {'calls':>6} {'wall s':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}"
    lines = [head, "-" * len(head)]
    for name, r in rows:
        lines.append(
            f"{name:64} {r['n']:>4} {r['errors']:>6} {r['model_calls']:>6} {r['wall_s']:>7.2f} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['rps']:>7.1f}"
        )
        if r["first_error"]:
            lines.append(f"    first error: {r['first_error']}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="concurrent requests per burst (default 200)")
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args()
    table = render(asyncio.run(main_async(args.n)))
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
