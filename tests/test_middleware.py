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
from sc_chains.fake_chat import FakeLogprobChatModel
from sc_chains.middleware import (
    Budget,
    CritiqueReviseMiddleware,
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


# -- critique-revise ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["hidden", "visible"])
def test_a_critic_that_never_approves_stops_at_the_budget(mode: str) -> None:
    model = FakeLogprobChatModel(default="The answer is 8.")
    critic = FakeLogprobChatModel(default="Still wrong.\nVerdict: incorrect")
    mw = CritiqueReviseMiddleware(mode=mode, critic=critic, max_corrections=3)
    out = create_agent(model, tools=[add], middleware=[mw]).invoke(user(), {"recursion_limit": 25})
    trace = _final(out).response_metadata["sc_chains"]["critique"]
    assert trace["stop_reason"] == "max_corrections" and trace["revisions"] == 3
    assert len(model.calls) == 4 and len(critic.calls) == 3  # the last revision is not critiqued
    visible = [m for m in out["messages"] if isinstance(m, HumanMessage) and m.content.startswith("Feedback:")]
    assert len(visible) == (3 if mode == "visible" else 0)


def test_hidden_critique_revises_and_never_critiques_tool_calls() -> None:
    model = FakeLogprobChatModel(replies=[tool_call(), "The answer is 8.", "The answer is 7."])
    critic = FakeLogprobChatModel(replies=["3 + 4 is 7.\nVerdict: incorrect", "Verdict: correct"])
    out = create_agent(model, tools=[add], middleware=[CritiqueReviseMiddleware(critic=critic)]).invoke(user())
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai"]
    assert _final(out).content == "The answer is 7."
    assert len(critic.calls) == 2  # the draft and the revision; the tool call was not critiqued
    assert model.calls[2][-1].content.startswith("Feedback:\n3 + 4 is 7.")
    trace = _final(out).response_metadata["sc_chains"]["critique"]
    assert trace["stop_reason"] == "approved" and trace["calls"] == 3 and trace["corrections"] == 1


def test_verifier_function_and_self_critique_by_the_agents_model() -> None:
    seen = []

    def verifier(question: str, answer: str, reference: str | None) -> tuple[bool, str]:
        seen.append(answer)
        return ("7" in answer, "Count again.")

    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7."])
    out = create_agent(model, middleware=[CritiqueReviseMiddleware(critic=verifier)]).invoke(user())
    assert seen == ["The answer is 8.", "The answer is 7."] and _final(out).content == "The answer is 7."
    assert _final(out).response_metadata["sc_chains"]["critique"]["calls"] == 1  # the verifier is free
    model = FakeLogprobChatModel(replies=["The answer is 7.", "Verdict: correct"])
    out = create_agent(model, middleware=[CritiqueReviseMiddleware()]).invoke(user())
    assert _final(out).content == "The answer is 7." and len(model.calls) == 2
    with pytest.raises(InvalidRequestError, match="visible mode needs a critic"):
        CritiqueReviseMiddleware(mode="visible")
    with pytest.raises(InvalidRequestError, match="max_corrections"):
        CritiqueReviseMiddleware(max_corrections=-1)
    with pytest.raises(InvalidRequestError, match="stream"):
        Budget(stream="some")


def test_budget_is_per_request_and_survives_a_checkpoint() -> None:
    model = FakeLogprobChatModel(default="The answer is 8.")
    critic = FakeLogprobChatModel(default="Verdict: incorrect")
    mw = CritiqueReviseMiddleware(mode="visible", critic=critic, max_corrections=1)
    agent = create_agent(model, middleware=[mw], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "budget"}}
    agent.invoke(user("first question"), cfg)
    agent.invoke(user("second question"), cfg)
    assert len(critic.calls) == 2 and len(model.calls) == 4  # one revision per request
    led = agent.get_state(cfg).values["sc_chains_critique"]
    msgs = agent.get_state(cfg).values["messages"]
    assert [m.type for m in msgs] == ["human", "ai", "human", "ai"] * 2
    assert led["corrections"] == 1 and led["request"] == msgs[4].id

