"""Tool calling for models that only produce text: rendering tools into the prompt, parsing calls.

One wire format, Qwen2.5's (also Hermes' and many fine-tunes'): the model answers a call as

    <tool_call>
    {"name": "add", "arguments": {"a": 1, "b": 2}}
    </tool_call>

(one block per call; text before the first block is the message content) and reads results as
``<tool_response>...</tool_response>``.

- A chat template that renders ``tools=`` itself (Qwen2.5's does) gets the tools and the
  structured messages (``tool_calls`` on assistant turns, ``role: "tool"`` results) as they are:
  :func:`template_renders_tools` decides.
- Any other model (SmolLM2, ``hf:tiny-random``, a plain completion API) gets
  :func:`fallback_messages`: the same conversation as plain text messages, with
  :data:`TOOL_PROMPT` and the tools' JSON schemas in the system message, earlier calls written
  out in the wire format and results as user turns in ``<tool_response>`` tags. Explicit: the
  prompt says exactly what the model must write.

:func:`parse_tool_calls` reads a reply; a block whose JSON does not parse (or lacks a name)
becomes an *invalid* call with the error, never an exception. Pure: no LangChain, no torch.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "OPEN_TAG",
    "TOOL_PROMPT",
    "ParsedReply",
    "fallback_messages",
    "split_content",
    "forced_prefill",
    "has_tool_turns",
    "parse_tool_calls",
    "render_call",
    "template_renders_tools",
]

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"

TOOL_PROMPT = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>\n'
    "Function results come back within <tool_response></tool_response> XML tags. When you have "
    "what you need, answer without a tool call."
)
"""The system text for templates without a tools section (``{tools}``: one JSON schema a line);
the same words and format as Qwen2.5's own template, so one parser reads both."""

_BLOCK = re.compile(re.escape(OPEN_TAG) + r"(.*?)(?:" + re.escape(CLOSE_TAG) + r"|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ParsedReply:
    """A reply split into its text and its tool calls."""

    content: str
    """The text before the first ``<tool_call>`` block (trailing whitespace dropped); text after
    the calls (a model that goes on to imagine the results) is not part of the message."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Valid calls: ``{"name", "args" (dict), "id"}``."""
    invalid_tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """Unreadable calls: ``{"name" (or None), "args" (the raw text), "id", "error"}``."""


def template_renders_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template has its own tools section (it reads ``tools``)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):  # named templates: the default one, or a "tool_use" one
        return "tool_use" in template or any(_reads_tools(t) for t in template.values())
    return isinstance(template, str) and _reads_tools(template)


def _reads_tools(template: Any) -> bool:
    return isinstance(template, str) and re.search(r"\btools\b", template) is not None


def has_tool_turns(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the conversation holds tool calls or tool results."""
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)


def render_call(name: str, arguments: Any) -> str:
    """One call in the wire format."""
    return f'{OPEN_TAG}\n{{"name": {json.dumps(name)}, "arguments": {json.dumps(arguments, ensure_ascii=False)}}}\n{CLOSE_TAG}'


def fallback_messages(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The conversation as plain ``{"role", "content"}`` text messages, tools in the system turn."""
    out: list[dict[str, str]] = []
    for m in messages:
        role, content = m["role"], m.get("content") or ""
        if role == "assistant" and m.get("tool_calls"):
            calls = [render_call(*_name_args(c)) for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": "\n".join([content, *calls] if content else calls)})
        elif role == "tool":
            block = f"<tool_response>\n{content}\n</tool_response>"
            if out and out[-1]["role"] == "user" and out[-1]["content"].startswith("<tool_response>"):
                out[-1]["content"] += "\n" + block  # consecutive results: one user turn
            else:
                out.append({"role": "user", "content": block})
        else:
            out.append({"role": role, "content": content})
    if tools:
        prompt = TOOL_PROMPT.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{prompt}"}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def _name_args(call: Mapping[str, Any]) -> tuple[str, Any]:
    fn = call.get("function", call)
    args = fn.get("arguments", fn.get("args", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            pass
    return str(fn.get("name", "")), args


def forced_prefill(tool_choice: Any, tools: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """The reply prefix that forces a call (``None`` for ``"auto"``, ``"none"`` or no choice).

    ``"any"``/``"required"``/``True``: a call to some tool (to the only tool, when there is one);
    a tool name (or ``{"function": {"name"}}``): a call to that tool, its arguments opened
    with the first parameter's name (a small model then only fills in values); a tool without
    parameters gets its whole call. The caller checks that a named tool exists.
    """
    if tool_choice in (None, False, "auto", "none"):
        return None
    names = [t["function"]["name"] for t in tools]
    if tool_choice in (True, "any", "required"):
        if len(names) != 1:
            return f'{OPEN_TAG}\n{{"name": "'
        tool_choice = names[0]
    name = tool_choice
    if isinstance(tool_choice, Mapping):  # {"type": "function", "function": {"name": ...}}
        name = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
    head = f'{OPEN_TAG}\n{{"name": {json.dumps(str(name))}, "arguments": '
    spec = next((t["function"] for t in tools if t["function"]["name"] == name), None)
    if spec is None:
        return head
    params = spec.get("parameters") or {}
    props = list((params.get("properties") or {}).keys())
    if not props:
        return head + "{}}\n" + CLOSE_TAG
    first = next((p for p in params.get("required") or () if p in props), props[0])
    return head + "{" + json.dumps(first) + ": "


def split_content(text: str, final: bool = False) -> tuple[int, bool]:
    """``(n, complete)``: the first ``n`` characters of a reply being streamed are content for sure.

    The content is the text before the first ``<tool_call>``, trailing whitespace dropped
    (:func:`parse_tool_calls` agrees). Until the tag appears (or ``final``) a tail that may
    still turn into ``"<whitespace><tool_call>"`` is held back; ``complete`` is ``True`` once
    the content can no longer grow.
    """
    at = text.find(OPEN_TAG)
    if at >= 0:
        return len(text[:at].rstrip()), True
    if final:
        return len(text), True
    stripped = text.rstrip()
    for n in range(min(len(OPEN_TAG) - 1, len(stripped)), 0, -1):
        if OPEN_TAG.startswith(stripped[-n:]):
            return len(stripped[:-n].rstrip()), False
    return len(stripped), False


def parse_tool_calls(text: str, tools: Sequence[Mapping[str, Any]] = ()) -> ParsedReply:
    """Split ``text`` into content and tool calls (a missing closing tag is tolerated).

    With ``tools``, arguments a tool does not declare (small models copy schema keys such as
    ``"type": "integer"`` into their arguments) are dropped from a call and listed in its
    ``"dropped"`` entry, unless the tool's schema allows additional properties.
    """
    if OPEN_TAG not in text:
        return ParsedReply(text)
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for match in _BLOCK.finditer(text):
        raw = match.group(1).strip()
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        try:
            obj = _first_json(raw)
            if not isinstance(obj, Mapping) or not isinstance(obj.get("name"), str) or not obj["name"]:
                raise ValueError('expected {"name": <function-name>, "arguments": {...}}')
            args = obj.get("arguments", obj.get("parameters", {}))
            if isinstance(args, str):
                args = json.loads(args)
            if not isinstance(args, Mapping):
                raise ValueError(f"arguments must be a JSON object, got {type(args).__name__}")
            calls.append(_declared_only({"name": obj["name"], "args": dict(args), "id": call_id}, tools))
        except ValueError as exc:
            invalid.append({"name": _guess_name(raw), "args": raw, "id": call_id, "error": f"unparsable tool call: {exc}"})
    end, _ = split_content(text, final=True)
    return ParsedReply(text[:end], calls, invalid)


def _declared_only(call: dict[str, Any], tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    spec = next((t["function"] for t in tools if t["function"].get("name") == call["name"]), None)
    params = (spec or {}).get("parameters") or {}
    declared = params.get("properties")
    if spec is None or not isinstance(declared, Mapping) or params.get("additionalProperties") is True:
        return call
    dropped = sorted(k for k in call["args"] if k not in declared)
    if dropped:
        call = {**call, "args": {k: v for k, v in call["args"].items() if k in declared}, "dropped": dropped}
    return call


def _first_json(raw: str) -> Any:
    """The first JSON value in ``raw`` (text after it, e.g. a model that forgot the closing
    tag and went on writing, is ignored)."""
    value, _ = json.JSONDecoder().raw_decode(raw)
    return value


def _guess_name(raw: str) -> str | None:
    found = re.search(r'"name"\s*:\s*"([^"]+)"', raw)
    return found.group(1) if found else None
