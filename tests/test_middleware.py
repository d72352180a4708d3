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
from adapters.fake import FakeReply
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
    values = agent.get_state(cfg).values
    assert values["messages"][0].content == QUESTION  # the thread keeps what the user wrote
    priv = values["sc_chains_s2a"]
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


def test_model_strings_accept_what_init_chat_model_accepts() -> None:
    """``hf:`` / ``openai:`` specs are sc-chains' own; other ``provider:model`` strings go to
    LangChain's ``init_chat_model``: a missing provider package, or a provider it does not know,
    is a typed error naming the string and the fix."""
    with pytest.raises(InvalidRequestError) as err:
        S2AMiddleware("anthropic:claude-3-5-sonnet")  # langchain-anthropic is not installed here
    assert err.value.value == "anthropic:claude-3-5-sonnet" and "langchain-anthropic" in err.value.fix
    with pytest.raises(InvalidRequestError, match="init_chat_model"):
        S2AMiddleware("hg:tiny-random")


def test_leco_asks_openai_compatible_models_for_logprobs_the_way_llama_cpp_needs() -> None:
    """llama.cpp returns chat logprobs only with ``top_logprobs >= 1``: LECO's calls ask for
    ``logprobs=True, top_logprobs>=1`` on models that declare those fields (ChatOpenAI)."""
    langchain_openai = pytest.importorskip("langchain_openai")
    from sc_chains.middleware.leco import logprob_settings

    chat = langchain_openai.ChatOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", model="m", logprobs=True)
    assert logprob_settings(chat, {}) == {"logprobs": True, "top_logprobs": 1}
    assert logprob_settings(chat, {"top_logprobs": 5, "temperature": 0})["top_logprobs"] == 5
    assert logprob_settings(FakeLogprobChatModel(replies=[]), {"x": 1}) == {"x": 1}  # no such fields


def test_leco_in_a_general_chat_agent() -> None:
    """Issue 16 item 7: LECO manages the turns that call for reasoning (a predicate), compares
    answers of any kind (never a step label's number), and a kept answer returns the draft."""
    chat = FakeLogprobChatModel(replies=["Paris."])
    out = create_agent(chat, middleware=[LecoMiddleware()]).invoke(user("What is the capital of France?"))
    assert out["messages"][-1].content == "Paris." and "sc_chains" not in out["messages"][-1].response_metadata
    assert len(chat.calls) == 1 and not any("Step 1:" in m.text for m in chat.calls[0])  # untouched

    from middleware_scripts import DRAFT

    words = ["Step 1: France's capital is Paris.\nStep 2: It is the largest city.",
             "Step 2: It is the seat of government.", "Step 2: It is the seat of government."]
    chat = FakeLogprobChatModel(replies=[FakeReply(words[0], overrides={"Step 2": -2.0}), *words[1:]])
    out = create_agent(chat, middleware=[LecoMiddleware(applies=lambda q: True)]).invoke(user("Capital of France?"))
    trace = out["messages"][-1].response_metadata["sc_chains"]["leco"]
    # answers are the texts, not the step labels' numbers
    assert trace["votes"] == {"it is the largest city": 1.5, "it is the seat of government": 2.0}

    kept = FakeLogprobChatModel(replies=[DRAFT, "Step 2: He buys 4 more.\nThe answer is 7.",
                                         "Step 2: He buys 4 more.\nThe answer is 6."])
    out = create_agent(kept, middleware=[LecoMiddleware(max_rethinks=2)]).invoke(user())
    trace = out["messages"][-1].response_metadata["sc_chains"]["leco"]
    assert trace["status"] == "kept" and trace["answer"] == "8"
    assert out["messages"][-1].content == DRAFT.text  # the winning (first) attempt's text
    with pytest.raises(InvalidRequestError, match="applies"):
        LecoMiddleware(applies="yes")


async def test_leco_final_answer_streams_token_by_token_and_drafts_never() -> None:
    """Issue 16 item 4: under stream="final" the messages stream shows LECO's chosen answer
    piece by piece, once, and none of the drafts."""
    for run in ("sync", "async"):
        model = leco_model(with_tool=False)
        agent = create_agent(model, middleware=[LecoMiddleware()])
        if run == "sync":
            chunks = list(agent.stream(user(), stream_mode="messages"))
        else:
            chunks = [item async for item in agent.astream(user(), stream_mode="messages")]
        texts = [msg.text for msg, _ in chunks if msg.text]
        assert len(texts) > 5 and "".join(texts) == FINAL, run
        assert "3 + 4 = 8" not in "".join(texts)  # the draft never streamed
        assert len({msg.id for msg, _ in chunks}) == 1  # one message, shown once


def test_common_options_are_explicit_keywords() -> None:
    """Issue 16 item 9: the common options are keyword arguments an IDE can see."""
    import inspect

    leco = inspect.signature(LecoMiddleware).parameters
    assert {"max_rethinks", "max_corrections", "max_completion_tokens", "stream", "applies"} <= set(leco)
    s2a = inspect.signature(S2AMiddleware).parameters
    assert {"rewrite", "variant", "messages", "tool_results", "check", "max_completion_tokens", "stream"} <= set(s2a)
    mw = LecoMiddleware(max_rethinks=2, max_completion_tokens=None)
    assert mw.config.leco.max_rethinks == 2 and mw.config.budget.max_completion_tokens is None
    assert LecoMiddleware().config.budget.max_completion_tokens == 4000  # left out: the default stays
    assert S2AMiddleware(FakeLogprobChatModel(replies=[]), variant="single", rewrite="irrelevant").config.s2a.variant == "single"
