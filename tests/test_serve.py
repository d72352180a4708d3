"""``sc-chains serve`` with real clients (openai SDK, LangChain ChatOpenAI in create_agent, httpx)
against a real uvicorn server on 127.0.0.1; upstreams: the scripted fakes and hf:tiny-random."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from middleware_scripts import DRAFT, FINAL, QUESTION, RETHINK, add, tool_call  # noqa: E402

from adapters.errors import InvalidRequestError  # noqa: E402
from sc_chains.testing import FakeLogprobChatModel  # noqa: E402
from sc_chains.server import ServerConfig, running_server  # noqa: E402
from sc_chains.server.app import question_of  # noqa: E402
from sc_chains.testing import FakeLogprobModel, split_tokens  # noqa: E402

ANSWER = "Step 1: 2 + 3 = 5\nThe answer is 5."
CHAINS = ["baseline", "s2a", "leco", "critique", "s2a+leco", "sc", "leco-vote"]


@pytest.fixture
def served() -> Iterator[tuple[str, FakeLogprobModel]]:
    """A server over a fake upstream that always answers ``ANSWER``."""
    model = FakeLogprobModel(default=ANSWER)
    with running_server(model) as url:
        yield url, model


def _client(url: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=kw.pop("api_key", "unused"), max_retries=0,
                         timeout=kw.pop("timeout", 60), **kw)


def _ask(text: str = "What is 2 + 3?") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- the openai SDK ---------------------------------------------------------------------------------
@pytest.mark.parametrize("chain", CHAINS)
def test_each_chain_answers_with_usage_summed_over_its_calls_logprobs_and_cost(served, chain: str) -> None:
    url, model = served
    before = len(model.calls)
    r = _client(url).chat.completions.create(model=chain, messages=_ask(), logprobs=True, top_logprobs=2)
    calls = len(model.calls) - before
    assert r.model == chain and r.choices[0].message.content == ANSWER
    assert r.choices[0].finish_reason == "stop"
    ext = r.model_extra["sc_chains"]
    cost = ext["cost"]
    assert cost["calls"] == calls >= (1 if chain == "baseline" else 2)
    assert r.usage.prompt_tokens == cost["prompt_tokens"] > 0
    assert r.usage.completion_tokens == cost["completion_tokens"] == calls * len(split_tokens(ANSWER))
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    tokens = r.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == ANSWER
    assert all(len(t.top_logprobs) == 2 for t in tokens)
    assert ext["chain"] == chain and ext["upstream"] == model.name and ext["answer"] in (None, "5")
    if chain != "baseline":
        assert ext["trace"]  # the chain's state, JSON


def test_leco_corrects_a_shaky_draft_and_the_logprobs_cover_the_whole_corrected_answer() -> None:
    model = FakeLogprobModel([DRAFT, RETHINK, RETHINK])
    with running_server(model) as url:
        r = _client(url).chat.completions.create(model="leco", messages=_ask(QUESTION), logprobs=True)
    assert r.choices[0].message.content == FINAL
    trace = r.model_extra["sc_chains"]["trace"]
    assert len(trace["attempts"]) == 3 and trace["stop_reason"] == "agreement"
    assert r.model_extra["sc_chains"]["answer"] == "7"
    tokens = r.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == FINAL  # the kept prefix (draft) + the continuation
    assert r.usage.completion_tokens == len(split_tokens(DRAFT.text)) + 2 * len(split_tokens(RETHINK))


def test_stream_sends_only_the_final_answer_then_usage_and_done() -> None:
    script = ["Step 1: 2 + 3 = 6\nThe answer is 6.", "The sum is wrong.\nVerdict: incorrect", ANSWER,
              "Verdict: correct"]
    model = FakeLogprobModel(script)
    with running_server(model) as url:
        stream = _client(url).chat.completions.create(
            model="critique", messages=_ask(), stream=True, stream_options={"include_usage": True}, logprobs=True,
            extra_body={"sc_chains": {"gate": "off"}})  # the ungated self-critique (the default is gated)
        chunks = list(stream)
        with httpx.stream("POST", f"{url}/chat/completions", json={"model": "baseline", "messages": _ask(),
                                                                    "stream": True}) as raw:
            lines = [line for line in raw.iter_lines() if line]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER and "6" not in text and "Verdict" not in text  # the draft never leaks
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert finals[0].model_extra["sc_chains"]["trace"]["stop_reason"] == "approved"
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens == sum(len(split_tokens(t)) for t in script)
    n = len(split_tokens(ANSWER))
    assert sum(len(c.choices[0].logprobs.content) for c in chunks if c.choices and c.choices[0].logprobs) == n
    assert lines[-1] == "data: [DONE]" and not any('"usage"' in line for line in lines)  # not asked for


async def test_async_client_streams_and_concurrent_requests_all_succeed(served) -> None:
    url, _ = served
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
    results = await asyncio.gather(*(client.chat.completions.create(model=c, messages=_ask())
                                     for c in CHAINS * 4))
    assert [r.choices[0].message.content for r in results] == [ANSWER] * len(CHAINS) * 4
    stream = await client.chat.completions.create(model="leco", messages=_ask(), stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == ANSWER
    await client.close()


def test_chain_settings_in_extra_body_are_applied_and_unknown_ones_name_the_field(served) -> None:
    url, model = served
    client = _client(url)
    client.chat.completions.create(model="leco", messages=_ask(), max_tokens=7,
                                   extra_body={"sc_chains": {"k": 3, "trace": False}})
    assert model.calls[-1].max_tokens == 7 and model.calls[-1].top_logprobs == 3
    for chain in ("s2a", "critique", "s2a+leco"):  # max_tokens bounds every call of the chain
        before = len(model.calls)
        client.chat.completions.create(model=chain, messages=_ask(), max_tokens=5)
        assert {c.max_tokens for c in model.calls[before:]} == {5}
    r = client.chat.completions.create(model="s2a+leco", messages=_ask(), extra_body={"sc_chains": {"leco": {"k": 2}}})
    assert model.calls[-1].top_logprobs == 2 and r.choices[0].message.content == ANSWER
    for options, param in (({"max_rethink": 2}, "sc_chains.max_rethink"),
                           ({"max_rethinks": 99}, "sc_chains.max_rethinks"),
                           ({"leco": {"kk": 1}}, "sc_chains.leco.kk"), ({"trace": "yes"}, "sc_chains.trace")):
        chain = "s2a+leco" if "leco" in options else "leco"
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model=chain, messages=_ask(), extra_body={"sc_chains": options})
        assert err.value.status_code == 400 and err.value.body["param"] == param
        assert param.split(".")[-1] in err.value.body["message"]


def test_unknown_model_is_404_listing_the_chains_and_bad_fields_are_400(served) -> None:
    url, _ = served
    client = _client(url)
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4", messages=_ask())
    assert all(c in err.value.body["message"] for c in CHAINS) and err.value.body["code"] == "model_not_found"
    for kw, param in (({"temperature": 9}, "temperature"), ({"n": 0}, "n"), ({"max_tokens": 0}, "max_tokens"),
                      ({"top_logprobs": 3}, "top_logprobs"), ({"stop": [""]}, "stop")):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="leco", messages=_ask(), **kw)
        assert err.value.body["param"] == param and err.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="leco", messages=[{"role": "assistant", "content": "hi"}])
    assert err.value.body["param"] == "messages"
    assert [m.id for m in client.models.list()] == CHAINS


# -- raw HTTP ---------------------------------------------------------------------------------------
def test_raw_http_limits_and_malformed_bodies() -> None:
    model = FakeLogprobModel(default=ANSWER)
    with running_server(model, ServerConfig(port=0, max_body_bytes=4096, max_prompt_chars=500,
                                            log_level="warning")) as url:
        post = lambda body, **kw: httpx.post(f"{url}/chat/completions", timeout=30, **body, **kw)  # noqa: E731
        r = post({"content": b"{not json"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "body"
        r = post({"json": {"model": "leco", "messages": _ask("x" * 5000)}})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        r = post({"json": {"model": "leco", "messages": _ask("x" * 501)}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages" and "500" in r.json()["error"]["message"]
        r = post({"json": {"model": "leco", "messages": [{"role": "wizard", "content": "x"}]}})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].role"
        r = post({"json": {"model": "leco", "messages": _ask("What is 2 + 3?"), "sc_chains": {"max_tokens": 5}}})
        choice = r.json()["choices"][0]
        assert r.status_code == 200 and choice["message"]["content"] == "".join(split_tokens(ANSWER)[:5])
        assert choice["finish_reason"] == "length" and model.calls[-1].max_tokens == 5
        health = httpx.get(url.removesuffix("/v1") + "/health").json()
        assert health["status"] == "ok" and health["chains"] == CHAINS and health["in_flight"] == 0
        model.add(RuntimeError("upstream exploded"))
        r = post({"json": {"model": "baseline", "messages": _ask()}})
        assert r.status_code == 500 and r.json()["error"]["message"].endswith("RuntimeError: upstream exploded")
    assert not model.calls[0].messages[0]["content"].startswith("x")  # the rejected prompts never ran


def test_api_key_is_required_compared_exactly_and_never_echoed() -> None:
    secret = "sk-test-0123456789"
    with running_server(FakeLogprobModel(default=ANSWER), ServerConfig(port=0, api_key=secret,
                                                                        log_level="warning")) as url:
        for key in ("bad-key", secret[:-1], secret + "x"):
            with pytest.raises(openai.AuthenticationError) as err:
                _client(url, api_key=key).chat.completions.create(model="leco", messages=_ask())
            assert err.value.status_code == 401 and key not in json.dumps(err.value.body)
        r = httpx.get(f"{url}/models")
        assert r.status_code == 401 and secret not in r.text and r.headers["www-authenticate"] == "Bearer"
        ok = _client(url, api_key=secret).chat.completions.create(model="leco", messages=_ask())
        assert ok.choices[0].message.content == ANSWER
        assert httpx.get(url.removesuffix("/v1") + "/health").status_code == 200  # open, for probes
    assert secret not in repr(ServerConfig(api_key=secret))


def test_a_client_that_disconnects_cancels_its_work() -> None:
    release = threading.Event()

    def slow(request: Any) -> str:
        release.wait(30)
        return DRAFT.text

    model = FakeLogprobModel(default=slow)
    with running_server(model) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/chat/completions", json={"model": "leco", "messages": _ask()}, timeout=1.0)
        health = url.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + 30
        while httpx.get(health).json()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(health).json()["in_flight"] == 0  # the server gave up the request at once
        release.set()
        time.sleep(0.5)
        # the draft may or may not have started before the disconnect (the chain graph's first
        # super-step validates the input); either way nothing runs after it
        assert len(model.calls) <= 1  # the chain did not go on to its next call (LECO's rethink)


# -- tool turns and LangChain's ChatOpenAI inside create_agent ---------------------------------------
def test_create_agent_over_chatopenai_gets_a_leco_corrected_answer() -> None:
    from langchain.agents import create_agent
    from langchain_openai import ChatOpenAI

    with running_server(FakeLogprobModel([DRAFT, RETHINK, RETHINK])) as url:
        llm = ChatOpenAI(model="leco", base_url=url, api_key="unused", max_retries=0, timeout=60)
        out = create_agent(llm, tools=[]).invoke({"messages": [{"role": "user", "content": QUESTION}]})
    final = out["messages"][-1]
    assert final.content == FINAL
    assert final.usage_metadata["output_tokens"] > len(FINAL.split())  # summed over the 3 attempts


def test_tool_turns_pass_through_uncorrected_to_a_tool_calling_upstream() -> None:
    from langchain.agents import create_agent
    from langchain_openai import ChatOpenAI

    upstream = FakeLogprobChatModel(replies=[tool_call(), "The answer is 7.", "Direct."])
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with running_server(upstream) as url:
        llm = ChatOpenAI(model="leco", base_url=url, api_key="unused", max_retries=0, timeout=60)
        out = create_agent(llm, tools=[add]).invoke({"messages": [{"role": "user", "content": QUESTION}]})
        assert len(upstream.calls) == 2 and upstream.calls[1][-1].type == "tool"  # one call per turn: no chain
        r = httpx.post(f"{url}/chat/completions", timeout=30, json={"model": "leco", "messages": _ask(),
                                                                      "tools": [tool], "stream": True})
    kinds = [type(m).__name__ for m in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert out["messages"][1].tool_calls[0]["name"] == "add" and out["messages"][2].content == "7"
    assert out["messages"][-1].content == "The answer is 7."
    assert "f" in json.dumps(upstream.bound_tools, default=str)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]) == "Direct."
    assert events[-1]["sc_chains"]["passthrough"] == "upstream"


def test_tool_turns_on_a_model_without_tool_calling_get_a_plain_text_answer(served) -> None:
    url, model = served
    messages = [{"role": "user", "content": "Add 3 and 4"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 3, "b": 4}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "7"}]
    before = len(model.calls)
    r = _client(url).chat.completions.create(model="leco", messages=messages)
    assert len(model.calls) == before + 1 and r.choices[0].message.content == ANSWER
    assert r.model_extra["sc_chains"]["passthrough"] == "text"
    seen = model.calls[-1].messages
    assert '"add"' in seen[1]["content"] and seen[2] == {"role": "user", "content": "Tool result (c1): 7"}


# -- a local model: hf:tiny-random, coalesced ----------------------------------------------------------
def test_concurrent_requests_on_a_local_model_coalesce_into_batches() -> None:
    pytest.importorskip("torch")
    from adapters.specs import resolve_model

    model = resolve_model("hf:tiny-random", coalesce_wait_s=0.3)
    with running_server(model) as url:
        async def main() -> list[Any]:
            client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
            try:
                return await asyncio.gather(*(client.chat.completions.create(
                    model=c, messages=_ask(), max_tokens=6, extra_body={"sc_chains": {"trace": False}})
                    for c in ["baseline", "leco"] * 4))
            finally:
                await client.close()

        results = asyncio.run(main())
    assert all(r.choices[0].message.content and r.usage.completion_tokens >= 1 for r in results)
    assert all(r.model_extra["sc_chains"]["cost"]["calls"] >= (1 if r.model == "baseline" else 2) for r in results)
    stats = model.coalesce_stats
    assert stats.largest >= 2 and stats.batches < stats.requests


# -- pieces -------------------------------------------------------------------------------------------
def test_question_of_keeps_system_text_and_earlier_turns() -> None:
    assert question_of(_ask("Q?")) == "Q?"
    q = question_of([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello"}, {"role": "user", "content": [{"type": "text",
                                                                                                "text": "Q?"}]}])
    assert q == "Be brief.\n\nConversation so far:\nUser: Hi\nAssistant: Hello\n\nQ?"


def test_server_config_rejects_bad_values_by_name() -> None:
    for kw, name in (({"port": 70000}, "port"), ({"request_timeout_s": 0}, "request_timeout_s"),
                     ({"request_timeout_s": 10_000}, "request_timeout_s"), ({"api_key": ""}, "api_key"),
                     ({"max_concurrency": 0}, "max_concurrency"), ({"log_level": "loud"}, "log_level"),
                     ({"run_programs": "yes"}, "run_programs")):
        with pytest.raises(InvalidRequestError) as err:
            ServerConfig(**kw)
        assert err.value.param == name


def test_the_program_critic_is_served_only_when_the_operator_opts_in() -> None:
    from sc_chains.server.chains import ChainSet

    model = FakeLogprobModel(default=ANSWER)
    assert ChainSet(model).names == CHAINS
    opted = ChainSet(model, run_programs=True)
    assert opted.names == [*CHAINS, "critique-program"]
    graph = opted.graph("critique-program", opted.settings("critique-program", {}, {"max_tokens": 64}))
    state = graph.invoke({"question": "What is 2 + 3?"})
    assert state["answer"] == "5" and state["stop_reason"] == "approved"  # no program ran: no signal, kept


def test_the_served_program_critic_samples_programs_on_request() -> None:
    from sc_chains.server.chains import ChainSet

    fence = "`" * 3
    programs = [f"{fence}python\nprint({code})\n{fence}" for code in ("2 + 3", "5", "7")]
    model = FakeLogprobModel(["2 + 3 = 6. The answer is 6.", *programs])
    served = ChainSet(model, run_programs=True)
    settings = served.settings("critique-program", {"program_samples": 3, "seed": 1}, {"max_tokens": 64})
    state = served.graph("critique-program", settings).invoke({"question": "What is 2 + 3?"})
    assert state["answer"] == "5" and state["stop_reason"] == "replaced"  # 5 (2 programs) beats 6 (the draft) and 7
    assert [c.seed for c in model.calls[1:]] == [1, 2, 3]
    with pytest.raises(InvalidRequestError, match="program_samples"):
        served.graph("critique-program", served.settings("critique-program", {"program_samples": 99}, {}))


# -- slow: the embedded model ---------------------------------------------------------------------------
@pytest.mark.slow
def test_embedded_model_gets_a_leco_corrected_answer_with_its_cost() -> None:
    pytest.importorskip("torch")
    from adapters.specs import resolve_model

    try:
        model = resolve_model("hf:default")
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))
    question = "Tom has 3 apples. He buys 4 more. How many apples does he have?"
    with running_server(model) as url:
        r = _client(url, timeout=600).chat.completions.create(
            model="leco", messages=_ask(question), max_tokens=96, logprobs=True,
            extra_body={"sc_chains": {"max_rethinks": 1, "max_completion_tokens": 256}})
    ext = r.model_extra["sc_chains"]
    trace = ext["trace"]
    assert r.choices[0].message.content.strip() and ext["cost"]["calls"] == len(trace["attempts"]) >= 1
    assert r.usage.completion_tokens == ext["cost"]["completion_tokens"] == trace["tokens_generated"] > 0
    assert r.usage.prompt_tokens > 0 and ext["cost"]["wall_s"] > 0
    if r.choices[0].logprobs is not None:
        assert "".join(t.token for t in r.choices[0].logprobs.content) == r.choices[0].message.content


def test_an_openai_compatible_upstream_with_its_key_from_the_environment(monkeypatch) -> None:
    from adapters.specs import resolve_model

    secret = "sk-upstream-key"
    inner = FakeLogprobModel([DRAFT, RETHINK, RETHINK], default=ANSWER)
    with running_server(inner, ServerConfig(port=0, api_key=secret, log_level="warning")) as upstream_url:
        monkeypatch.setenv("OPENAI_API_KEY", secret)
        upstream = resolve_model("openai:baseline", base_url=upstream_url)  # the key comes from the environment
        with running_server(upstream) as url:
            client = _client(url)
            r = client.chat.completions.create(model="leco", messages=_ask(QUESTION), logprobs=True)
            tool_turn = client.chat.completions.create(model="leco", messages=_ask(), tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])
    assert r.choices[0].message.content == FINAL.strip() or r.choices[0].message.content == FINAL
    ext = r.model_extra["sc_chains"]
    assert ext["upstream"] == "baseline" and ext["cost"]["calls"] == 3 and ext["answer"] == "7"
    assert "".join(t.token for t in r.choices[0].logprobs.content) == r.choices[0].message.content
    assert tool_turn.choices[0].message.content == ANSWER
    assert tool_turn.model_extra["sc_chains"]["passthrough"] == "upstream"
    assert tool_turn.model_extra["sc_chains"]["cost"]["calls"] == 1


def test_a_request_that_runs_too_long_is_cancelled_with_504() -> None:
    release = threading.Event()

    def slow(request: Any) -> str:
        release.wait(30)
        return ANSWER

    with running_server(FakeLogprobModel(default=slow), ServerConfig(port=0, request_timeout_s=0.5,
                                                                     log_level="warning")) as url:
        try:
            r = httpx.post(f"{url}/chat/completions", json={"model": "leco", "messages": _ask()}, timeout=30)
        finally:
            release.set()
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


def test_a_streaming_client_that_disconnects_cancels_its_work() -> None:
    release = threading.Event()

    def slow(request: Any) -> str:
        release.wait(30)
        return DRAFT.text

    model = FakeLogprobModel(default=slow)
    with running_server(model) as url:
        with httpx.stream("POST", f"{url}/chat/completions", timeout=30,
                          json={"model": "leco", "messages": _ask(), "stream": True}) as r:
            first = next(r.iter_lines())
            assert json.loads(first[6:])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        health = url.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + 30
        while httpx.get(health).json()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(health).json()["in_flight"] == 0
        release.set()
        time.sleep(0.5)
        # the draft may or may not have started before the disconnect (the chain graph's first
        # super-step validates the input); either way nothing runs after it
        assert len(model.calls) <= 1
