"""The loops as LCEL Runnables: prompt | chain | parser, RunnableConfig, every invoke style,
and a compiled graph as a subgraph node of a user's own StateGraph."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, TypedDict

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph

from adapters.errors import InvalidRequestError
from graphs.leco import create_leco_graph
from sc_chains.runnables import (
    as_chain,
    critique_chain,
    leco_chain,
    s2a_chain,
    to_question,
)
from sc_chains.testing import FakeLogprobModel, FakeReply

REPLY = "Step 1: 3 + 4 = 7.\nThe answer is 7."
PROMPT = ChatPromptTemplate.from_messages([("system", "Be careful."), ("human", "{q}")])


def confident_fake(**kw) -> FakeLogprobModel:
    return FakeLogprobModel(default=FakeReply(REPLY, logprob=-0.01), **kw)


def test_prompt_chain_parser_gives_the_final_response() -> None:
    fake = confident_fake()
    chain = PROMPT | leco_chain(fake, max_rethinks=1) | StrOutputParser()
    text = chain.invoke({"q": "What is 3 + 4?"})
    assert text.endswith("The answer is 7.")
    # the question reached the model: the last human turn of the prompt value
    assert "What is 3 + 4?" in fake.calls[0].messages[-1]["content"]


def test_message_output_carries_usage_and_the_answer() -> None:
    fake = confident_fake()
    msg = leco_chain(fake, max_rethinks=1).invoke("What is 3 + 4?")
    assert isinstance(msg, AIMessage)
    meta = msg.response_metadata["sc_chains"]
    assert meta["answer"] == "7" and meta["usage"]["calls"] == len(fake.calls)
    assert msg.usage_metadata["output_tokens"] == meta["usage"]["completion_tokens"] > 0
    assert leco_chain(confident_fake(), output="answer").invoke("q") == "7"
    assert leco_chain(confident_fake(), output="state").invoke("q")["answer"] == "7"


def test_invoke_styles_agree() -> None:
    chain = leco_chain(confident_fake(), output="answer")
    assert chain.batch(["a", "b", "c"], config={"max_concurrency": 2}) == ["7", "7", "7"]
    assert asyncio.run(chain.ainvoke("a")) == "7"
    assert asyncio.run(chain.abatch(["a", "b"])) == ["7", "7"]
    assert list(chain.stream("a")) == ["7"]

    async def events() -> list[str]:
        return [e["event"] async for e in chain.astream_events("a", version="v2")]

    names = asyncio.run(events())
    assert names[0] == "on_chain_start" and names[-1] == "on_chain_end"


def test_runnable_config_reaches_callbacks_and_tags() -> None:
    seen: list[tuple[str, list[str]]] = []

    class Recorder(BaseCallbackHandler):
        def on_chain_start(self, serialized, inputs, *, tags=None, **kwargs):  # noqa: ANN001
            seen.append((kwargs.get("name") or "", list(tags or [])))

    leco_chain(confident_fake()).invoke("q", config={"callbacks": [Recorder()], "tags": ["mine"]})
    assert seen and seen[0] == ("leco", ["mine"])


def test_inputs_are_coerced_or_rejected_with_a_clear_error() -> None:
    assert to_question("q") == {"question": "q"}
    assert to_question({"question": "q", "reference": "7"})["reference"] == "7"
    assert to_question([HumanMessage("first"), AIMessage("x"), HumanMessage("last")]) == {
        "question": "last",
        "history": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"}],
    }
    assert to_question([("system", "s"), ("human", "q")]) == {"question": "q", "history": [{"role": "system", "content": "s"}]}
    with pytest.raises(InvalidRequestError, match="question"):
        to_question({"q": "missing key"})
    with pytest.raises(InvalidRequestError, match="input"):
        to_question(42)
    with pytest.raises(InvalidRequestError, match="output"):
        as_chain(create_leco_graph(confident_fake()), output="text")


def test_s2a_and_critique_chains() -> None:
    rewrite = "Unbiased text context (includes all content except user's bias): 3 + 4\nQuestion/Query (does not include user bias/preference): What is 3 + 4?"
    s2a = s2a_chain(FakeLogprobModel([rewrite, "The answer is 7."]), output="state").invoke("What is 3 + 4? I think 9.")
    assert s2a["answer"] == "7" and s2a["rewrite"] == rewrite
    out = critique_chain(FakeLogprobModel(["The answer is 6.", "The answer is 7."]), mode="score").invoke(
        {"question": "What is 3 + 4?"}
    )
    assert out.response_metadata["sc_chains"]["attempt1_answer"] == "6"
    assert out.response_metadata["sc_chains"]["answer"] == "7"


class Outer(TypedDict, total=False):
    question: str
    answer: str
    log: Annotated[list[str], operator.add]


def test_a_compiled_graph_is_a_subgraph_node() -> None:
    leco = create_leco_graph(confident_fake(), max_rethinks=1)
    g = StateGraph(Outer)
    g.add_node("leco", leco)
    g.add_node("after", lambda s: {"log": [f"answer={s['answer']}"]})
    g.add_edge(START, "leco")
    g.add_edge("leco", "after")
    g.add_edge("after", END)
    out = g.compile().invoke({"question": "What is 3 + 4?"})
    assert out["answer"] == "7" and out["log"] == ["answer=7"]


FRENCH = ChatPromptTemplate.from_messages([
    ("system", "Tu es un assistant qui répond en français."),
    ("human", "J'ai 3 pommes."),
    ("ai", "D'accord, 3 pommes."),
    ("human", "{q}"),
])


def _chains_with_history() -> list:
    """The chains whose graphs take ``history`` (critique joins when its graph does)."""
    from graphs.critique.graph import CritiqueInput

    return [leco_chain, s2a_chain] + ([critique_chain] if "history" in CritiqueInput.__annotations__ else [])


@pytest.mark.parametrize("make", _chains_with_history())
def test_system_prompt_and_history_reach_the_model(make) -> None:
    """``prompt | chain`` keeps what a chat model would get: the system prompt and the earlier
    turns reach every call on the conversation (not only the last human turn)."""
    fake = confident_fake()
    (FRENCH | make(fake) | StrOutputParser()).invoke({"q": "J'en achète 4. Combien en ai-je ?"})
    answer_calls = [c for c in fake.calls if any("assistant qui répond" in m["content"] for m in c.messages)]
    assert answer_calls, [c.messages for c in fake.calls]
    seen = answer_calls[0].messages
    assert seen[0]["role"] == "system" and seen[0]["content"].startswith("Tu es un assistant")
    assert [m["content"] for m in seen[1:3]] == ["J'ai 3 pommes.", "D'accord, 3 pommes."]
    assert seen[-1]["role"] == "user" and len(seen) == 4  # then the question (S2A: as rewritten)


def test_a_second_question_without_history_does_not_reuse_the_first_ones() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    fake = confident_fake()
    graph = create_leco_graph(fake, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "h"}}
    graph.invoke(to_question(FRENCH.invoke({"q": "Combien ?"})), cfg)
    graph.invoke({"question": "What is 3 + 4?"}, cfg)
    assert len(fake.calls[-1].messages) == 2  # LECO's system prompt and the question only
