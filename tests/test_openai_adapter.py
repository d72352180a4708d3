"""OpenAIModel over real HTTP to a scripted 127.0.0.1 server, and the pure retry policy."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest
from conftest import DROP, chat_body, reply

from adapters.errors import (
    InvalidRequestError,
    LogprobsUnavailableError,
    MalformedResponseError,
    RetriesExhaustedError,
    SCChainsError,
    ServerRejectedRequestError,
    ServerUnreachableError,
)
from adapters.openai_compat import OpenAIModel, chatml
from adapters.retry import AttemptLog, RetryPolicy, parse_retry_after
from sc_chains.testing.llama_server import free_port

SECRET = "sk-test-DO-NOT-LEAK-4242"
FAST = RetryPolicy(max_retries=3, initial_backoff=0.01, max_backoff=0.05, jitter=0.5)


def model_for(server, **kw) -> OpenAIModel:
    kw.setdefault("retry", FAST)
    return OpenAIModel("gpt-test", base_url=server.base_url, api_key=SECRET, **kw)


# -- pure policy --------------------------------------------------------------------------------
def test_parse_retry_after_seconds_dates_and_garbage():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.25 ") == 0.25
    assert parse_retry_after("-3") == 0.0
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 7, usegmt=True), now=now) == pytest.approx(7.0)
    assert parse_retry_after(formatdate(now - 50, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_grows_exponentially_is_capped_and_jittered_within_bounds():
    p = RetryPolicy(initial_backoff=0.5, multiplier=2, max_backoff=3.0, jitter=0.0)
    assert [p.backoff(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    j = RetryPolicy(initial_backoff=1.0, jitter=0.25)
    waits = [j.backoff(0, random.Random(s)) for s in range(50)]
    assert all(0.75 <= w <= 1.0 for w in waits) and len(set(waits)) > 1
    assert p.wait(0, retry_after=2.5) == 2.5  # the server's Retry-After wins over the backoff
    assert RetryPolicy(max_retry_after=4).wait(0, retry_after=100) == 4


@pytest.mark.parametrize(
    "kw", [{"max_retries": -1}, {"initial_backoff": -1}, {"multiplier": 0.5}, {"jitter": 2}, {"max_retries": True}]
)
def test_retry_policy_rejects_bad_values(kw):
    with pytest.raises(InvalidRequestError):
        RetryPolicy(**kw)


def test_attempt_log_stops_at_once_on_non_retryable_status():
    log = AttemptLog(RetryPolicy(), "POST x")
    with pytest.raises(ServerRejectedRequestError) as e:
        log.failed(400, "HTTP 400: bad", body={"error": "bad"})
    assert e.value.status == 400 and len(log.attempts) == 1


# -- retries over real HTTP -----------------------------------------------------------------------
def test_honours_retry_after_on_429_then_succeeds(scripted_server):
    srv = scripted_server([reply(429, {"error": "slow down"}, {"Retry-After": "0.3"}), reply(200, chat_body("Hi there"))])
    gen = model_for(srv).generate("Hello")
    assert gen.text == "Hi there"
    gap = srv.requests[1]["time"] - srv.requests[0]["time"]
    assert 0.3 <= gap < 1.5, gap


def test_retries_500_503_and_dropped_connection(scripted_server):
    srv = scripted_server([reply(500), reply(503), DROP, reply(200, chat_body("ok then"))])
    gen = model_for(srv).generate("Hello")
    assert gen.text == "ok then" and len(srv.requests) == 4


def test_exhausted_retries_carry_the_trajectory(scripted_server):
    srv = scripted_server([reply(500, {"error": {"message": "boom"}})])
    with pytest.raises(RetriesExhaustedError) as e:
        model_for(srv, max_retries=2).generate("Hello")
    attempts = e.value.attempts
    assert [a["status"] for a in attempts] == [500, 500, 500] and len(srv.requests) == 3
    assert all(a["wait"] > 0 for a in attempts[:-1]) and attempts[-1]["wait"] is None
    assert "boom" in attempts[0]["error"] and "after 3 attempts" in str(e.value)


def test_read_timeout_is_retried_then_exhausted(scripted_server):
    srv = scripted_server([reply(200, chat_body(), delay=0.5)])
    with pytest.raises(RetriesExhaustedError) as e:
        model_for(srv, max_retries=1, timeout=0.1).generate("Hello")
    assert not isinstance(e.value, ServerUnreachableError)
    assert [a["status"] for a in e.value.attempts] == [None, None]
    assert "ReadTimeout" in e.value.attempts[0]["error"]


def test_unreachable_server_is_typed_after_retries():
    m = OpenAIModel("gpt-test", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=SECRET, retry=FAST)
    with pytest.raises(ServerUnreachableError) as e:
        m.generate("Hello")
    assert isinstance(e.value, RetriesExhaustedError) and isinstance(e.value, ConnectionError)
    assert len(e.value.attempts) == 4 and all(a["connect"] for a in e.value.attempts)
    assert SECRET not in str(e.value)


def test_non_retryable_4xx_is_a_clear_typed_error_without_retry(scripted_server):
    srv = scripted_server([reply(401, {"error": {"message": "Incorrect API key provided"}})])
    with pytest.raises(ServerRejectedRequestError) as e:
        model_for(srv).generate("Hello")
    assert e.value.status == 401 and len(srv.requests) == 1
    assert "api_key" in str(e.value) and isinstance(e.value, SCChainsError)


async def test_async_path_retries_and_parses(scripted_server):
    srv = scripted_server([reply(503, headers={"Retry-After": "0.1"}), reply(200, chat_body("async ok"))])
    m = model_for(srv)
    gen = await m.agenerate("Hello")
    assert gen.text == "async ok" and len(srv.requests) == 2
    gens = await m.abatch(["a", "b", "c"], max_concurrency=3)
    assert [g.text for g in gens] == ["async ok"] * 3


# -- malformed / missing -------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["{not json", {"unexpected": 1}, {"choices": []}, {"choices": [{"message": {"content": 3}}]}])
def test_malformed_responses_raise_typed_errors(scripted_server, body):
    srv = scripted_server([reply(200, body)])
    with pytest.raises(MalformedResponseError):
        model_for(srv).generate("Hello")
    assert len(srv.requests) == 1


def test_malformed_logprob_entries(scripted_server):
    bad = chat_body("Hi")
    bad["choices"][0]["logprobs"]["content"][0].pop("logprob")
    srv = scripted_server([reply(200, bad)])
    with pytest.raises(MalformedResponseError):
        model_for(srv).generate("Hello")


def test_missing_logprobs_name_the_model_and_the_fix(scripted_server):
    srv = scripted_server([reply(200, chat_body("Hi there", logprobs=False))] * 2)
    with pytest.raises(LogprobsUnavailableError) as e:
        model_for(srv).generate("Hello", top_logprobs=1)
    assert e.value.model == "gpt-test" and "top_logprobs" in str(e.value)
    # a caller that asks for no alternatives (a plain chain-of-thought call) gets the text
    gen = model_for(srv).generate("Hello")
    assert gen.text == "Hi there" and gen.tokens is None


# -- request shape -------------------------------------------------------------------------------
def test_request_body_headers_and_parsed_generation(scripted_server):
    srv = scripted_server([reply(200, chat_body("Hi there friend"))])
    m = model_for(srv)
    gen = m.generate("Hello", max_tokens=7, stop=["\n"], seed=3, top_logprobs=0)
    sent = srv.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = sent["json"]
    assert body["max_tokens"] == 7 and "max_completion_tokens" not in body
    assert body["logprobs"] is True and body["top_logprobs"] == 1  # llama.cpp needs >= 1
    assert body["stop"] == ["\n"] and body["seed"] == 3 and body["temperature"] == 0.0
    assert [t.offset for t in gen.tokens] == [0, 2, 8]
    assert all(t.top_logprobs == () for t in gen.tokens)  # asked for 0 alternatives
    assert gen.usage.prompt_tokens == 5 and gen.usage.completion_tokens == 3 and gen.usage.cached_tokens == 2


def test_max_completion_tokens_option_and_extra_body(scripted_server):
    srv = scripted_server([reply(200, chat_body())])
    model_for(srv, max_tokens_param="max_completion_tokens", extra_body={"reasoning_effort": "low"}).generate("Hi", max_tokens=9)
    body = srv.requests[0]["json"]
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body and body["reasoning_effort"] == "low"


def test_top_logprobs_above_limit_rejected_before_sending(scripted_server):
    srv = scripted_server([reply(200, chat_body())])
    with pytest.raises(InvalidRequestError) as e:
        model_for(srv, max_top_logprobs=5).generate("Hi", top_logprobs=6)
    assert e.value.param == "top_logprobs" and srv.requests == []


def test_prefill_needs_a_template(scripted_server):
    srv = scripted_server([reply(200, chat_body())])
    m = model_for(srv)
    assert m.capabilities.prefill is False
    with pytest.raises(InvalidRequestError):
        m.generate("Hi", prefill="The answer is")
    assert srv.requests == []


def test_prefill_renders_the_template_and_uses_completions(scripted_server):
    legacy = {
        "choices": [{"text": " 4.", "finish_reason": "stop", "logprobs": {
            "tokens": [" ", "4", ".", "<|im_end|>"], "token_logprobs": [-0.1, -0.2, -0.3, -0.01],
            "top_logprobs": [{" ": -0.1, "x": -2.0}, {"4": -0.2, "5": -1.5}, {".": -0.3}, {"<|im_end|>": -0.01}],
            "text_offset": [80, 81, 82, 83]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 4},
    }  # fmt: skip
    srv = scripted_server([reply(200, legacy)])
    m = model_for(srv, chat_template="chatml")
    gen = m.generate([{"role": "user", "content": "2+2?"}], prefill="The answer is", top_logprobs=2)
    body = srv.requests[0]["json"]
    assert srv.requests[0]["path"] == "/v1/completions"
    assert body["prompt"] == chatml([{"role": "user", "content": "2+2?"}]) + "The answer is"
    assert body["prompt"].endswith("<|im_start|>assistant\nThe answer is") and body["logprobs"] == 2
    assert gen.text == " 4." and gen.prefill == "The answer is" and gen.full_text == "The answer is 4."
    assert [t.token for t in gen.tokens] == [" ", "4", "."]  # the stop token beyond the text is dropped
    assert [a.token for a in gen.tokens[1].top_logprobs] == ["4", "5"]


def test_callable_template(scripted_server):
    srv = scripted_server([reply(200, {"choices": [{"text": "!", "logprobs": {"tokens": ["!"], "token_logprobs": [-1.0]}}]})])
    m = model_for(srv, chat_template=lambda msgs: "|".join(x["content"] for x in msgs) + ">")
    assert m.generate([("user", "a"), ("assistant", "b"), ("user", "c")], prefill="P").text == "!"
    assert srv.requests[0]["json"]["prompt"] == "a|b|c>P"


# -- configuration and secrets --------------------------------------------------------------------
def test_env_vars_configure_base_url_and_key(scripted_server, monkeypatch):
    srv = scripted_server([reply(200, chat_body())])
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    m = OpenAIModel("gpt-test")
    assert m.base_url == srv.base_url
    m.generate("Hi")
    assert srv.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"


def test_api_key_never_in_repr_str_or_errors(scripted_server):
    srv = scripted_server([reply(401, {"error": "nope"}), reply(500)])
    m = model_for(srv, max_retries=0)
    texts = [repr(m), str(m), repr(vars(m)), repr(m.retry)]
    with pytest.raises(ServerRejectedRequestError) as e1:
        m.generate("Hi")
    with pytest.raises(RetriesExhaustedError) as e2:
        m.generate("Hi")
    texts += [str(e1.value), repr(e1.value), str(e2.value), repr(e2.value.attempts)]
    assert not any(SECRET in t for t in texts)


@pytest.mark.parametrize(
    "kw", [{"model": ""}, {"model": "m", "timeout": 0}, {"model": "m", "max_tokens_param": "max_new_tokens"},
           {"model": "m", "chat_template": 42}]
)  # fmt: skip
def test_bad_configuration_is_rejected(kw, monkeypatch):
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(InvalidRequestError):
        OpenAIModel(base_url="http://127.0.0.1:1/v1", **kw)


def test_resolve_model_openai_spec(scripted_server):
    from adapters.specs import resolve_model

    srv = scripted_server([reply(200, chat_body("via spec"))])
    m = resolve_model("openai:some-model", base_url=srv.base_url, api_key="k", retry=FAST)
    assert isinstance(m, OpenAIModel) and m.name == "some-model"
    assert m.generate("Hi").text == "via spec" and srv.requests[0]["json"]["model"] == "some-model"


def test_connection_pool_is_reused(scripted_server):
    srv = scripted_server([reply(200, chat_body())])
    m = model_for(srv)
    for _ in range(3):
        m.generate("Hi")
    client_ports = {r["client_port"] for r in srv.requests}
    assert len(srv.requests) == 3 and len(client_ports) == 1  # one keep-alive connection
