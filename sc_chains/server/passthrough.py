"""Tool-call turns: an agent's request with tools, tool calls or tool results goes to the upstream
model uncorrected (a correction chain answers a question; it cannot call the agent's tools).

- An OpenAI-compatible upstream (:class:`~adapters.openai_compat.OpenAIModel`) gets the body
  as sent (its own model name, its own key), and the reply comes back as is.
- A LangChain chat model upstream (:class:`~adapters.langchain.ChatModelAdapter`) is called with
  the tools bound, and its message converted back to OpenAI's shape.
- A model without tool calling (a local HF model, the fakes) answers in text: tool calls and
  results are shown to it as text, and ``sc_chains.passthrough`` says ``"text"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapters.base import LogprobModel

__all__ = ["passthrough"]

_MAX_UPSTREAM_S = 600.0


async def passthrough(upstream: LogprobModel, body: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
    """``{"message", "finish_reason", "usage", "mode"}`` for one tool turn."""
    from adapters.langchain import ChatModelAdapter
    from adapters.openai_compat import OpenAIModel

    if isinstance(upstream, OpenAIModel):
        return await _openai(upstream, body)
    if isinstance(upstream, ChatModelAdapter):
        return await _langchain(upstream, body, call)
    return await _text(upstream, body, call)


async def _openai(upstream: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    import httpx

    from adapters.errors import MalformedResponseError, ServerRejectedRequestError, ServerUnreachableError

    payload = {k: v for k, v in body.items() if k not in ("sc_chains", "stream", "stream_options")}
    payload["model"] = upstream.name
    args = dict(upstream._client_args)
    args["timeout"] = httpx.Timeout(min(_MAX_UPSTREAM_S, args["timeout"].read or _MAX_UPSTREAM_S), connect=10.0)
    try:
        async with httpx.AsyncClient(**args) as client:
            resp = await client.post("/chat/completions", json=payload)
    except httpx.HTTPError as exc:
        raise ServerUnreachableError(upstream.base_url, type(exc).__name__) from None
    if resp.status_code >= 400:
        raise ServerRejectedRequestError(f"{upstream.base_url}/chat/completions", resp.status_code, resp.text[:300])
    try:
        data = resp.json()
        choice = data["choices"][0]
        return {"message": choice["message"], "finish_reason": choice.get("finish_reason") or "stop",
                "usage": _usage(data.get("usage") or {}), "mode": "upstream"}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise MalformedResponseError(f"no choices[0].message ({exc})", resp.text[:300]) from None


def _usage(u: Mapping[str, Any]) -> dict[str, int]:
    details = u.get("prompt_tokens_details") or {}
    return {"calls": 1, "prompt_tokens": int(u.get("prompt_tokens") or 0),
            "completion_tokens": int(u.get("completion_tokens") or 0),
            "cached_tokens": int(details.get("cached_tokens") or 0)}


async def _langchain(upstream: Any, body: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
    from langchain_core.messages import convert_to_messages, convert_to_openai_messages

    model = upstream.chat_model
    if body.get("tools"):
        kw = {"tool_choice": body["tool_choice"]} if body.get("tool_choice") not in (None, "auto") else {}
        model = model.bind_tools(list(body["tools"]), **kw)
    stop = list(call.get("stop") or ()) or None
    msg = await model.ainvoke(convert_to_messages(list(body["messages"])), stop=stop)
    out = convert_to_openai_messages(msg)
    um = getattr(msg, "usage_metadata", None) or {}
    usage = {"calls": 1, "prompt_tokens": int(um.get("input_tokens") or 0),
             "completion_tokens": int(um.get("output_tokens") or 0), "cached_tokens": 0}
    finish = "tool_calls" if getattr(msg, "tool_calls", None) else "stop"
    if out.get("content") in ("", []) and finish == "tool_calls":
        out["content"] = None
    return {"message": out, "finish_reason": finish, "usage": usage, "mode": "upstream"}


async def _text(upstream: LogprobModel, body: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
    messages = [_as_text(m) for m in body["messages"]]
    gen = await upstream.agenerate(messages, **dict(call))
    usage = {"calls": 1, "prompt_tokens": gen.usage.prompt_tokens,
             "completion_tokens": gen.usage.completion_tokens, "cached_tokens": gen.usage.cached_tokens}
    return {"message": {"role": "assistant", "content": gen.text}, "finish_reason": gen.finish_reason,
            "usage": usage, "mode": "text"}


def _as_text(m: Mapping[str, Any]) -> dict[str, str]:
    """A message for a model without tool calling: tool calls and results written out."""
    content = m.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content)
    content = content or ""
    if m.get("tool_calls"):
        calls = [{"name": (c.get("function") or {}).get("name"), "arguments": (c.get("function") or {}).get("arguments")}
                 for c in m["tool_calls"]]
        content = (content + "\n" if content else "") + "Tool calls: " + json.dumps(calls)
    if m.get("role") == "tool":
        return {"role": "user", "content": f"Tool result ({m.get('tool_call_id', '')}): {content}"}
    role = m.get("role")
    return {"role": "system" if role == "developer" else str(role), "content": content}
