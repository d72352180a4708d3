"""CritiqueReviseMiddleware in a real create_agent app: the same loop as the graph (equivalence),
budgets and the hard ceiling, human review in LangChain's HITL shape, echoes, names, options."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from middleware_scripts import add, tool_call, user

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from graphs.critique import MAX_REVISIONS, create_critique_graph
from graphs.critique.prompts import ANSWER_INSTRUCTION, SELF_REFINE_REFINE
from sc_chains.chat_model import ChatLogprobModel
from sc_chains.testing import FakeLogprobChatModel
from sc_chains.middleware import CritiqueReviseMiddleware

Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"
FIRST = f"{Q}\n\n{ANSWER_INSTRUCTION}"


def _final(out: dict) -> AIMessage:
    return out["messages"][-1]


def _trace(out: dict, name: str = "critique") -> dict:
    return _final(out).response_metadata["sc_chains"][name]


def _drafts(n: int) -> list[str]:
    return [f"Attempt {i}: the answer is {i * 11}." for i in range(n)]


# -- one loop, two drivers ------------------------------------------------------------------------
SCRIPTS = {
    "approved": ["3 + 4 = 8. The answer is 8.", "3 + 4 is 7.\nVerdict: incorrect",
                 "3 + 4 = 7. The answer is 7.", "Right.\nVerdict: correct"],
    "max_turns": [x for i, d in enumerate(_drafts(4)) for x in (d, f"Problem {i}. Verdict: incorrect")][:7],
    "collapse": ["The answer is 8.", "Verdict: incorrect", "The  answer is 8."],
    "echo": ["The answer is 8.", "Off by one.\nVerdict: incorrect", "Verdict: incorrect"],
}


SCRIPTS["score"] = ["3 + 4 = 8. The answer is 8.", "Let me redo it: 3 + 4 = 7. The answer is 7."]
CASES = [("self-refine", c) for c in sorted(SCRIPTS) if c != "score"] + [
    ("rci", c) for c in ("collapse", "echo", "max_turns")] + [("score", "score")]


@pytest.mark.parametrize(("mode", "case"), CASES)
def test_graph_and_middleware_run_the_same_loop(case: str, mode: str) -> None:
    """One scripted model through the graph and through the middleware in a real agent: the
    same drafts, critiques, stop reasons, answers and cost records."""
    graph_model = FakeLogprobModel(SCRIPTS[case])
    state = create_critique_graph(graph_model, mode=mode, max_completion_tokens=None).invoke({"question": Q})
    agent_model = FakeLogprobModel(SCRIPTS[case])
    chat = ChatLogprobModel(agent_model, max_tokens=512)
    mw = CritiqueReviseMiddleware(mode=mode, max_corrections=MAX_REVISIONS, max_completion_tokens=None)
    out = create_agent(chat, middleware=[mw]).invoke(user(FIRST))
    trace = _trace(out)
    assert [r.messages for r in agent_model.calls] == [r.messages for r in graph_model.calls]
    assert trace["turns"] == state["turns"]
    assert trace["stop_reason"] == state["stop_reason"] and trace["usage"] == state["usage"]
    assert _final(out).content == state["response"]
    assert trace["revisions"] == len(state["turns"]) - 1
    if case == "echo":  # the echo is kept in the trace; the answer is the previous draft
        assert state["stop_reason"] == "echo" and state["turns"][-1]["echo"] == "verdict"
        assert _final(out).content == "The answer is 8."
    # the final message's usage is everything the loop spent
    assert _final(out).usage_metadata["output_tokens"] == state["usage"]["completion_tokens"]
    assert _final(out).usage_metadata["input_tokens"] == state["usage"]["prompt_tokens"]


@pytest.mark.parametrize("case", sorted(c for c in SCRIPTS if c != "score"))
def test_visible_self_refine_makes_the_same_run_as_the_graph(case: str) -> None:
    """Visible mode: the drafts and feedback are conversation turns, and the model sees exactly
    the graph's self-refine history; the thread's messages account for every token."""
    graph_model = FakeLogprobModel(SCRIPTS[case])
    state = create_critique_graph(graph_model, max_completion_tokens=None).invoke({"question": Q})
    agent_model = FakeLogprobModel(SCRIPTS[case])
    chat = ChatLogprobModel(agent_model, max_tokens=512)
    mw = CritiqueReviseMiddleware(chat, visible=True, max_corrections=MAX_REVISIONS, max_completion_tokens=None)
    out = create_agent(chat, middleware=[mw]).invoke(user(FIRST))
    trace = _trace(out)
    assert [r.messages for r in agent_model.calls] == [r.messages for r in graph_model.calls]
    assert trace["turns"] == state["turns"] and trace["stop_reason"] == state["stop_reason"]
    assert trace["usage"] == state["usage"] and _final(out).content == state["response"]
    ais = [m for m in out["messages"] if isinstance(m, AIMessage)]
    assert sum(m.usage_metadata["output_tokens"] for m in ais) == state["usage"]["completion_tokens"]
    assert sum(m.usage_metadata["input_tokens"] for m in ais) == state["usage"]["prompt_tokens"]


def test_graph_and_middleware_with_a_judge_critic() -> None:
    from graphs.judge import Judge

    def judge() -> Judge:
        return Judge(FakeLogprobModel(["Weak. Score: 2", "Weak. Score: 3", "Good. Score: 4", "Great. Score: 5"]),
                     k=2, temperature=0.7)

    script = ["The answer is 8.", "The answer is 7, since 3 + 4 = 7."]
    state = create_critique_graph(FakeLogprobModel(script), critic=judge(), max_completion_tokens=None).invoke(
        {"question": Q})
    mw = CritiqueReviseMiddleware(judge(), max_completion_tokens=None)
    out = create_agent(ChatLogprobModel(FakeLogprobModel(script)), middleware=[mw]).invoke(user(FIRST))
    trace = _trace(out)

    def strip(turns: list) -> list:  # the judge sees the user's whole turn as the question here
        return [{k: v for k, v in t.items() if k != "usage"} for t in turns]

    assert strip(trace["turns"]) == strip(state["turns"]) and trace["usage"]["calls"] == state["usage"]["calls"] == 6
    assert trace["stop_reason"] == state["stop_reason"] == "approved"
    assert [t["critique_score"] for t in trace["turns"]] == [2.5, 4.5]


async def test_async_middleware_equals_sync() -> None:
    def run(sync: bool):
        model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7."])
        critic = FakeLogprobChatModel(replies=["Off by one.\nVerdict: incorrect", "Verdict: correct"])
        return create_agent(model, middleware=[CritiqueReviseMiddleware(critic=critic)]), critic

    agent, _ = run(True)
    sync = agent.invoke(user())
    agent2, critic2 = run(False)
    asyn = await agent2.ainvoke(user())
    assert _final(sync).content == _final(asyn).content == "The answer is 7."
    assert _trace(sync) == _trace(asyn) and len(critic2.calls) == 2


# -- budgets and the hard ceiling ---------------------------------------------------------------------
@pytest.mark.parametrize("visible", [False, True])
def test_a_critic_that_never_approves_stops_at_max_corrections(visible: bool) -> None:
    model = FakeLogprobChatModel(replies=_drafts(4))
    critic = FakeLogprobChatModel(default="Still wrong.\nVerdict: incorrect")
    mw = CritiqueReviseMiddleware(critic, visible=visible, max_corrections=3)
    out = create_agent(model, tools=[add], middleware=[mw]).invoke(user(), {"recursion_limit": 25})
    trace = _trace(out)
    assert trace["stop_reason"] == "max_corrections" and trace["revisions"] == 3
    assert len(model.calls) == 4 and len(critic.calls) == 3  # the last revision is not critiqued
    feedback = [m for m in out["messages"] if isinstance(m, HumanMessage) and m.content.startswith("Feedback:")]
    assert len(feedback) == (3 if visible else 0)
    if visible:
        assert feedback[0].content.endswith(SELF_REFINE_REFINE)


@pytest.mark.parametrize("visible", [False, True])
def test_no_argument_lifts_the_hard_ceiling(visible: bool) -> None:
    """A critic that never approves, a model that always changes its answer, no token budget and
    ``max_corrections=10**9``: the run still ends, after MAX_REVISIONS revisions, and visible
    mode stays inside a small recursion limit (LangGraph's default is 10,007)."""

    def never_approves(question: str, answer: str, reference: str | None) -> bool:
        return False

    model = FakeLogprobChatModel(replies=_drafts(MAX_REVISIONS + 5))
    mw = CritiqueReviseMiddleware(never_approves, visible=visible, max_corrections=10**9,
                                  max_completion_tokens=None, max_turns=MAX_REVISIONS)
    out = create_agent(model, middleware=[mw]).invoke(user(), {"recursion_limit": 4 * (MAX_REVISIONS + 1) + 5})
    trace = _trace(out)
    assert trace["revisions"] == MAX_REVISIONS and len(model.calls) == MAX_REVISIONS + 1
    assert trace["stop_reason"] in ("max_turns", "max_corrections")
    with pytest.raises(InvalidRequestError, match="hard ceiling"):
        CritiqueReviseMiddleware(never_approves, max_turns=MAX_REVISIONS + 1)


def test_the_ceiling_holds_across_a_requests_model_calls() -> None:
    """A reviser that keeps calling a tool starts a new loop run per model call; the request's
    revisions are still capped."""
    replies = []
    for i in range(3 * MAX_REVISIONS):
        replies += [f"Draft {i}: the answer is {i}.", tool_call(call_id=f"c{i}")]
    model = FakeLogprobChatModel(replies=replies, default="The answer is 7.")
    mw = CritiqueReviseMiddleware(lambda q, a, r: False, max_corrections=10**9, max_completion_tokens=None)
    out = create_agent(model, tools=[add], middleware=[mw]).invoke(user(), {"recursion_limit": 200})
    # each run: a draft and a revision that calls the tool; then the request's allowance is spent
    assert len(model.calls) == 2 * MAX_REVISIONS + 1
    assert _final(out).content == f"Draft {MAX_REVISIONS}: the answer is {MAX_REVISIONS}."
    assert _trace(out)["stop_reason"] == "max_corrections"


def test_budget_is_per_request_and_survives_a_checkpoint() -> None:
    model = FakeLogprobChatModel(replies=_drafts(4))
    critic = FakeLogprobChatModel(default="Verdict: incorrect")
    mw = CritiqueReviseMiddleware(critic, visible=True, max_corrections=1)
    agent = create_agent(model, middleware=[mw], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "budget"}}
    agent.invoke(user("first question"), cfg)
    agent.invoke(user("second question"), cfg)
    assert len(critic.calls) == 2 and len(model.calls) == 4  # one revision per request
    values = agent.get_state(cfg).values
    led, msgs = values["sc_chains_critique"]["critique"], values["messages"]
    assert [m.type for m in msgs] == ["human", "ai", "human", "ai"] * 2
    assert led["corrections"] == 1 and led["request"] == msgs[4].id and led["run"] is None


def test_completion_tokens_budget_counts_generated_tokens_only() -> None:
    model = FakeLogprobChatModel(replies=_drafts(4))
    critic = FakeLogprobChatModel(default="Verdict: incorrect")
    # the draft generates 6 fake tokens: a budget of 6 allows no critique at all
    out = create_agent(model, middleware=[CritiqueReviseMiddleware(critic, max_completion_tokens=6)]).invoke(user())
    assert _trace(out)["stop_reason"] == "max_completion_tokens" and critic.calls == []
    with pytest.raises(InvalidRequestError, match="accepts"):
        CritiqueReviseMiddleware(critic, token_budget=100)


# -- critics ---------------------------------------------------------------------------------------
def test_hidden_critique_revises_and_never_critiques_tool_calls() -> None:
    model = FakeLogprobChatModel(replies=[tool_call(), "The answer is 8.", "The answer is 7."])
    critic = FakeLogprobChatModel(replies=["3 + 4 is 7.\nVerdict: incorrect", "Verdict: correct"])
    out = create_agent(model, tools=[add], middleware=[CritiqueReviseMiddleware(critic=critic)]).invoke(user())
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai"]
    assert _final(out).content == "The answer is 7."
    assert len(critic.calls) == 2  # the draft and the revision; the tool call was not critiqued
    assert model.calls[2][-1].content.startswith("Feedback:\n3 + 4 is 7.")
    trace = _trace(out)
    assert trace["stop_reason"] == "approved" and trace["calls"] == 3 and trace["corrections"] == 1


def test_verifier_results_are_validated() -> None:
    seen = []

    def verifier(question: str, answer: str, reference: str | None) -> tuple[bool, str]:
        seen.append(answer)
        return ("7" in answer, "Count again.")

    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7."])
    out = create_agent(model, middleware=[CritiqueReviseMiddleware(critic=verifier)]).invoke(user())
    assert seen == ["The answer is 8.", "The answer is 7."] and _final(out).content == "The answer is 7."
    assert _trace(out)["calls"] == 1  # the verifier is free

    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 9."])
    hitl_no = CritiqueReviseMiddleware(lambda q, a, r: {"decisions": [{"type": "reject", "message": "No."}]},
                                       max_corrections=1)
    out = create_agent(model, middleware=[hitl_no]).invoke(user())
    assert _trace(out)["stop_reason"] == "max_corrections"  # a reject decision is never approval
    assert model.calls[1][-1].content.startswith("Feedback:\nNo.")

    says_no = CritiqueReviseMiddleware(lambda q, a, r: "no")
    with pytest.raises(InvalidRequestError, match="verifier result"):
        create_agent(FakeLogprobChatModel(default="The answer is 8."), middleware=[says_no]).invoke(user())
    with pytest.raises(InvalidRequestError, match="question, response, reference"):
        CritiqueReviseMiddleware(lambda answer: True)  # wrong signature: caught at construction


def test_self_critique_by_the_agents_model_and_option_errors() -> None:
    model = FakeLogprobChatModel(replies=["The answer is 7.", "Verdict: correct"])
    out = create_agent(model, middleware=[CritiqueReviseMiddleware()]).invoke(user())
    assert _final(out).content == "The answer is 7." and len(model.calls) == 2
    with pytest.raises(InvalidRequestError, match="visible mode needs a critic"):
        CritiqueReviseMiddleware(visible=True)
    with pytest.raises(InvalidRequestError, match="visible=True"):
        CritiqueReviseMiddleware(mode="visible")
    with pytest.raises(InvalidRequestError, match="max_corrections"):
        CritiqueReviseMiddleware(max_corrections=-1)
    with pytest.raises(InvalidRequestError, match="stream"):
        CritiqueReviseMiddleware(stream="some")
    with pytest.raises(InvalidRequestError, match="provider"):  # init_chat_model strings reach LangChain
        CritiqueReviseMiddleware(critic="nosuchprovider:model")


def test_two_named_instances_coexist() -> None:
    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7."])
    strict = CritiqueReviseMiddleware(lambda q, a, r: (("7" in a), "Recount."), name="strict")
    lenient = CritiqueReviseMiddleware(lambda q, a, r: True, name="lenient")
    out = create_agent(model, middleware=[strict, lenient], checkpointer=InMemorySaver()).invoke(
        user(), {"configurable": {"thread_id": "two"}})
    sc = _final(out).response_metadata["sc_chains"]
    assert set(sc) == {"strict", "lenient"} and _final(out).content == "The answer is 7."
    assert sc["strict"]["revisions"] == 1 and sc["lenient"]["stop_reason"] == "approved"


def test_echo_keeps_the_previous_draft() -> None:
    model = FakeLogprobChatModel(replies=["The answer is 8.", f"Sure. {SELF_REFINE_REFINE}"])
    critic = FakeLogprobChatModel(default="Off by one.\nVerdict: incorrect")
    out = create_agent(model, middleware=[CritiqueReviseMiddleware(critic)]).invoke(user())
    trace = _trace(out)
    assert _final(out).content == "The answer is 8." and trace["stop_reason"] == "echo"
    assert trace["turns"][-1]["echo"] == "prompt" and trace["turns"][-1]["text"].startswith("Sure.")


# -- human review ------------------------------------------------------------------------------------
def _decision(kind: str) -> dict:
    d: dict = {"type": kind}
    if kind == "edit":
        d["edited_action"] = {"name": "critique.revise", "args": {"critique": "3 + 4 is 7, not 8."}}
    if kind == "reject":
        d["message"] = "keep it"
    return {"decisions": [d]}


@pytest.mark.parametrize("visible", [False, True])
@pytest.mark.parametrize("kind", ["approve", "edit", "reject"])
def test_review_resumes_without_running_the_draft_again(kind: str, visible: bool) -> None:
    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7."])
    critic = FakeLogprobChatModel(replies=["It looks off.\nVerdict: incorrect", "Verdict: correct"])
    mw = CritiqueReviseMiddleware(critic, visible=visible, review=True)
    agent = create_agent(model, middleware=[mw], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": f"{kind}-{visible}"}}
    first = agent.invoke(user(), cfg)
    pending = first["__interrupt__"][0].value
    assert pending["draft"] == "The answer is 8." and pending["critique"] == "It looks off.\nVerdict: incorrect"
    assert pending["action_requests"][0]["name"] == "critique.revise"
    assert len(model.calls) == 1 and len(critic.calls) == 1
    again = agent.invoke(Command(resume={"decisions": [{"type": "maybe"}]}), cfg)  # never approval
    assert "maybe" in again["__interrupt__"][0].value["error"] and len(model.calls) == 1
    out = agent.invoke(Command(resume=_decision(kind)), cfg)
    trace = _trace(out)
    if kind == "reject":
        assert _final(out).content == "The answer is 8." and trace["stop_reason"] == "rejected"
        assert len(model.calls) == 1 and len(critic.calls) == 1
        return
    assert len(model.calls) == 2  # the draft ran once; only the revision was new
    seen = model.calls[1][-1].content
    assert seen.startswith("Feedback:\n" + ("3 + 4 is 7, not 8." if kind == "edit" else "It looks off."))
    # the revision was critiqued and approved: no second pause
    assert "__interrupt__" not in out and _final(out).content == "The answer is 7."
    assert trace["stop_reason"] == "approved" and [t.get("review") for t in trace["turns"]] == [kind, None]
    humans = [m for m in out["messages"] if m.type == "human"]
    assert len(humans) == (2 if visible else 1)  # hidden: the thread holds only the answer


async def test_review_async_resume() -> None:
    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7."])
    critic = FakeLogprobChatModel(replies=["Off.\nVerdict: incorrect", "Verdict: correct"])
    agent = create_agent(model, middleware=[CritiqueReviseMiddleware(critic, review=True)],
                         checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "async"}}
    first = await agent.ainvoke(user(), cfg)
    assert "__interrupt__" in first
    out = await agent.ainvoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg)
    assert _final(out).content == "The answer is 7." and len(model.calls) == 2


# -- cost and limits ------------------------------------------------------------------------------------
class _CountCalls:
    """A callback handler counting every chat model call and its tokens."""

    def __init__(self) -> None:
        from langchain_core.callbacks import BaseCallbackHandler

        outer = self
        self.calls, self.input_tokens, self.output_tokens = 0, 0, 0

        class Handler(BaseCallbackHandler):
            def on_chat_model_start(self, *args, **kwargs) -> None:
                outer.calls += 1

            def on_llm_end(self, response, **kwargs) -> None:
                for gens in response.generations:
                    for g in gens:
                        um = getattr(g.message, "usage_metadata", None) or {}
                        outer.input_tokens += um.get("input_tokens", 0)
                        outer.output_tokens += um.get("output_tokens", 0)

        self.handler = Handler()


def test_critique_around_leco_counts_every_nested_call() -> None:
    """Critique outside LECO: each draft and revision is a whole LECO run; the final message's
    calls (1 + every sc_chains entry) and tokens equal what a callback counted."""
    from middleware_scripts import DRAFT, RETHINK

    from sc_chains.middleware import LecoMiddleware

    model = FakeLogprobChatModel(replies=[DRAFT, RETHINK, RETHINK, DRAFT, RETHINK, RETHINK])
    critic = FakeLogprobChatModel(replies=["Verdict: incorrect", "Verdict: correct"])
    counter = _CountCalls()
    mws = [CritiqueReviseMiddleware(critic, collapse_threshold=0.0), LecoMiddleware()]
    out = create_agent(model, middleware=mws).invoke(user(), {"callbacks": [counter.handler]})
    final = _final(out)
    sc = final.response_metadata["sc_chains"]
    assert counter.calls == 8 == 1 + sc["leco"]["calls"] + sc["critique"]["calls"]
    assert final.usage_metadata["input_tokens"] == counter.input_tokens
    assert final.usage_metadata["output_tokens"] == counter.output_tokens


def test_model_call_limit_counts_agent_steps_not_critique_calls() -> None:
    """``ModelCallLimitMiddleware`` counts the agent's model *steps*. Hidden critique is one step
    (its extra calls are bounded by ``max_corrections`` and MAX_REVISIONS, and itemised in the
    trace); in visible mode each revision is a step, so a run limit listed after the critique
    middleware stops the revisions."""
    from langchain.agents.middleware import ModelCallLimitMiddleware

    model = FakeLogprobChatModel(replies=_drafts(6))
    critic = FakeLogprobChatModel(default="Verdict: incorrect")
    limit = ModelCallLimitMiddleware(run_limit=1, exit_behavior="end")
    out = create_agent(model, middleware=[limit, CritiqueReviseMiddleware(critic, max_corrections=3)]).invoke(user())
    assert len(model.calls) == 4 and _trace(out)["calls"] == 6  # 3 revisions + 3 critiques, one agent step

    model = FakeLogprobChatModel(replies=_drafts(6))
    critic = FakeLogprobChatModel(default="Verdict: incorrect")
    limit = ModelCallLimitMiddleware(run_limit=1, exit_behavior="end")
    mw = CritiqueReviseMiddleware(critic, visible=True, max_corrections=3)
    out = create_agent(model, middleware=[mw, limit]).invoke(user())
    assert len(model.calls) == 1 and len(critic.calls) == 1
    assert "limit" in _final(out).content


def test_internal_calls_are_tagged_and_carry_lc_source() -> None:
    """The critic's calls (and drafts under stream="final" that are not the answer) are internal:
    ``nostream`` and LangChain's ``lc_source`` metadata; the final answer's call is not hidden."""
    from langchain_core.callbacks import BaseCallbackHandler

    seen: list[tuple[list[str], dict]] = []

    class Spy(BaseCallbackHandler):
        def on_chat_model_start(self, serialized, messages, *, tags=None, metadata=None, **kwargs) -> None:
            seen.append((list(tags or []), dict(metadata or {})))

    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7."])
    critic = FakeLogprobChatModel(replies=["Off by one.\nVerdict: incorrect", "Verdict: correct"])
    mw = CritiqueReviseMiddleware(critic, name="checker")
    create_agent(model, middleware=[mw]).invoke(user(), {"callbacks": [Spy()]})
    critic_calls = [(t, m) for t, m in seen if "sc_chains:checker:critique" in t]
    assert len(critic_calls) == 2
    for tags, meta in critic_calls:
        assert "nostream" in tags and meta["lc_source"] == "sc_chains:checker"
    revise = [(t, m) for t, m in seen if "sc_chains:checker:revise" in t]
    assert len(revise) == 1 and "nostream" not in revise[0][0]


def test_a_new_question_on_a_thread_is_a_fresh_critique_run() -> None:
    model = FakeLogprobChatModel(replies=["The answer is 8.", "The answer is 7.", "The answer is 42."])
    critic = FakeLogprobChatModel(replies=["Verdict: incorrect", "Verdict: correct", "Verdict: correct"])
    agent = create_agent(model, middleware=[CritiqueReviseMiddleware(critic, max_corrections=1)],
                         checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "two-questions"}}
    first = agent.invoke(user(), cfg)
    second = agent.invoke(user("What is 6 times 7?"), cfg)
    assert _final(first).content == "The answer is 7." and _trace(first)["revisions"] == 1
    assert _final(second).content == "The answer is 42."  # full budget again, no stale draft
    assert _trace(second)["stop_reason"] == "approved" and _trace(second)["turns"][0]["text"] == "The answer is 42."
    msgs = agent.get_state(cfg).values["messages"]
    assert [m.type for m in msgs] == ["human", "ai", "human", "ai"]


@pytest.mark.parametrize("stream", ["final", "all"])
def test_streaming_policy_in_messages_mode(stream: str) -> None:
    """Under "final" the answer streams token by token and the critic's verdict never does."""
    model = FakeLogprobChatModel(replies=["3 + 4 = 7. The answer is 7."])
    critic = FakeLogprobChatModel(replies=["Right.\nVerdict: correct"])
    agent = create_agent(model, middleware=[CritiqueReviseMiddleware(critic, stream=stream)])
    texts: dict[str, list[str]] = {}
    events = []
    for mode, item in agent.stream(user(), stream_mode=["messages", "custom"]):
        if mode == "messages":
            texts.setdefault(item[0].id, []).append(item[0].text)
        else:
            events.append(item["event"])
    streamed = {"".join(v): len(v) for v in texts.values()}
    assert streamed.get("3 + 4 = 7. The answer is 7.", 0) > 3  # token by token
    assert any("Verdict" in t for t in streamed) == (stream == "all")
    assert events == ["critique.draft", "critique.critique", "critique.done"]


def test_hidden_mode_without_review_adds_no_graph_nodes() -> None:
    model = FakeLogprobChatModel(default="The answer is 7.")
    plain = create_agent(model, middleware=[CritiqueReviseMiddleware(lambda q, a, r: True)])
    assert not [n for n in plain.get_graph().nodes if n.startswith("critique.")]
    steps = create_agent(model, middleware=[CritiqueReviseMiddleware(lambda q, a, r: True, review=True)],
                         checkpointer=InMemorySaver())
    assert {"critique.before_model", "critique.after_model"} <= set(steps.get_graph().nodes)
    assert isinstance(CritiqueReviseMiddleware(model, visible=True), CritiqueReviseMiddleware)


@pytest.mark.parametrize("visible", [False, True])
def test_review_without_a_checkpointer_is_a_typed_error_before_any_critique(visible: bool) -> None:
    model = FakeLogprobChatModel(replies=["The answer is 8."])
    critic = FakeLogprobChatModel(default="Verdict: incorrect")
    agent = create_agent(model, middleware=[CritiqueReviseMiddleware(critic, review=True, visible=visible)])
    with pytest.raises(InvalidRequestError, match="checkpointer"):
        agent.invoke(user())
    assert critic.calls == [] and model.calls == []  # nothing paid for


def test_the_critic_sees_the_agents_system_prompt_and_conversation() -> None:
    model = FakeLogprobChatModel(replies=["Arr, the answer be 7."])
    critic = FakeLogprobChatModel(replies=["Verdict: correct"])
    agent = create_agent(model, system_prompt="You are a pirate.", middleware=[CritiqueReviseMiddleware(critic)])
    agent.invoke(user())
    seen = critic.calls[0]
    assert seen[0].type == "system" and seen[0].content == "You are a pirate."
    assert [m.type for m in seen[1:]] == ["human", "ai", "human"] and seen[-2].content == "Arr, the answer be 7."
