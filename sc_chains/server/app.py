"""The ASGI app (Starlette): ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions`` (scoring only: :mod:`sc_chains.server.scoring`).

The requested model name picks the chain; the chain runs with ``ainvoke`` on the one shared
upstream model. A request's work runs in a task that is cancelled when the client disconnects
or the request times out. Streaming sends only the final answer (the chain finishes first, so
no draft can leak), in token-sized chunks, then ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from adapters.base import LogprobModel
from adapters.errors import (CallTimeoutError, ContextWindowExceededError, InvalidRequestError,
                             LogprobsUnavailableError, RetriesExhaustedError, ScoringUnavailableError,
                             ServerRejectedRequestError, ServerUnreachableError)
from adapters.secrets import scrub
from sc_chains.server.chains import ChainResult, ChainSet
from sc_chains.server.config import ServerConfig
from sc_chains.server.passthrough import passthrough
from sc_chains.server.schemas import (APIError, ChatRequest, bad, choice, chunk, completion, new_id,
                                      parse_chat_request)

__all__ = ["create_app"]

log = logging.getLogger("sc_chains.server")


class _State:
    """What the routes share: settings, the chains, the concurrency gate, a live count."""

    def __init__(self, upstream: LogprobModel, config: ServerConfig) -> None:
        self.config = config
        self.chains = ChainSet(upstream, cache_size=config.graph_cache_size, run_programs=config.run_programs)
        self.gate = asyncio.Semaphore(config.max_concurrency)
        self.in_flight = 0
        self.served = 0
        self.created = int(time.time())


def create_app(model: Any, config: ServerConfig | None = None) -> Starlette:
    """The server app over ``model`` (any :func:`~adapters.specs.resolve_model` input)."""
    from adapters.specs import resolve_model

    config = config or ServerConfig()
    state = _State(resolve_model(model), config)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "upstream": state.chains.upstream.name, "chains": state.chains.names,
                             "in_flight": state.in_flight, "served": state.served})

    async def models(request: Request) -> Response:
        _authorize(request, config)
        data = [{"id": name, "object": "model", "created": state.created, "owned_by": "sc-chains",
                 "description": spec.description} for name, spec in state.chains.specs.items()]
        return JSONResponse({"object": "list", "data": data})

    app = Starlette(routes=[Route("/health", health), Route("/v1/models", _guard(models)),
                            Route("/v1/chat/completions", _counted(_chat, state), methods=["POST"]),
                            Route("/v1/completions", _counted(_score, state), methods=["POST"])])
    app.state.sc_chains = state
    return app


def _counted(endpoint: Any, state: _State) -> Any:
    """A POST route: ``endpoint(request, state)`` under :func:`_guard`, counted in flight and served."""
    guarded = _guard(lambda request: endpoint(request, state))

    async def run(request: Request) -> Response:
        state.in_flight += 1
        try:
            return await guarded(request)
        finally:
            state.in_flight -= 1
            state.served += 1
    return run


def _guard(endpoint: Any) -> Any:
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except APIError as exc:
            return _error(exc)
    return run


class _JSON(JSONResponse):
    """JSON encoded once, compactly; values JSON cannot hold (in a chain's trace) become strings."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _error(exc: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _authorize(request: Request, config: ServerConfig) -> None:
    if config.api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    ok = hmac.compare_digest(given.strip().encode("utf-8"), config.api_key.encode("utf-8"))
    if scheme.lower() != "bearer" or not ok:
        raise APIError(401, "missing or wrong API key: send 'Authorization: Bearer KEY' with the server's key",
                       code="invalid_api_key")


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    too_big = APIError(413, f"the request body is larger than {limit} bytes; send a shorter prompt", param="body",
                       code="body_too_large")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise too_big
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise bad("body", bytes(data[:60]), "send a JSON object") from None


async def _chat(request: Request, state: _State) -> Response:
    config = state.config
    _authorize(request, config)
    req = parse_chat_request(await _read_json(request, config.max_body_bytes),
                             max_prompt_chars=config.max_prompt_chars, max_tokens_limit=config.max_tokens_limit)
    if req.model not in state.chains.specs:
        raise _unknown_model(req.model, state)
    work = _prepare(req, state) if req.n == 1 else _prepare_n(req, state)  # validated before any response
    if req.stream:
        return StreamingResponse(_stream(request, req, work, state), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    result = await _guarded(request, work, state)
    return _JSON(_completion(req, result))


async def _score(request: Request, state: _State) -> Response:
    """``POST /v1/completions``: the prompt's token logprobs (echo form; no generation)."""
    from sc_chains.server.scoring import echo_completion, parse_score_request

    _authorize(request, state.config)
    req = parse_score_request(await _read_json(request, state.config.max_body_bytes),
                              max_prompt_chars=state.config.max_prompt_chars)
    if req.model not in state.chains.specs:
        raise _unknown_model(req.model, state)

    async def work() -> Any:
        return (await state.chains.upstream.ascore_texts([("", req.prompt)]))[0]

    return _JSON(echo_completion(req, await _guarded(request, work, state)))


def _unknown_model(model: str, state: _State) -> APIError:
    return APIError(404, f"the model {model!r} does not exist; this server's models (chains) are: "
                    f"{', '.join(state.chains.names)}", param="model", code="model_not_found")


def _prepare(req: ChatRequest, state: _State) -> Any:
    """A zero-argument coroutine factory for the request's work (raises APIError when invalid)."""
    call = _call_args(req)
    if req.is_tool_turn:
        return lambda: _tool_turn(req, state, call)
    chains = state.chains
    trace = req.options.get("trace", True)
    if not isinstance(trace, bool):
        raise bad("sc_chains.trace", trace, "pass true or false")
    try:
        if req.model == "baseline":
            chains.settings(req.model, req.options, {})
            return lambda: chains.run(req.model, None, "", messages=_plain_messages(req.messages), call=call,
                                      trace=trace)
        settings = chains.settings(req.model, req.options, {"max_tokens": req.max_tokens,
                                                           "temperature": req.temperature, "seed": req.seed})
        graph = chains.graph(req.model, settings)
    except (InvalidRequestError, LogprobsUnavailableError) as exc:
        raise _as_api_error(exc) from None
    question = question_of(req.messages)
    return lambda: chains.run(req.model, graph, question, trace=trace, top_logprobs=req.top_logprobs)


def _prepare_n(req: ChatRequest, state: _State) -> Any:
    """``n > 1``: the request's work ``n`` times at once (seeds ``seed + i``), one list of results."""
    if req.is_tool_turn:
        raise bad("n", req.n, "a tool turn passes through with one choice: pass n=1")
    works = [_prepare(replace(req, n=1, seed=None if req.seed is None else req.seed + i), state) for i in range(req.n)]

    async def all_of() -> list[Any]:
        return list(await asyncio.gather(*(w() for w in works)))

    return all_of


def _call_args(req: ChatRequest) -> dict[str, Any]:
    call: dict[str, Any] = {"stop": list(req.stop) or None, "seed": req.seed, "top_logprobs": req.top_logprobs}
    if req.max_tokens is not None:
        call["max_tokens"] = req.max_tokens
    for key in ("temperature", "top_p"):
        if getattr(req, key) is not None:
            call[key] = getattr(req, key)
    return call


def _plain_messages(messages: Any) -> list[dict[str, str]]:
    out = []
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, list):
            content = "".join(p["text"] for p in content)
        out.append({"role": "system" if m["role"] == "developer" else m["role"], "content": content})
    return out


def question_of(messages: Any) -> str:
    """The chain's question: the last user turn, after any system text and earlier turns."""
    plain = _plain_messages(messages)
    if plain[-1]["role"] != "user":
        raise bad("messages", f"<last role {plain[-1]['role']!r}>", "end the conversation with the user's turn")
    *earlier, last = plain
    system = [m["content"] for m in earlier if m["role"] == "system" and m["content"]]
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in earlier if m["role"] != "system"]
    parts = system + (["Conversation so far:\n" + "\n".join(turns)] if turns else []) + [last["content"]]
    return "\n\n".join(parts)


async def _tool_turn(req: ChatRequest, state: _State, call: dict[str, Any]) -> dict[str, Any]:
    out = await passthrough(state.chains.upstream, req.raw, call)
    ext = {"chain": None, "passthrough": out["mode"], "upstream": state.chains.upstream.name,
           "cost": {**out["usage"], "total_tokens": out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]}}
    return {**out, "extension": ext}


async def _guarded(request: Request, work: Any, state: _State) -> Any:
    """Run the work under the concurrency gate and the timeout; cancel it if the client leaves."""
    task = asyncio.ensure_future(_gated(work, state))
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, timeout=state.config.request_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return _unwrap(task)
        if watcher in done:
            raise APIError(499, "the client closed the connection; its work was cancelled", code="client_closed")
        raise APIError(504, f"the request took longer than {state.config.request_timeout_s:g} s and was cancelled",
                       code="timeout")
    finally:
        for t in (task, watcher):
            if not t.done():
                t.cancel()


async def _gated(work: Any, state: _State) -> Any:
    async with state.gate:
        return await work()


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (bounded: _guarded cancels it when the work ends or times out)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _unwrap(task: asyncio.Future) -> Any:
    exc = task.exception()
    if exc is None:
        return task.result()
    if isinstance(exc, APIError):
        raise exc
    if isinstance(exc, (InvalidRequestError, LogprobsUnavailableError)):
        raise _as_api_error(exc) from exc
    if isinstance(exc, ScoringUnavailableError):
        raise APIError(400, str(exc), param="model", code="scoring_unavailable") from exc
    if isinstance(exc, ContextWindowExceededError):
        raise APIError(400, str(exc), param="messages", code="context_length_exceeded") from exc
    if isinstance(exc, CallTimeoutError):
        raise APIError(504, f"the upstream model timed out: {exc}", code="timeout") from exc
    if isinstance(exc, (ServerUnreachableError, ServerRejectedRequestError, RetriesExhaustedError)):
        raise APIError(502, f"the upstream model failed: {exc}", code="upstream_error") from exc
    message = scrub(f"{type(exc).__name__}: {exc}")
    log.error("request failed: %s", message)
    log.debug("request failed", exc_info=exc)  # the traceback, at --log-level debug only
    raise APIError(500, f"the chain failed: {message}", code="internal_error") from exc


def _as_api_error(exc: Exception) -> APIError:
    if isinstance(exc, InvalidRequestError):
        param = exc.param if exc.param.startswith("sc_chains.") else f"sc_chains.{exc.param}"
        return bad(param, exc.value, exc.fix)
    return APIError(400, str(exc), param="model", code="logprobs_unavailable")


# -- responses ---------------------------------------------------------------------------------------

def _completion(req: ChatRequest, result: Any) -> dict[str, Any]:
    if isinstance(result, list):
        return _completion_n(req, result)
    cid = new_id()
    if isinstance(result, ChainResult):
        logprobs = _logprobs(result, req) if req.logprobs else None
        return completion(cid, req.model, {"role": "assistant", "content": result.text}, result.finish_reason,
                          result.usage, logprobs, result.extension)
    return completion(cid, req.model, result["message"], result["finish_reason"], result["usage"], None,
                      result["extension"])


def _completion_n(req: ChatRequest, results: list[ChainResult]) -> dict[str, Any]:
    """``n`` results as one completion: a choice each (with its own ``sc_chains`` field), the
    usage summed, and the top-level ``sc_chains`` the chain, ``n`` and the summed cost."""
    usage: dict[str, int] = {}
    for r in results:
        for k, v in r.usage.items():
            usage[k] = usage.get(k, 0) + int(v)
    ext = {"chain": req.model, "n": len(results),
           "cost": {**usage, "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)}}
    out = completion(new_id(), req.model, {"role": "assistant", "content": results[0].text}, results[0].finish_reason,
                     usage, None, ext)
    out["choices"] = [choice(i, {"role": "assistant", "content": r.text}, r.finish_reason,
                             _logprobs(r, req) if req.logprobs else None, r.extension) for i, r in enumerate(results)]
    return out


def _logprobs(result: ChainResult, req: ChatRequest) -> dict[str, Any] | None:
    if result.tokens is None:
        return None
    k = req.top_logprobs
    return {"content": [{**t.to_openai(), "top_logprobs": [a.to_openai() for a in t.top_logprobs[:k]]}
                        for t in result.tokens], "refusal": None}


def _pieces(result: ChainResult) -> list[tuple[str, Any]]:
    """The final answer in chunks: one per token when the tokens are known, else per word."""
    text = result.text
    if result.tokens:
        offs = [t.offset for t in result.tokens] + [len(text)]
        return [(text[a:b], t) for a, b, t in zip(offs, offs[1:], result.tokens) if b > a or t.token]
    import re

    return [(w, None) for w in re.findall(r"\s*\S+|\s+", text)]


def _sse(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8") + b"\n\n"


async def _stream(request: Request, req: ChatRequest, work: Any, state: _State) -> AsyncIterator[bytes]:
    cid = new_id()
    state.in_flight += 1
    task = asyncio.ensure_future(_guarded(request, work, state))
    try:
        yield _sse(chunk(cid, req.model, {"role": "assistant", "content": ""}))
        while not task.done():  # bounded: _guarded times out after request_timeout_s
            await asyncio.wait({task}, timeout=state.config.keepalive_s)
            if not task.done():
                yield b": keep-alive\n\n"
        try:
            result = task.result()
        except APIError as exc:
            yield _sse(exc.body())
            yield b"data: [DONE]\n\n"
            return
        for piece in _stream_body(req, cid, result):
            yield piece
        yield b"data: [DONE]\n\n"
    finally:
        if not task.done():
            task.cancel()
        state.in_flight -= 1


def _stream_body(req: ChatRequest, cid: str, result: Any) -> list[bytes]:
    if not isinstance(result, ChainResult):  # a tool turn: one delta with the whole message
        msg = {k: v for k, v in result["message"].items() if k != "role"}
        if msg.get("tool_calls"):
            msg["tool_calls"] = [{"index": i, **c} for i, c in enumerate(msg["tool_calls"])]
        out = [_sse(chunk(cid, req.model, msg)),
               _sse(chunk(cid, req.model, {}, finish_reason=result["finish_reason"], extension=result["extension"]))]
        usage = result["usage"]
    else:
        out = []
        for text, tok in _pieces(result):
            lp = None
            if req.logprobs and tok is not None:
                lp = {"content": [{**tok.to_openai(), "top_logprobs": [a.to_openai()
                                                                       for a in tok.top_logprobs[:req.top_logprobs]]}]}
            out.append(_sse(chunk(cid, req.model, {"content": text}, logprobs=lp)))
        out.append(_sse(chunk(cid, req.model, {}, finish_reason=result.finish_reason, extension=result.extension)))
        usage = result.usage
    if req.include_usage:
        out.append(_sse(chunk(cid, req.model, None, usage=usage)))
    return out
