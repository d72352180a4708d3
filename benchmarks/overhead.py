"""The middleware's own overhead per model call, against a bare create_agent on the same fake model.

Each agent answers the same question in one model call per run (the tool node's thread pool
would add milliseconds of scheduling noise on a busy machine; tool-call turns pass through the
middleware untouched). Two baselines: the bare agent, and the bare agent with LangChain's own
``ModelRetryMiddleware`` (no failures), i.e. the price LangChain itself charges for any
``wrap_model_call`` middleware (a traced wrapper span per call). The middleware are set up so no
correction fires (LECO finds no step to cut in a confident answer,
the critic is a verifier that approves, S2A's rewriter is a scripted fake), so the difference to
the bare agent is the middleware machinery: extra graph nodes, hooks, logprob parsing, step
scoring, ledgers, cost accounting. S2A also makes one (instant, scripted) rewrite call per run.

Run: ``.venv/bin/python benchmarks/overhead.py [--runs 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRetryMiddleware

from sc_chains.testing import FakeLogprobChatModel
from sc_chains.middleware import CritiqueReviseMiddleware, LecoMiddleware, S2AMiddleware

QUESTION = {"messages": [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many?"}]}
ANSWER = "3 + 4 = 7, so the answer is 7."
REWRITE = (
    "Unbiased text context (includes all content except user's bias): Tom has 3 apples and buys 4 more.\n"
    "Question/Query (does not include user bias/preference): How many?"
)


def _model() -> FakeLogprobChatModel:
    return FakeLogprobChatModel(default=ANSWER)


def _approve(question: str, answer: str, reference: str | None) -> bool:
    return True


def _agents() -> dict[str, Any]:
    def s2a() -> S2AMiddleware:
        return S2AMiddleware(FakeLogprobChatModel(default=REWRITE))

    def leco() -> LecoMiddleware:
        return LecoMiddleware()

    def critique() -> CritiqueReviseMiddleware:
        return CritiqueReviseMiddleware(critic=_approve)

    def retry(i: int) -> Callable[[], Any]:  # distinct names: three instances coexist
        return lambda: type(f"ModelRetry{i}", (ModelRetryMiddleware,), {})(max_retries=1)

    setups: dict[str, list[Callable[[], Any]]] = {
        "bare": [],
        "ModelRetry (builtin)": [lambda: ModelRetryMiddleware(max_retries=1)],
        "3 x ModelRetry": [retry(1), retry(2), retry(3)],
        "S2A": [s2a],
        "LECO": [leco],
        "critique (hidden)": [critique],
        "all three": [s2a, critique, leco],
    }
    return {name: create_agent(_model(), middleware=[f() for f in fs]) for name, fs in setups.items()}


def _round_robin(agents: dict[str, Any], runs: int, clock: Callable[[], float] = time.perf_counter
                 ) -> dict[str, tuple[float, float]]:
    """Median sync and async ms per run, the agents interleaved so machine load hits all alike
    (``clock``: wall time, or the process's CPU time, which other processes barely disturb)."""
    names = list(agents)
    sync: dict[str, list[float]] = {n: [] for n in names}
    asyn: dict[str, list[float]] = {n: [] for n in names}

    async def one(agent: Any) -> float:
        t0 = clock()
        await agent.ainvoke(QUESTION)
        return clock() - t0

    async def loop() -> None:
        for i in range(runs + max(3, runs // 10)):
            for n in names:
                t0 = clock()
                agents[n].invoke(QUESTION)
                dt = clock() - t0
                adt = await one(agents[n])
                if i >= max(3, runs // 10):  # warm-up runs are not counted
                    sync[n].append(dt)
                    asyn[n].append(adt)

    asyncio.run(loop())
    return {n: (statistics.median(sync[n]) * 1000, statistics.median(asyn[n]) * 1000) for n in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: perf_counter; cpu: process_time (steadier on a shared machine)")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    agents = _agents()
    model_calls = 1
    for name, agent in agents.items():
        out = agent.invoke(QUESTION)
        assert out["messages"][-1].content == ANSWER, (name, out["messages"][-1].content)
    timed = _round_robin(agents, args.runs, clock)
    rows = [(name, *timed[name]) for name in agents]
    base_s, base_a = rows[0][1], rows[0][2]
    refs = {1: (rows[1][1], rows[1][2]), 3: (rows[2][1], rows[2][2])}
    rw = FakeLogprobChatModel(default=REWRITE)
    t0 = clock()
    for _ in range(args.runs):
        rw.invoke(QUESTION["messages"][0]["content"])
    rw_ms = (clock() - t0) / args.runs * 1000  # the same clock as the table
    print(f"median over {args.runs} runs ({args.clock} clock); {model_calls} agent model call per run\n")
    head = (
        f"{'agent':<22}{'sync ms':>9}{'async ms':>10}{'x bare':>8}"
        f"{'+ms/call vs bare':>18}{'(async)':>9}{'+ms/call vs builtin':>21}{'(async)':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, s, a in rows:
        ref_s, ref_a = refs[3 if name.startswith(("all three", "3 x")) else 1]
        print(
            f"{name:<22}{s:>9.2f}{a:>10.2f}{s / base_s:>8.2f}"
            f"{(s - base_s) / model_calls:>18.2f}{(a - base_a) / model_calls:>9.2f}"
            f"{(s - ref_s) / model_calls:>21.2f}{(a - ref_a) / model_calls:>9.2f}"
        )
    s3, a3 = timed["all three"]
    print(f"\nS2A's rows include its rewrite call: one bare fake chat-model invoke takes {rw_ms:.2f} ms (sync, {args.clock} clock).")
    print("The builtin baseline has as many wrap_model_call hooks as the row (LangChain traces each hook:")
    print("a langsmith span, two thread hops under ainvoke): 'all three' and '3 x' against 3 x ModelRetry.")
    print(f"all three less S2A's rewrite call: +{s3 - base_s - rw_ms:.2f} ms sync vs bare, "
          f"+{s3 - refs[3][0] - rw_ms:.2f} sync / +{a3 - refs[3][1] - rw_ms:.2f} async vs 3 x ModelRetry")
    print(f"all three, async, against one ModelRetry: +{a3 - refs[1][1]:.2f} ms "
          f"({a3 / refs[1][1]:.2f}x); against 3 x ModelRetry: +{a3 - refs[3][1]:.2f} ms ({a3 / refs[3][1]:.2f}x)")


if __name__ == "__main__":
    main()
