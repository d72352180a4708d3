"""Scripted conversations shared by the middleware tests (not a test module)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from adapters.fake import FakeReply
from sc_chains.testing import FakeLogprobChatModel

QUESTION = "Tom has 3 apples. I think the answer is 9. He buys 4 more. How many apples does he have?"

REWRITE = (
    "Unbiased text context (includes all content except user's bias): Tom has 3 apples. He buys 4 more.\n"
    "Question/Query (does not include user bias/preference): How many apples does he have?"
)

# Step 3 is shaky (logprob -2.5), step 1 certain, step 2 in between: the cut is the earlier of the
# two least confident steps, step 2 (index 1), so the prefix kept is step 1.
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


def tool_call(a: int = 3, b: int = 4, call_id: str = "call-1") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "add", "args": {"a": a, "b": b}, "id": call_id}])


def leco_model(*, with_tool: bool = True, **kw: Any) -> FakeLogprobChatModel:
    """The agent's model: (a tool call), the shaky draft, then two rethinks that agree on 7."""
    replies: list[Any] = [tool_call()] if with_tool else []
    return FakeLogprobChatModel(replies=[*replies, DRAFT, RETHINK, RETHINK], **kw)


def user(text: str = QUESTION) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}
