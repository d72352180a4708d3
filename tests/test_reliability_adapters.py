"""Reliability of the adapter layer (issue 12): secrets, bounded waits, resources, bad input.

Each test names the fault or bad-input class it covers and asserts the typed error or the
bounded outcome. HTTP faults run against real servers on 127.0.0.1 (an echo server that puts
the Authorization header into its error bodies, a server that drips one byte a second).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import _QuietServer, chat_body, reply

from adapters.errors import (
    CallTimeoutError,
    ContextWindowExceededError,
    InvalidRequestError,
    InvalidSecretError,
    MalformedResponseError,
    ModelNotFoundError,
    RetriesExhaustedError,
    SCChainsError,
    ServerRejectedRequestError,
    UnknownModelSpecError,
)
from adapters.fake import FakeLogprobModel, FakeReply
from adapters.langchain import parse_logprobs
from adapters.openai_compat import OpenAIModel
from adapters.retry import MAX_RETRIES, MAX_WAIT_S, RetryPolicy, capped_backoff
from adapters.secrets import clean_api_key, scrub, scrub_record, split_url_credentials

FAST = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.05, jitter=0.5)
ROOT = Path(__file__).resolve().parents[1]


# -- servers on 127.0.0.1 -------------------------------------------------------------------------
class Server:
    """``respond(handler, n) -> (status, body: bytes | dict, headers)`` answers request ``n``; ``drip``
    sends the body one byte per ``drip`` seconds. Records every request's headers."""

    def __init__(self, respond: Any, drip: float = 0.0) -> None:
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                server.requests.append(dict(self.headers))
                status, body, headers = respond(self, len(server.requests) - 1)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                for i in range(len(data)):
                    if drip:
                        time.sleep(drip)
                    try:
                        self.wfile.write(data[i : i + 1] if drip else data[i:])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    if not drip:
                        break

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def echo(status_for: Any) -> Any:
    """A responder that puts the Authorization header (and every header) into its error bodies."""

    def respond(handler: BaseHTTPRequestHandler, n: int) -> tuple[int, Any, dict[str, str]]:
        status = status_for(n)
        if status == 200:
            return 200, chat_body("The answer is 4"), {}
        auth = handler.headers.get("Authorization", "")
        body = {"error": {"message": f"invalid credentials: {auth}", "headers": dict(handler.headers)}}
        return status, body, {"Retry-After": "0"}

    return respond


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Server] = []

    def make(respond: Any, drip: float = 0.0) -> Server:
        servers.append(Server(respond, drip))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


MARKERS = {
    "plain": "sk-MARKER-a1b2c3d4e5f6",
    "trailing-cr": "sk-MARKER-crlf-778899\r",
    "trailing-lf": "sk-MARKER-lf-445566\n",
}


def _texts_of(exc: BaseException) -> list[str]:
    """Every text an exception can show: str, repr, attributes, the chain."""
    out = [str(exc), repr(exc), repr(vars(exc))]
    if exc.__cause__ is not None:
        out += _texts_of(exc.__cause__)
    if exc.__context__ is not None and not exc.__suppress_context__:
        out += _texts_of(exc.__context__)
    return out


def _assert_no_marker(texts: list[str], marker: str) -> None:
    core = marker.strip()
    hits = [t for t in texts if core in t]
    assert not hits, f"the key leaked into {len(hits)} texts, e.g. {hits[0][:300]!r}"


# -- 1-3: secrets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MARKERS))
def test_key_with_surrounding_whitespace_is_stripped_and_never_echoed(serve, caplog, name) -> None:
    """Classes: key with trailing CR/LF; server echoing the key in 401 and 500 bodies; retry log lines."""
    marker = MARKERS[name]
    caplog.set_level(logging.DEBUG)
    srv = serve(echo(lambda n: [500, 500, 401, 200][n % 4]))
    m = OpenAIModel("gpt-test", base_url=srv.base_url, api_key=marker, retry=FAST)
    texts = [repr(m), repr(vars(m))]
    with pytest.raises(ServerRejectedRequestError) as rejected:  # 500, 500 (retried), then 401
        m.generate("Hello")
    texts += _texts_of(rejected.value)
    assert srv.requests[0]["Authorization"] == f"Bearer {marker.strip()}"  # stripped, then sent
    assert m.generate("Hello").text == "The answer is 4"  # the 4th request
    failing = serve(echo(lambda n: 500))
    with pytest.raises(RetriesExhaustedError) as exhausted:  # 500 three times: out of retries
        OpenAIModel("gpt-test", base_url=failing.base_url, api_key=marker, retry=FAST).generate("Hi")
    texts += _texts_of(exhausted.value) + [json.dumps(exhausted.value.attempts)]

    async def run_async() -> None:
        srv2 = serve(echo(lambda n: 500))
        with pytest.raises(RetriesExhaustedError) as e:
            await OpenAIModel("gpt-test", base_url=srv2.base_url, api_key=marker, retry=FAST).agenerate("Hi")
        texts.extend(_texts_of(e.value))

    asyncio.run(run_async())
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert any("retry" in r.getMessage() for r in caplog.records)  # the retry path did log
    _assert_no_marker(texts, marker)


@pytest.mark.parametrize(("key", "kind"), [
    ("sk-abc\rdef-123456", "U+000D"),
    ("sk-abc\ndef-123456", "U+000A"),
    ("sk-abc def-123456", "U+0020"),
    ("sk-abc\x00def-123456", "U+0000"),
    ("sk-abc\u00e9def-123456", "U+00E9"),
    ("sk-abc\u2028def-123456", "U+2028"),
])  # fmt: skip
def test_key_with_inner_control_or_non_ascii_is_a_typed_error_that_hides_it(key, kind) -> None:
    """Classes: control character inside a key; non-ASCII (non-Latin-1 too) key."""
    with pytest.raises(InvalidSecretError) as e:
        OpenAIModel("gpt-test", base_url="http://127.0.0.1:9/v1", api_key=key)
    assert isinstance(e.value, ValueError) and e.value.codepoint == kind and e.value.position == 6
    _assert_no_marker(_texts_of(e.value), "def-123456")


def test_key_from_the_environment_is_validated_too(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env\tkey-0000")
    with pytest.raises(InvalidSecretError):
        OpenAIModel("gpt-test", base_url="http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "  \r\n")
    assert OpenAIModel("gpt-test", base_url="http://127.0.0.1:9/v1")._api_key is None  # blank = no key


def test_credentials_in_the_base_url_become_basic_auth_and_are_never_shown(serve, caplog) -> None:
    """Class: key in the base URL's userinfo (errors, repr, httpx INFO log line)."""
    caplog.set_level(logging.DEBUG)
    srv = serve(echo(lambda n: 500))
    url = srv.base_url.replace("http://", "http://alice:sk-URLKEY-99887766@")
    m = OpenAIModel("gpt-test", base_url=url, retry=FAST)
    assert m.base_url == srv.base_url
    with pytest.raises(RetriesExhaustedError) as e:
        m.generate("Hi")
    assert srv.requests[0]["Authorization"].startswith("Basic ")  # sent as auth, not in the URL
    texts = _texts_of(e.value) + [repr(m), caplog.text] + [r.getMessage() for r in caplog.records]
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx's INFO line was seen
    _assert_no_marker(texts, "sk-URLKEY-99887766")


def test_a_header_the_http_client_refuses_is_not_retried(serve) -> None:
    """Class: illegal header value (LocalProtocolError) -> typed error at once, no retry, no key."""
    srv = serve(echo(lambda n: 200))
    m = OpenAIModel("gpt-test", base_url=srv.base_url, api_key="sk-HEADER-55443322", retry=FAST)
    m._client.headers["Authorization"] = "Bearer sk-HEADER-55443322\r"  # what an unvalidated key did
    start = time.monotonic()
    with pytest.raises(InvalidRequestError) as e:
        m.generate("Hi")
    assert srv.requests == [] and time.monotonic() - start < 5
    assert e.value.__cause__ is None and e.value.__suppress_context__
    _assert_no_marker(_texts_of(e.value), "sk-HEADER-55443322")


def test_scrub_removes_registered_secrets_url_credentials_and_bearer_tokens() -> None:
    """Class: secrets in arbitrary text and records (the helper sc_chains applies before writing)."""
    key = clean_api_key("  sk-SCRUB-12345678\r\n")
    assert key == "sk-SCRUB-12345678"
    text = f"boom {key!r} and {json.dumps({'k': key})} and b'Bearer {key}' via http://u:pw-secret-1@host:1/v1 ok"
    out = scrub(text)
    assert key not in out and "pw-secret-1" not in out and "http://***@host:1/v1" in out
    assert scrub("Authorization: Bearer abc-unregistered-token-1") == "Authorization: Bearer ***"
    assert scrub("basic arithmetic and bearer bonds") == "basic arithmetic and bearer bonds"  # prose kept
    assert scrub("x", secrets=["not-registered-42"]) == "x"
    assert scrub("a not-registered-42 b", secrets=["not-registered-42"]) == "a *** b"
    record = {"error": f"HTTP 401: {key}", "nested": [key, 3, None], key: True}
    assert scrub_record(record) == {"error": "HTTP 401: ***", "nested": ["***", 3, None], "***": True}
    assert split_url_credentials("https://h/v1") == ("https://h/v1", None)
    assert split_url_credentials("https://a%40b:p%3Aw@h/v1") == ("https://h/v1", ("a@b", "p:w"))
    short = clean_api_key("none")  # local servers take any key: too short to scrub from prose
    assert short == "none" and scrub("none of these") == "none of these"


def test_every_sc_chains_error_message_is_scrubbed() -> None:
    key = clean_api_key("sk-ERRTEXT-10203040")
    err = ServerRejectedRequestError(f"POST http://u:{key}@h/v1", 401, {"echo": f"Bearer {key}"})
    assert key not in str(err) and isinstance(err, SCChainsError)


# -- 13: bounded backoff ---------------------------------------------------------------------------
def test_backoff_and_retry_after_are_capped_and_no_argument_lifts_the_cap() -> None:
    """Classes: uncapped exponential backoff; huge Retry-After; a policy asking for unbounded waits."""
    p = RetryPolicy(initial_backoff=0.5, multiplier=2.0, jitter=0.0)
    assert [p.backoff(i) for i in (0, 1, 5, 12, 1000, 10**9)] == [0.5, 1.0, 16.0, 20.0, 20.0, 20.0]
    assert p.wait(3, retry_after=10**6) == p.max_retry_after == 60.0
    assert capped_backoff(0.5, 10**6) == MAX_WAIT_S  # no overflow, capped
    assert capped_backoff(0.5, 12, cap=30.0) == 30.0
    for kw in ({"max_backoff": 10**6}, {"max_retry_after": math.inf}, {"max_retries": MAX_RETRIES + 1},
               {"multiplier": 1e6}, {"initial_backoff": float("nan")}):
        with pytest.raises(InvalidRequestError):
            RetryPolicy(**kw)


def test_a_huge_retry_after_from_the_server_is_cut_to_the_policy_maximum(serve) -> None:
    srv = serve(lambda h, n: (429, {"error": "slow"}, {"Retry-After": "86400"}) if n == 0 else (200, chat_body("ok"), {}))
    m = OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k",
                    retry=RetryPolicy(max_retries=1, max_retry_after=0.2))
    start = time.monotonic()
    assert m.generate("Hi").text == "ok"
    assert time.monotonic() - start < 10  # waited 0.2 s, not a day


# -- 14: a deadline per attempt and per call -------------------------------------------------------
def test_a_server_dripping_one_byte_a_second_fails_by_the_timeout(serve) -> None:
    """Class: slow-drip server (each read is quick, the response never completes)."""
    srv = serve(lambda h, n: (200, chat_body("x " * 200), {}), drip=0.2)
    m = OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", timeout=1.0, max_retries=0)
    start = time.monotonic()
    with pytest.raises(RetriesExhaustedError) as e:
        m.generate("Hi")
    elapsed = time.monotonic() - start
    assert "ReadTimeout" in e.value.attempts[0]["error"]
    assert elapsed < 1.0 + 5, elapsed  # the body alone would take ~200 s

    async def run() -> float:
        t0 = time.monotonic()
        with pytest.raises(RetriesExhaustedError):
            await m.agenerate("Hi")
        return time.monotonic() - t0

    assert asyncio.run(run()) < 1.0 + 5


def test_the_call_deadline_bounds_retries_and_waits(serve) -> None:
    """Class: retries that would run past the whole call's deadline."""
    srv = serve(lambda h, n: (503, {"error": "busy"}, {"Retry-After": "1.5"}))
    m = OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", deadline=1.0,
                    retry=RetryPolicy(max_retries=10, max_retry_after=5))
    start = time.monotonic()
    with pytest.raises(CallTimeoutError) as e:
        m.generate("Hi")
    assert isinstance(e.value, TimeoutError) and e.value.seconds == 1.0 and len(e.value.attempts) == 1
    assert time.monotonic() - start < 1.0 + 5 and len(srv.requests) == 1
    for bad in (0, -1, math.inf, "10", True):
        with pytest.raises(InvalidRequestError):
            OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", deadline=bad)


# -- 16: no client or socket per event loop --------------------------------------------------------
def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_repeated_asyncio_run_does_not_leak_clients_or_sockets(serve) -> None:
    """Class: one model used from many event loops (asyncio.run per call)."""
    srv = serve(lambda h, n: (200, chat_body("ok"), {}))
    m = OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", retry=FAST)
    asyncio.run(m.agenerate("warm up"))
    before = _open_fds()
    for _ in range(50):
        assert asyncio.run(m.agenerate("Hi")).text == "ok"
    assert _open_fds() - before <= 5
    assert len(m._aclients) <= 1  # entries of closed loops are dropped


# -- 15: the context window -------------------------------------------------------------------------
torch = pytest.importorskip("torch")
from adapters.hf import tiny_random_model  # noqa: E402


def test_prompt_plus_max_tokens_beyond_the_context_window_is_refused_up_front() -> None:
    """Classes: prompt longer than the window; max_tokens that cannot fit."""
    m = tiny_random_model()
    assert m.context_window == 4096
    start = time.monotonic()
    with pytest.raises(ContextWindowExceededError) as e:
        m.generate("x" * 200_000, max_tokens=16)
    assert time.monotonic() - start < 30  # counted, not generated (that ran > 150 s)
    err = e.value
    assert err.window == 4096 and err.max_tokens == 16 and err.prompt_tokens > 200_000
    assert "200" in str(err) and "4096" in str(err) and isinstance(err, ValueError)
    with pytest.raises(ContextWindowExceededError) as e2:
        m.generate("Hi", max_tokens=5000)
    assert e2.value.max_tokens == 5000 and "lower max_tokens to at most" in str(e2.value)

    async def run() -> None:
        with pytest.raises(ContextWindowExceededError):
            await m.agenerate("y" * 5000, max_tokens=8)

    asyncio.run(run())
    assert m.generate("Hi", max_tokens=4).text is not None  # a fitting prompt still runs


# -- 11: bad input to generate -------------------------------------------------------------------------
def _models(serve: Any) -> list[Any]:
    srv = serve(lambda h, n: (200, chat_body("ok"), {}))
    return [FakeLogprobModel(default="ok"), tiny_random_model(),
            OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", retry=FAST)]


def test_an_unknown_generate_option_is_named(serve) -> None:
    """Class: model.generate("hi", foo=1)."""
    for m in _models(serve):
        with pytest.raises(InvalidRequestError) as e:
            m.generate("hi", foo=1)
        assert e.value.param == "foo" and e.value.value == 1 and "max_tokens" in str(e.value)
        with pytest.raises(InvalidRequestError, match="max_token"):
            asyncio.run(m.agenerate("hi", max_token=3))


@pytest.mark.parametrize("where", ["content", "prefill", "stop"])
def test_text_with_a_lone_surrogate_is_a_typed_error(serve, where) -> None:
    """Class: non-UTF-8 input (lone surrogate) to the tokenizer and the HTTP adapter."""
    bad = "caf\udce9 au lait"
    kwargs = {"prefill": bad} if where == "prefill" else {"stop": [bad]} if where == "stop" else {}
    for m in _models(serve):
        if where == "prefill" and not m.capabilities.prefill:
            continue
        with pytest.raises(InvalidRequestError) as e:
            m.generate(bad if where == "content" else "Hi", **kwargs)
        assert "U+DCE9" in str(e.value) and "UTF-8" in str(e.value)


@pytest.mark.parametrize("seed", [2**64, 2**63, -(2**63) - 1, 10**30])
def test_a_seed_too_large_for_the_generator_is_a_typed_error(seed) -> None:
    """Class: seed outside the 64-bit range (torch raised a raw overflow)."""
    with pytest.raises(InvalidRequestError) as e:
        tiny_random_model().generate("Hi", temperature=0.7, seed=seed, max_tokens=2)
    assert e.value.param == "seed" and "64-bit" in str(e.value)
    assert tiny_random_model().generate("Hi", temperature=0.7, seed=2**63 - 1, max_tokens=2).tokens


# -- 10: values that were silently accepted ------------------------------------------------------------
@pytest.mark.parametrize(("option", "value"), [("kv_reuse", "maybe"), ("kv_reuse", "False"),
                                               ("kv_reuse", 1), ("coalesce", "no")])
def test_a_non_bool_for_a_bool_model_option_is_a_typed_error(option, value) -> None:
    """Class: --model-option kv_reuse=maybe (was truthy)."""
    from adapters.specs import resolve_model
    from sc_chains.cli.options import parse_model_options

    options = parse_model_options([f"{option}={json.dumps(value) if not isinstance(value, str) else value}"])
    with pytest.raises(InvalidRequestError) as e:
        resolve_model("hf:tiny-random", **options)
    assert e.value.param == option and e.value.value == value


@pytest.mark.parametrize("kw", [{"logprob": 0.5}, {"logprob": float("nan")}, {"overrides": {"b": 2.0}},
                                {"logprobs": (-0.1, 0.3)}, {"logprob": "-1"}])
def test_a_fake_reply_with_a_logprob_above_zero_is_refused(kw) -> None:
    """Class: logprobs above 0 (or NaN) scripted into the fake."""
    with pytest.raises(InvalidRequestError, match="logprob"):
        FakeReply("a b", **kw)


def test_chat_metadata_with_logprobs_above_zero_is_malformed_not_scored(serve) -> None:
    """Class: logprobs above 0 in chat metadata / a server's response."""
    md = {"logprobs": {"content": [{"token": "a", "logprob": 0.7, "top_logprobs": []}]}}
    with pytest.raises(MalformedResponseError, match="0.7"):
        parse_logprobs(md)
    alt = {"logprobs": {"content": [{"token": "a", "logprob": -0.1,
                                     "top_logprobs": [{"token": "b", "logprob": 3.0}]}]}}
    with pytest.raises(MalformedResponseError):
        parse_logprobs(alt)
    nan = {"logprobs": {"content": [{"token": "a", "logprob": float("nan"), "top_logprobs": []}]}}
    with pytest.raises(MalformedResponseError):
        parse_logprobs(nan)
    noise = {"logprobs": {"content": [{"token": "a", "logprob": 2e-7, "top_logprobs": []}]}}
    assert parse_logprobs(noise)[0].logprob == 0.0  # rounding noise reads as probability 1
    srv = serve(lambda h, n: (200, chat_body("Hi there", logprob=0.9), {}))
    with pytest.raises(MalformedResponseError):
        OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", retry=FAST).generate("Hi")


# -- 18: batcher stats under load ----------------------------------------------------------------------
def test_batcher_counts_a_request_before_its_caller_can_see_the_result() -> None:
    """Class: stats read right after a result (the flaky `stats.requests == 0`)."""
    from adapters.hf.batcher import RequestBatcher

    b = RequestBatcher(lambda items: [i * 2 for i in items], max_batch=4, wait_s=0.0)
    seen: list[int] = []
    for i in range(20):
        fut = b.submit(i)
        # a done-callback runs in the worker the moment the future resolves: the count must be in
        fut.add_done_callback(lambda f: seen.append(b.stats.requests))
        assert fut.result(10) == i * 2
        assert b.stats.requests == i + 1
    assert seen == list(range(1, 21))


# -- 17 item 4: a typo'd spec fails fast -----------------------------------------------------------------
@pytest.mark.parametrize(("spec", "meant"), [("hf:defualt", "hf:default"), ("hf:tiny-radnom", "hf:tiny-random"),
                                             ("hg:tiny-random", "hf:tiny-random"),
                                             ("hf:qwen2.5-coder-05b", "hf:qwen2.5-coder-0.5b")])
def test_a_typo_in_a_spec_fails_at_once_with_did_you_mean(spec, meant) -> None:
    """Class: mistyped model spec (was ~60 s of hub retries offline)."""
    from adapters.specs import resolve_model

    start = time.monotonic()
    with pytest.raises(UnknownModelSpecError) as e:
        resolve_model(spec)
    assert time.monotonic() - start < 10
    assert e.value.suggestion == meant and f"Did you mean {meant!r}" in str(e.value)
    assert "hf:tiny-random" in str(e.value) and "openai:MODEL" in str(e.value)
    from adapters.specs import check_spec

    with pytest.raises(UnknownModelSpecError):  # the same check, without loading anything
        check_spec(spec)
    for good in ("hf:tiny-random", "hf:default", "openai:gpt-4o-mini", FakeLogprobModel()):
        check_spec(good)


def test_an_uncached_hub_id_fails_at_once_when_offline(monkeypatch) -> None:
    """Class: hub id not in the cache with HF_HUB_OFFLINE set."""
    from adapters.specs import resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model("hf:no-such-org/no-such-model-xyz")
    assert time.monotonic() - start < 10


# -- 1-3 end to end: the CLI writes no key anywhere ------------------------------------------------------
def _cli(args: list[str], env_key: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_API_KEY=env_key, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", SC_CHAINS_CACHE=str(tmp / "cache"))
    code = "import sys; from sc_chains.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=tmp, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("name", list(MARKERS))
def test_eval_and_datagen_write_no_key_to_any_file_or_stream(serve, tmp_path, name) -> None:
    """Classes: key in eval results/summary, datagen raw/train/manifest, stdout/stderr, retry logs."""
    marker = MARKERS[name]
    srv = serve(echo(lambda n: [500, 401, 200][n % 3]))
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n"
                            for i in range(1, 4)))
    common = ["--model", "openai:gpt-test", "--base-url", srv.base_url, "--limit", "3", "--no-progress"]
    runs = [
        _cli(["eval", "--dataset", f"jsonl:{data}", "--chains", "baseline", "--out", str(tmp_path / "ev"),
              "--retries", "0", "--no-plots", "--model-option", "max_retries=1", *common], marker, tmp_path),
        _cli(["datagen", "score", "--dataset", f"jsonl:{data}", "--out", str(tmp_path / "dg"), "--retries", "0",
              "--max-tokens", "8", *common], marker, tmp_path),
    ]
    texts = [r.stdout + r.stderr for r in runs]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != data and "cache" not in p.parts]
    texts += [p.read_text(errors="replace") for p in files]
    assert any(p.name == "results.jsonl" for p in files) and any(p.name == "raw.jsonl" for p in files), (
        [p.name for p in files], texts[:2])
    assert any(r.get("Authorization") for r in srv.requests)  # the key was sent, and echoed back
    _assert_no_marker(texts, marker)


def test_log_scrubbing_covers_child_loggers_through_root_handlers() -> None:
    """Class: a secret logged by any module (a child logger propagating to the root handlers)."""
    import io

    from adapters.secrets import install_log_scrubbing

    key = clean_api_key("sk-LOGLINE-13572468")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_log_scrubbing(handlers=True)
        logging.getLogger("sc_chains.some.module").warning("request to http://u:pw-LOG-999@h failed: %s", key)
    finally:
        root.removeHandler(handler)
    assert "failed: ***" in stream.getvalue() and key not in stream.getvalue() and "pw-LOG-999" not in stream.getvalue()


# -- more HTTP faults and configuration -----------------------------------------------------------------
@pytest.mark.parametrize("url", ["not a url", "ftp://host/v1", "http:///v1", "http://host:99999/v1",
                                 "http://host:port/v1", "127.0.0.1:8000/v1"])
def test_a_base_url_that_is_no_http_url_is_refused_at_construction(url) -> None:
    """Class: malformed base_url (was retried as a transport error)."""
    with pytest.raises(InvalidRequestError) as e:
        OpenAIModel("gpt-test", base_url=url, api_key="k")
    assert e.value.param == "base_url"


def test_a_body_cut_short_is_retried_then_a_typed_error(serve) -> None:
    """Class: server closes the connection mid-body (Content-Length larger than sent)."""

    def respond(handler: BaseHTTPRequestHandler, n: int) -> tuple[int, Any, dict[str, str]]:
        handler.send_response(200)
        handler.send_header("Content-Length", "5000")
        handler.end_headers()
        handler.wfile.write(b'{"choices": [')
        handler.wfile.flush()
        handler.close_connection = True
        raise ConnectionResetError  # ends the handler without the rest of the body

    srv = serve(respond)
    with pytest.raises(RetriesExhaustedError) as e:
        OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", retry=FAST).generate("Hi")
    assert len(e.value.attempts) == 3 and all(a["status"] is None for a in e.value.attempts)


def test_invalid_utf8_in_a_response_is_a_malformed_response(serve) -> None:
    """Class: server answers bytes that are not UTF-8."""
    srv = serve(lambda h, n: (200, b'{"choices": "\xff\xfe bad"}', {}))
    with pytest.raises(MalformedResponseError):
        OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", retry=FAST).generate("Hi")


def test_a_device_that_does_not_exist_is_a_typed_error() -> None:
    """Class: device='cuda' (or cuda:N) where there is no such device."""
    from adapters.hf.load import resolve_device

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InvalidRequestError) as e:
        resolve_device(f"cuda:{n}")
    assert e.value.param == "device" and "cpu" in str(e.value)


def test_a_corrupt_model_folder_is_model_not_found(tmp_path) -> None:
    """Class: model folder with a broken config.json / no weights."""
    from adapters.hf.load import load_pretrained

    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 10}))
    with pytest.raises(ModelNotFoundError):
        load_pretrained(tmp_path)


def test_a_server_without_logprobs_serves_chains_that_need_none(serve) -> None:
    """Class: server without logprobs (baseline must run; a logprob chain must still fail typed)."""
    from adapters.errors import LogprobsUnavailableError
    from adapters.specs import resolve_model

    srv = serve(lambda h, n: (200, chat_body("The answer is 4", logprobs=False), {}))
    strict = OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", retry=FAST)
    with pytest.raises(LogprobsUnavailableError):
        strict.generate("Hi", top_logprobs=1)  # the caller scores alternatives
    assert strict.generate("Hi").tokens is None  # a plain call (top_logprobs=0) gets the text
    lenient = resolve_model("openai:gpt-test", base_url=srv.base_url, api_key="k", require_logprobs=False)
    gen = lenient.generate("Hi", top_logprobs=2)
    assert gen.text == "The answer is 4" and gen.tokens is None
    with pytest.raises(LogprobsUnavailableError):
        lenient.checked(gen)  # what LECO does with every reply
    with pytest.raises(InvalidRequestError):
        OpenAIModel("gpt-test", base_url=srv.base_url, api_key="k", require_logprobs="no")


def test_secrets_in_the_environment_are_scrubbed_before_any_adapter_reads_them(monkeypatch) -> None:
    """Class: a key only in the environment (HF_TOKEN, OPENAI_API_KEY) reaching a message."""
    from adapters.secrets import SECRET_ENV_VARS, register_env_secrets

    assert "HF_TOKEN" in SECRET_ENV_VARS and "OPENAI_API_KEY" in SECRET_ENV_VARS
    monkeypatch.setenv("SC_TEST_TOKEN", "hf_ENVONLY_24681357\n")
    register_env_secrets(["SC_TEST_TOKEN"])
    assert scrub("token hf_ENVONLY_24681357 rejected") == "token *** rejected"
