"""With a real model: the share of an agent request's wall time spent outside the model.

A ``create_agent`` app on the embedded SmolLM2 (through ``ChatLogprobModel``), bare and with the
three middleware together. Time inside the model is measured at the adapter (every
``_generate`` call, the only place the model runs); the rest is LangChain, LangGraph and
sc-chains. Run: ``.venv/bin/python benchmarks/overhead_smollm2.py [--runs 3] [--max-tokens 48]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from langchain.agents import create_agent

from adapters.specs import resolve_model
from sc_chains import ChatLogprobModel, CritiqueReviseMiddleware, LecoMiddleware, S2AMiddleware

QUESTION = "Tom has 3 apples and buys 4 more. I think the answer is 8. How many apples does he have?"


class Timed:
    """Wraps an adapter's ``_generate`` and sums the seconds spent in it."""

    def __init__(self, adapter: Any) -> None:
        self.seconds = 0.0
        self.calls = 0
        inner = adapter._generate

        def timed(request: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(request)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        adapter._generate = timed


def _approve(question: str, answer: str, reference: str | None) -> bool:
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="hf:default")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=48)
    args = ap.parse_args()

    adapter = resolve_model(args.model)
    timer = Timed(adapter)
    chat = ChatLogprobModel(model=adapter, max_tokens=args.max_tokens)
    setups = {
        "bare": [],
        "S2A + critique + LECO": [
            S2AMiddleware(chat),
            CritiqueReviseMiddleware(critic=_approve, max_corrections=1),
            LecoMiddleware(max_corrections=1, max_completion_tokens=4 * args.max_tokens),
        ],
    }
    chat.invoke("warm up")
    print(f"model {args.model}, {args.runs} requests each, max_tokens {args.max_tokens}\n")
    print(f"{'agent':<24}{'wall s/req':>12}{'model s/req':>13}{'calls/req':>11}{'outside model':>15}")
    for name, middleware in setups.items():
        agent = create_agent(chat, tools=[], middleware=middleware)
        timer.seconds, timer.calls = 0.0, 0
        start = time.perf_counter()
        for _ in range(args.runs):
            agent.invoke({"messages": [{"role": "user", "content": QUESTION}]})
        wall = time.perf_counter() - start
        outside = wall - timer.seconds
        print(
            f"{name:<24}{wall / args.runs:>12.2f}{timer.seconds / args.runs:>13.2f}"
            f"{timer.calls / args.runs:>11.1f}{100 * outside / wall:>14.2f}%"
        )


if __name__ == "__main__":
    main()
