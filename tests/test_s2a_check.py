"""The S2A rewrite check: a rewrite may drop opinions and distractors, never the user's
instructions, and may not add facts; a failing one is not used, visibly (graph and middleware)."""

from __future__ import annotations

from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver

from adapters.fake import FakeLogprobModel
from graphs.s2a import create_s2a_graph
from graphs.s2a.check import added_numbers, check_rewrite, dropped_instructions, instructions
from sc_chains.middleware import S2AMiddleware
from sc_chains.testing import FakeLogprobChatModel

ASK = "Tom has 3 apples and buys 4 more. I think it's 9. Use the calculator tool. How many apples does he have?"
CTX = "Unbiased text context (includes all content except user's bias): "
QRY = "\nQuestion/Query (does not include user bias/preference): "
KEEPS = CTX + "Tom has 3 apples and buys 4 more. Use the calculator tool." + QRY + "How many apples does he have?"
DROPS = CTX + "Tom has 3 apples and buys 4 more." + QRY + "How many apples does he have?"
ADDS = CTX + "Tom has 3 apples and buys 4 more, 7 in all. Use the calculator tool." + QRY + "How many apples?"


def test_instructions_and_numbers_on_literals() -> None:
    assert instructions(ASK) == ["Use the calculator tool."]
    assert instructions("Please answer in French. What is 2 + 2?") == ["Please answer in French."]
    assert instructions("Do you know what 2 + 2 is?") == []  # a question, not an instruction
    assert dropped_instructions(ASK, "Tom has 3 apples and buys 4 more. How many?") == ["Use the calculator tool."]
    assert added_numbers("It costs $1,200.50 for 3.", "3 items at 1200.5 each, 3600 in all") == ["3600"]
    assert check_rewrite(ASK, KEEPS) is None


def test_the_graph_does_not_use_a_rewrite_that_fails_the_check() -> None:
    for rewrite, why in ((DROPS, "drops the instruction 'Use the calculator tool.'"), (ADDS, "numbers 7")):
        fake = FakeLogprobModel([rewrite, "The answer is 7."])
        out = create_s2a_graph(fake).invoke({"question": ASK})
        assert out["parse_status"] == "fallback_check" and why in out["parse_reason"]
        assert out["removed"] == [] and ASK in fake.calls[1].messages[-1]["content"]
    out = create_s2a_graph(FakeLogprobModel([DROPS, "x"]), check=False).invoke({"question": ASK})
    assert out["parse_status"] == "ok"  # the check can be turned off (e.g. to reproduce the paper)


def test_the_middleware_falls_back_visibly_and_the_thread_keeps_the_users_words() -> None:
    rewriter = FakeLogprobChatModel(replies=[DROPS])
    model = FakeLogprobChatModel(replies=["The answer is 7."])
    agent = create_agent(model, middleware=[S2AMiddleware(rewriter)], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "c"}}
    events = [item for mode, item in agent.stream({"messages": [{"role": "user", "content": ASK}]}, cfg,
                                                  stream_mode=["custom", "values"]) if mode == "custom"]
    assert events[0]["status"] == "fallback_check" and "Use the calculator tool." in events[0]["reason"]
    assert "Use the calculator tool." in model.calls[0][-1].text  # the model saw the original
    assert agent.get_state(cfg).values["messages"][0].content == ASK
