"""Tool calling on local models: rendering, parsing, bind_tools, streaming, structured output, agents."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel
from typing_extensions import TypedDict

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel, FakeReply
from adapters.hf.model import HFModel
from adapters.hf.tiny import build_tiny_random, tiny_random_model
from adapters.tools import (
    TOOL_PROMPT,
    fallback_messages,
    forced_prefill,
    parse_tool_calls,
    render_call,
    split_content,
    template_renders_tools,
)
from sc_chains.chat_model import ChatLogprobModel
from sc_chains.middleware import LecoMiddleware

QWEN25_TEMPLATE = (Path(__file__).parent / "qwen25_chat_template.jinja").read_text()
"""Qwen2.5-Instruct's chat template (from the bundled Qwen2.5-Coder-0.5B): it renders ``tools``."""


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def call(name: str, **args: Any) -> str:
    return render_call(name, args)


# -- pure: parsing and rendering ------------------------------------------------------------------
def test_parse_valid_invalid_and_unclosed_calls():
    text = 'Let me compute.\n' + call("add", a=1, b=2) + "\n<tool_call>\n{\"name\": \"multiply\", \"arguments\": {\"a\": 3,\n</tool_call>"
    parsed = parse_tool_calls(text)
    assert parsed.content == "Let me compute."
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("add", {"a": 1, "b": 2})]
    assert parsed.invalid_tool_calls[0]["name"] == "multiply" and "unparsable" in parsed.invalid_tool_calls[0]["error"]
    unclosed = parse_tool_calls('<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\nThe result is 3.')
    assert unclosed.tool_calls[0]["args"] == {"a": 1, "b": 2} and unclosed.content == ""  # trailing text ignored
    for bad in ('<tool_call>[1, 2]</tool_call>', '<tool_call>{"arguments": {}}</tool_call>',
                '<tool_call>{"name": "add", "arguments": [1]}</tool_call>', "<tool_call>"):
        p = parse_tool_calls(bad)
        assert not p.tool_calls and len(p.invalid_tool_calls) == 1
    assert parse_tool_calls("no calls here ").content == "no calls here "
    string_args = parse_tool_calls('<tool_call>{"name": "add", "arguments": "{\\"a\\": 1}"}</tool_call>')
    assert string_args.tool_calls[0]["args"] == {"a": 1}


def test_split_content_holds_back_what_may_become_a_tag():
    assert split_content("Hello", False) == (5, False)
    assert split_content("Hello\n", False) == (5, False)
    assert split_content("Hello\n<tool", False) == (5, False)
    assert split_content("Hello <b>", False) == (9, False)
    assert split_content("Hello\n<tool_call>\n{", False) == (5, True)
    assert split_content("Hello\n", True) == (6, True)


def test_fallback_prompt_is_explicit_and_writes_tool_turns_as_text():
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "3+4?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": {"a": 3, "b": 4}}}]},
        {"role": "tool", "content": "7", "tool_call_id": "c1"},
    ]
    out = fallback_messages(msgs, tools)
    assert out[0]["content"].startswith("Be brief.\n\n# Tools") and json.dumps(tools[0]) in out[0]["content"]
    assert out[2] == {"role": "assistant", "content": call("add", a=3, b=4)}
    assert out[3] == {"role": "user", "content": "<tool_response>\n7\n</tool_response>"}
    assert all(set(m) == {"role", "content"} for m in out)
    assert "<tool_call>" in TOOL_PROMPT


def test_forced_prefill():
    assert forced_prefill(None) is None and forced_prefill("auto") is None and forced_prefill("none") is None
    assert forced_prefill("any") == forced_prefill("required") == '<tool_call>\n{"name": "'
    assert forced_prefill("add") == '<tool_call>\n{"name": "add", "arguments": '
    assert forced_prefill({"type": "function", "function": {"name": "add"}}) == forced_prefill("add")
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"properties": {"a": {}, "b": {}}, "required": ["b", "a"]}}},
             {"type": "function", "function": {"name": "now", "parameters": {"properties": {}}}}]
    assert forced_prefill("add", tools) == '<tool_call>\n{"name": "add", "arguments": {"b": '  # the first required parameter
    assert forced_prefill("now", tools) == '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>'
    assert forced_prefill("any", tools) == '<tool_call>\n{"name": "'
    assert forced_prefill("any", tools[:1]) == forced_prefill("add", tools)  # the only tool


# -- the HF adapter renders tools through the model's own template when it can -----------------
def qwen_style_tiny() -> HFModel:
    model, tokenizer = build_tiny_random()
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = QWEN25_TEMPLATE
    return HFModel(model, tok, name="tiny-random-qwen-template", coalesce=False)


def test_template_with_tools_gets_them_natively():
    native = qwen_style_tiny()
    plain = tiny_random_model()
    assert template_renders_tools(native.tokenizer) and native.capabilities.tool_template
    assert not template_renders_tools(plain.tokenizer) and not plain.capabilities.tool_template
    tools = [{"type": "function", "function": {"name": "add", "description": "Add.", "parameters": {"type": "object"}}}]
    history = [
        HumanMessage("3+4?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 3, "b": 4}, "id": "c1"}]),
        ToolMessage("7", tool_call_id="c1"),
    ]
    text = native.prompt_text(native.request(history, tools=tools))
    assert "# Tools" in text and '"name": "add"' in text and "You are Qwen" in text
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 3, "b": 4}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\n7\n</tool_response><|im_end|>" in text
    fallback = plain.prompt_text(plain.request(history, tools=tools))
    assert "# Tools" in fallback and "<tool_response>\n7\n</tool_response>" in fallback and "You are Qwen" not in fallback


def test_forced_tool_choice_on_tiny_random_never_crashes():
    chat = ChatLogprobModel(tiny_random_model(), max_tokens=40)
    bound = chat.bind_tools([add, multiply], tool_choice="add")
    msg = bound.invoke("What is 3 + 4?")
    assert msg.content == "" and msg.response_metadata["prefill"].startswith("<tool_call>")
    assert len(msg.tool_calls) + len(msg.invalid_tool_calls) == 1  # gibberish args: invalid, not a crash
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    streamed = list(bound.stream("What is 3 + 4?"))
    merged = streamed[0]
    for c in streamed[1:]:
        merged = merged + c
    assert merged.content == "" and len(merged.tool_call_chunks) == 1
    assert len(merged.response_metadata["logprobs"]["content"]) == len(msg.response_metadata["logprobs"]["content"])


# -- ChatLogprobModel over a scripted adapter ------------------------------------------------------
def scripted(*replies: Any, **kw: Any) -> tuple[ChatLogprobModel, FakeLogprobModel]:
    fake = FakeLogprobModel(replies=list(replies), **kw)
    return ChatLogprobModel(fake), fake


def merged_stream(runnable, prompt) -> Any:
    chunks = list(runnable.stream(prompt))
    out = chunks[0]
    for c in chunks[1:]:
        out = out + c
    return chunks, out


def test_bind_tools_invoke_and_stream_agree():
    reply = "I will add.\n" + call("add", a=3, b=4) + "\n" + call("multiply", a=7, b=2)
    chat, fake = scripted(reply, reply)
    bound = chat.bind_tools([add, multiply])
    msg = bound.invoke("3+4 then *2?")
    assert msg.content == "I will add."
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("add", {"a": 3, "b": 4}), ("multiply", {"a": 7, "b": 2})]
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    req = fake.calls[-1]
    assert "# Tools" in req.messages[0]["content"] and "<tool_response>" in req.stop
    chunks, merged = merged_stream(bound, "3+4 then *2?")
    assert merged.content == "I will add." and "<tool_call>" not in "".join(c.content for c in chunks)
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("add", {"a": 3, "b": 4}), ("multiply", {"a": 7, "b": 2})]
    assert merged.response_metadata["logprobs"]["content"] == msg.response_metadata["logprobs"]["content"]


def test_malformed_json_is_an_invalid_tool_call_not_a_crash():
    chat, _ = scripted('<tool_call>\n{"name": "add", "arguments": {"a": 3, "b": }\n</tool_call>', default=None)
    msg = chat.bind_tools([add]).invoke("3+4?")
    assert msg.tool_calls == [] and msg.invalid_tool_calls[0]["name"] == "add"
    assert "unparsable tool call" in msg.invalid_tool_calls[0]["error"]


def test_tool_choice_forces_a_call_by_prefill_or_instruction():
    chat, fake = scripted('3, "b": 4}}\n</tool_call>')
    msg = chat.bind_tools([add, multiply], tool_choice="add").invoke("q")
    assert fake.calls[-1].prefill == '<tool_call>\n{"name": "add", "arguments": {"a": '
    assert msg.tool_calls[0]["name"] == "add" and msg.tool_calls[0]["args"] == {"a": 3, "b": 4}
    no_prefill, fake2 = scripted(call("add", a=1, b=2), prefill=False)
    msg = no_prefill.bind_tools([add, multiply], tool_choice="add").invoke("q")
    assert fake2.calls[-1].messages[-1]["content"].startswith("Answer with a tool call") and msg.tool_calls[0]["args"] == {"a": 1, "b": 2}
    with pytest.raises(InvalidRequestError, match="tool_choice"):
        chat.bind_tools([add], tool_choice="subtract")
    none_chat, fake3 = scripted("plain answer")
    assert none_chat.bind_tools([add], tool_choice="none").invoke("q").content == "plain answer"
    assert "# Tools" not in fake3.calls[-1].messages[0]["content"]


class Answer(BaseModel):
    """The final answer."""

    value: int
    unit: str


class AnswerDict(TypedDict):
    """The final answer."""

    value: int
    unit: str


ANSWER_SCHEMA = {"title": "Answer", "description": "The final answer.", "type": "object",
                 "properties": {"value": {"type": "integer"}, "unit": {"type": "string"}}, "required": ["value", "unit"]}


@pytest.mark.parametrize("schema", [Answer, AnswerDict, ANSWER_SCHEMA], ids=["pydantic", "typeddict", "json-schema"])
def test_with_structured_output(schema):
    name = "AnswerDict" if schema is AnswerDict else "Answer"
    chat, fake = scripted('5, "unit": "apples"}}\n</tool_call>')
    out = chat.with_structured_output(schema).invoke("How many apples?")
    assert (out.model_dump() if isinstance(out, BaseModel) else out) == {"value": 5, "unit": "apples"}
    assert fake.calls[-1].prefill == f'<tool_call>\n{{"name": "{name}", "arguments": {{"value": '


def test_with_structured_output_include_raw_keeps_a_parse_failure():
    chat, _ = scripted('"many"}}\n</tool_call>')
    out = chat.with_structured_output(Answer, include_raw=True).invoke("How many apples?")
    assert isinstance(out["raw"], AIMessage) and out["parsed"] is None and out["parsing_error"] is not None


# -- agents --------------------------------------------------------------------------------------
def test_agent_with_two_tools_round_trip_on_a_scripted_adapter():
    chat, fake = scripted(
        "Let me add first.\n" + call("add", a=3, b=4),
        call("multiply", a=7, b=6),
        "The answer is 42.",
    )
    out = create_agent(chat, tools=[add, multiply]).invoke({"messages": [{"role": "user", "content": "(3+4)*6?"}]})
    kinds = [(type(m).__name__, m.content) for m in out["messages"]]
    assert kinds == [("HumanMessage", "(3+4)*6?"), ("AIMessage", "Let me add first."), ("ToolMessage", "7"),
                     ("AIMessage", ""), ("ToolMessage", "42"), ("AIMessage", "The answer is 42.")]
    third = fake.calls[2].messages  # the tool results went back through the (text) template
    assert third[-1] == {"role": "user", "content": "<tool_response>\n42\n</tool_response>"}
    assert third[-2]["content"] == call("multiply", a=7, b=6)


def test_leco_in_an_agent_with_tools_leaves_tool_turns_and_corrects_the_answer():
    draft = FakeReply(
        "Step 1: Tom has 3 apples.\nStep 2: He buys 4 more.\nStep 3: 3 + 4 = 8.\nThe answer is 8.",
        overrides={"Step 1: Tom has 3 apples.": -0.001, "3 + 4 = 8.": -2.5},
    )
    rethink = "Step 2: He buys 4 more.\nStep 3: 3 + 4 = 7.\nThe answer is 7."
    chat, _ = scripted(call("add", a=3, b=4), draft, rethink, rethink)
    out = create_agent(chat, tools=[add], middleware=[LecoMiddleware()]).invoke(
        {"messages": [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many?"}]}
    )
    msgs = out["messages"]
    assert msgs[1].tool_calls[0]["args"] == {"a": 3, "b": 4} and "sc_chains" not in msgs[1].response_metadata
    final = msgs[-1]
    assert final.content.endswith("The answer is 7.")
    assert final.response_metadata["sc_chains"]["leco"]["status"] == "corrected"


@pytest.mark.slow
def test_agent_with_two_tools_round_trip_on_the_embedded_model():
    from langchain.agents.middleware import AgentMiddleware

    class FirstTurnCallsATool(AgentMiddleware):
        """Force a tool call on the first model turn (the 135M model rarely decides to on its own)."""

        def wrap_model_call(self, request, handler):
            used = any(isinstance(m, ToolMessage) for m in request.messages)
            return handler(request.override(tool_choice="none" if used else "add"))

    chat = ChatLogprobModel("hf:default", max_tokens=48)
    agent = create_agent(chat, tools=[add, multiply], middleware=[FirstTurnCallsATool(), LecoMiddleware()])
    out = agent.invoke({"messages": [{"role": "user", "content": "Use the add tool: what is 3 + 4?"}]})
    msgs = out["messages"]
    assert msgs[1].tool_calls and msgs[1].tool_calls[0]["name"] == "add", msgs[1]
    assert isinstance(msgs[2], ToolMessage)
    assert isinstance(msgs[-1], AIMessage) and not msgs[-1].tool_calls and msgs[-1].content


def test_critique_in_an_agent_with_tools_revises_only_the_final_answer():
    from sc_chains.testing import FakeLogprobChatModel
    from sc_chains.middleware import CritiqueReviseMiddleware

    chat, fake = scripted(call("add", a=3, b=4), call("multiply", a=7, b=1), "The answer is 8.", "The answer is 7.")
    critic = FakeLogprobChatModel(replies=["3 + 4 is 7.\nVerdict: incorrect", "Verdict: correct"])
    out = create_agent(chat, tools=[add, multiply], middleware=[CritiqueReviseMiddleware(critic=critic)]).invoke(
        {"messages": [{"role": "user", "content": "What is 3 + 4?"}]}
    )
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai", "tool", "ai"]
    assert out["messages"][-1].content == "The answer is 7."
    assert len(critic.calls) == 2  # the draft and the revision; neither tool-call turn was critiqued


def test_s2a_in_an_agent_with_tools_rewrites_the_question_once():
    from sc_chains.testing import FakeLogprobChatModel
    from sc_chains.middleware import S2AMiddleware

    rewriter = FakeLogprobChatModel(replies=[
        "Unbiased text context (includes all content except user's bias): Tom has 3 apples. He buys 4 more.\n"
        "Question/Query (does not include user bias/preference): How many apples does he have?"
    ])  # fmt: skip
    chat, fake = scripted(call("add", a=3, b=4), "The answer is 7.")
    question = "Tom has 3 apples. I think the answer is 9. He buys 4 more. How many apples does he have?"
    out = create_agent(chat, tools=[add, multiply], middleware=[S2AMiddleware(rewriter)]).invoke(
        {"messages": [{"role": "user", "content": question}]}
    )
    assert out["messages"][-1].content == "The answer is 7." and len(rewriter.calls) == 1
    seen = [m["content"] for m in fake.calls[0].messages if m["role"] == "user"][-1]
    assert "I think the answer is 9" not in seen and "How many apples" in seen


def test_arguments_a_tool_does_not_declare_are_dropped_visibly():
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {"a": {}, "b": {}}}}}]
    parsed = parse_tool_calls(call("add", a=1, b=2, type="integer"), tools)
    assert parsed.tool_calls[0]["args"] == {"a": 1, "b": 2} and parsed.tool_calls[0]["dropped"] == ["type"]
    open_schema = [{"type": "function", "function": {"name": "add", "parameters": {"properties": {"a": {}}, "additionalProperties": True}}}]
    assert parse_tool_calls(call("add", a=1, extra=2), open_schema).tool_calls[0]["args"] == {"a": 1, "extra": 2}
    chat, _ = scripted(call("add", a=3, b=4, type="integer"), call("add", a=3, b=4, type="integer"))
    bound = chat.bind_tools([add])
    msg = bound.invoke("3+4?")
    assert msg.tool_calls[0]["args"] == {"a": 3, "b": 4}
    assert msg.response_metadata["dropped_tool_args"] == {msg.tool_calls[0]["id"]: ["type"]}
    _, merged = merged_stream(bound, "3+4?")
    assert merged.tool_calls[0]["args"] == {"a": 3, "b": 4} and list(merged.response_metadata["dropped_tool_args"].values()) == [["type"]]
