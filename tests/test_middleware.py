"""Each middleware alone in a real create_agent app with a tool: behaviour, budgets, errors."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from middleware_scripts import (
    FINAL,
    QUESTION,
    REWRITE,
    add,
    leco_model,
    tool_call,
    user,
)

from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from sc_chains.testing import FakeLogprobChatModel
from sc_chains.middleware import (
    Budget,
    LecoMiddleware,
    S2AMiddleware,
)


def _final(out: dict) -> AIMessage:
    return out["messages"][-1]


# -- S2A ---------------------------------------------------------------------------------------
def test_s2a_rewrites_the_user_turn_once_keeps_the_original_private_and_reports_cost() -> None:
    rewriter = FakeLogprobChatModel(replies=[REWRITE])
    model = FakeLogprobChatModel(replies=[tool_call(), "The answer is 7."])
    agent = create_agent(model, tools=[add], middleware=[S2AMiddleware(rewriter)], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "s2a"}}
    out = agent.invoke(user(), cfg)
    seen = model.calls[0][-1].content
    assert "I think the answer is 9" not in seen and "How many apples does he have?" in seen
    assert seen.endswith("Answer in an unbiased way.")
    assert len(rewriter.calls) == 1  # the tool loop's second model call did not rewrite again
    assert "sc_chains_s2a" not in out  # private: not in the agent's output
    priv = agent.get_state(cfg).values["sc_chains_s2a"]
    (record,) = priv["rewrites"].values()
    assert record["original"] == QUESTION and record["status"] == "ok"
    assert record["removed"] == ["I think the answer is 9."]
    final = _final(out)
    cost = final.response_metadata["sc_chains"]["s2a"]
    assert cost["calls"] == 1 and cost["rewritten"] == 1
    rw_usage = FakeLogprobChatModel(replies=[REWRITE]).invoke(rewriter.calls[0]).usage_metadata
    assert cost["input_tokens"] == rw_usage["input_tokens"] and cost["output_tokens"] == rw_usage["output_tokens"]
    base = FakeLogprobChatModel(replies=["The answer is 7."]).invoke(model.calls[1]).usage_metadata
    assert final.usage_metadata["total_tokens"] == base["total_tokens"] + rw_usage["total_tokens"]


def test_s2a_can_rewrite_tool_results_and_validates_its_config() -> None:
    rewriter = FakeLogprobChatModel(default="Related version of text by User, including question: 7")
    model = FakeLogprobChatModel(replies=[tool_call(), "The answer is 7."])
    mw = S2AMiddleware(rewriter, rewrite="irrelevant", variant="single", tool_results=True)
    create_agent(model, tools=[add], middleware=[mw]).invoke(user())
    assert len(rewriter.calls) == 2  # the user turn, then the tool result
    tool_seen = [m for m in model.calls[1] if isinstance(m, ToolMessage)][0]
    assert tool_seen.content.startswith("7")
    with pytest.raises(InvalidRequestError, match="variant"):
        S2AMiddleware(rewriter, variant="both")
    with pytest.raises(InvalidRequestError, match="S2AMiddleware accepts"):
        S2AMiddleware(rewriter, temprature=3)


# -- LECO --------------------------------------------------------------------------------------
def test_leco_rethinks_from_the_least_confident_step_and_leaves_tool_calls_alone() -> None:
    model = leco_model()
    out = create_agent(model, tools=[add], middleware=[LecoMiddleware()]).invoke(user())
    msgs = out["messages"]
    assert msgs[1].tool_calls == tool_call().tool_calls and "sc_chains" not in msgs[1].response_metadata
    assert isinstance(msgs[2], ToolMessage) and msgs[2].content == "7"
    final = _final(out)
    assert final.content == FINAL
    trace = final.response_metadata["sc_chains"]["leco"]
    assert trace["status"] == "corrected" and trace["stop_reason"] == "agreement"
    assert [a["answer"] for a in trace["attempts"]] == ["8", "7", "7"]
    assert [a["cut_step"] for a in trace["attempts"]] == [None, 1, 1]
    assert trace["calls"] == 2 and trace["corrections"] == 2
    rethink_prompt = model.calls[2][-1].content
    assert rethink_prompt.endswith("Step 1: Tom has 3 apples.\nStep 2:") and "3 + 4 = 8" not in rethink_prompt
    assert "Step 1:" in model.calls[1][0].content  # LECO's step format joined the system message
    assert len(msgs) == 4  # the rethink prompts never enter the conversation


def test_leco_without_logprobs_is_a_typed_error_or_a_visible_passthrough() -> None:
    plain = FakeLogprobChatModel(replies=["The answer is 7."], logprobs=False)
    with pytest.raises(LogprobsUnavailableError, match="logprobs"):
        create_agent(plain, middleware=[LecoMiddleware()]).invoke(user())
    plain = FakeLogprobChatModel(replies=["The answer is 7."], logprobs=False)
    out = create_agent(plain, middleware=[LecoMiddleware(on_missing_logprobs="passthrough")]).invoke(user())
    assert _final(out).content == "The answer is 7."
    assert _final(out).response_metadata["sc_chains"]["leco"]["status"] == "passthrough"
    from adapters.fake import FakeLogprobModel

    with pytest.raises(LogprobsUnavailableError):
        LecoMiddleware(logprob_model=FakeLogprobModel(logprobs=False))


def test_leco_with_a_separate_logprob_model_and_the_token_budget() -> None:
    agent_model = FakeLogprobChatModel(replies=[], logprobs=False)
    lp = leco_model(with_tool=False)
    out = create_agent(agent_model, middleware=[LecoMiddleware(logprob_model=lp, max_completion_tokens=1)]).invoke(user())
    assert agent_model.calls == [] and len(lp.calls) == 1  # the draft spent the budget: no rethink
    trace = _final(out).response_metadata["sc_chains"]["leco"]
    assert trace["stop_reason"] == "max_completion_tokens" and [a["answer"] for a in trace["attempts"]] == ["8"]


# -- the shared budget -------------------------------------------------------------------------
def test_budget_validates_and_reaches_the_nested_configs() -> None:
    with pytest.raises(InvalidRequestError, match="stream"):
        Budget(stream="some")
    with pytest.raises(InvalidRequestError, match="max_completion_tokens"):
        Budget(max_completion_tokens=0)
    mw = LecoMiddleware(max_rethinks=1, max_corrections=5, stream="all")
    assert mw.config.leco.max_rethinks == 1 and mw.config.budget.max_corrections == 5
    assert mw.config.budget.stream == "all"
    with pytest.raises(InvalidRequestError, match="LecoMiddleware accepts"):
        LecoMiddleware(max_rethink=1)
