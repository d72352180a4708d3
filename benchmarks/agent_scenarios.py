"""Issue 16's "Done when" table: the middleware in a create_agent app with two tools, on the fakes.

For each scenario (bare agent; each middleware alone; all three) and each way of running it
(invoke, ainvoke, stream/astream in ``stream_mode="messages"``, ``astream_events``) the app answers
one question that needs a tool call, then a corrected answer. Printed per row:

- calls: model calls counted by a LangChain callback handler (every chat-model run, nested or
  streamed), and the calls the thread records: one per AIMessage of the request plus the extra
  calls itemised in ``response_metadata["sc_chains"][<middleware>]["calls"]`` (must match);
- tokens: prompt + completion tokens the callback saw, and what the thread's AIMessages'
  ``usage_metadata`` add up to (must match: the final answer carries the extra calls' tokens);
- chunks: ``stream_mode="messages"`` chunks of the final answer (token by token: > 1; drafts,
  critiques and rewrites never appear: ``leak`` counts chunks of any other text);
- ms: the run's CPU time (``time.process_time``, all threads; steadier than wall time on a shared
  machine; median of ``--runs``), and the ratio to the bare agent in the same mode.

Run: ``python benchmarks/agent_scenarios.py [--runs 5]`` (results/agent_scenarios.txt holds one).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from adapters.fake import FakeReply
from sc_chains.middleware import CritiqueReviseMiddleware, LecoMiddleware, S2AMiddleware
from sc_chains.testing import FakeLogprobChatModel

QUESTION = "Tom has 3 apples. I think the answer is 9. He buys 4 more. How many apples does he have?"
REWRITE = (
    "Unbiased text context (includes all content except user's bias): Tom has 3 apples. He buys 4 more.\n"
    "Question/Query (does not include user bias/preference): How many apples does he have?"
)
DRAFT = FakeReply(
    "Step 1: Tom has 3 apples.\nStep 2: He buys 4 more.\nStep 3: 3 + 4 = 8.\nThe answer is 8.",
    overrides={"Step 1: Tom has 3 apples.": -0.001, "3 + 4 = 8.": -2.5},
)
RETHINK = "Step 2: He buys 4 more.\nStep 3: 3 + 4 = 7.\nThe answer is 7."
FINAL = "Step 1: Tom has 3 apples.\n" + RETHINK


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _agent_reply(messages: list[Any]) -> Any:
    """The agent's model: a tool call first, then the shaky draft; LECO's rethink prompt gets the
    rethink, a critique's revision request the corrected answer."""
    if not any(isinstance(m, ToolMessage) for m in messages):
        return AIMessage("", tool_calls=[{"name": "add", "args": {"a": 3, "b": 4}, "id": "call-1"}])
    last = messages[-1]
    if isinstance(last, HumanMessage) and last.additional_kwargs.get("sc_chains"):
        return RETHINK if last.text.rstrip().endswith("Step 2:") else FINAL
    return DRAFT


def _critic_reply(messages: list[Any]) -> str:
    answer = next((m.text for m in reversed(messages) if isinstance(m, AIMessage)), "")
    return "3 + 4 is 7, not 8.\nVerdict: incorrect" if "= 8" in answer else "Right.\nVerdict: correct"


def _middleware(names: tuple[str, ...]) -> list[Any]:
    made = {
        "s2a": lambda: S2AMiddleware(FakeLogprobChatModel(default=REWRITE)),
        "critique": lambda: CritiqueReviseMiddleware(FakeLogprobChatModel(default=_critic_reply)),
        "leco": lambda: LecoMiddleware(),
    }
    return [made[n]() for n in names]


SCENARIOS: dict[str, tuple[str, ...]] = {
    "bare": (), "S2A": ("s2a",), "LECO": ("leco",), "critique": ("critique",),
    "all three": ("s2a", "critique", "leco"),
}
MODES = ("invoke", "ainvoke", "stream messages", "astream messages", "astream_events")


class Counter(BaseCallbackHandler):
    """Counts chat-model runs and the tokens their replies report."""

    def __init__(self) -> None:
        self.calls, self.tokens = 0, 0

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.calls += 1

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        for gen in response.generations[0]:
            um = getattr(getattr(gen, "message", None), "usage_metadata", None) or {}
            self.tokens += int(um.get("input_tokens", 0)) + int(um.get("output_tokens", 0))


def _run(names: tuple[str, ...], mode: str) -> dict[str, Any]:
    agent = create_agent(FakeLogprobChatModel(default=_agent_reply), tools=[add, multiply],
                         middleware=_middleware(names), checkpointer=InMemorySaver())
    counter = Counter()
    cfg = {"configurable": {"thread_id": "t"}, "callbacks": [counter]}
    inp = {"messages": [{"role": "user", "content": QUESTION}]}
    chunks: list[Any] = []

    async def arun() -> None:
        if mode == "ainvoke":
            await agent.ainvoke(inp, cfg)
        elif mode == "astream messages":
            chunks.extend([c async for c, _ in agent.astream(inp, cfg, stream_mode="messages")])
        else:
            async for _ in agent.astream_events(inp, cfg, version="v2"):
                pass

    t0 = time.process_time()
    if mode == "invoke":
        agent.invoke(inp, cfg)
    elif mode == "stream messages":
        chunks.extend(c for c, _ in agent.stream(inp, cfg, stream_mode="messages"))
    else:
        asyncio.run(arun())
    ms = (time.process_time() - t0) * 1000
    ais = [m for m in agent.get_state(cfg).values["messages"] if isinstance(m, AIMessage)]
    recorded = len(ais) + sum(int(v.get("calls", 0)) for m in ais
                              for v in (m.response_metadata.get("sc_chains") or {}).values() if isinstance(v, dict))
    tokens = sum(int((m.usage_metadata or {}).get("input_tokens", 0)) + int((m.usage_metadata or {}).get("output_tokens", 0))
                 for m in ais)
    final = ais[-1]
    texts = [c for c in chunks if c.type in ("ai", "AIMessageChunk") and c.text]
    return {"calls": counter.calls, "recorded": recorded, "tokens": counter.tokens, "recorded_tokens": tokens,
            "answer": final.text, "chunks": sum(1 for c in texts if c.id == final.id),
            "leak": sum(1 for c in texts if c.id != final.id), "ms": ms, "streams": bool(chunks) or "messages" in mode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per row (the median time is shown)")
    args = parser.parse_args()
    head = (f"{'scenario':<11}{'mode':<18}{'calls cb':>9}{'recorded':>9}{'ok':>4}{'tokens cb':>10}{'recorded':>9}"
            f"{'ok':>4}{'chunks':>7}{'leak':>5}{'cpu ms':>8}{'x bare':>7}  answer")
    print(f"create_agent with tools add, multiply on FakeLogprobChatModel; median of {args.runs} runs\n")
    print(head)
    print("-" * len(head))
    bare_ms: dict[str, float] = {}
    ok_all = True
    for scenario, names in SCENARIOS.items():
        for mode in MODES:
            rows = [_run(names, mode) for _ in range(args.runs)]
            r, ms = rows[-1], statistics.median(x["ms"] for x in rows)
            bare_ms.setdefault(mode, ms)
            calls_ok, tok_ok = r["calls"] == r["recorded"], r["tokens"] == r["recorded_tokens"]
            corrects = "leco" in names or "critique" in names  # S2A alone answers the draft
            ok_all &= calls_ok and tok_ok and r["answer"] == (FINAL if corrects else DRAFT.text)
            ok_all &= "messages" not in mode or (r["chunks"] > 1 and r["leak"] == 0)
            chunks = f"{r['chunks']:>7}{r['leak']:>5}" if "messages" in mode else f"{'-':>7}{'-':>5}"
            print(f"{scenario:<11}{mode:<18}{r['calls']:>9}{r['recorded']:>9}{'yes' if calls_ok else 'NO':>4}"
                  f"{r['tokens']:>10}{r['recorded_tokens']:>9}{'yes' if tok_ok else 'NO':>4}{chunks}"
                  f"{ms:>8.1f}{ms / bare_ms[mode]:>7.2f}  {r['answer'].splitlines()[-1]}")
    print(f"\nevery row's calls and tokens match the callback count: {ok_all}")


if __name__ == "__main__":
    main()
