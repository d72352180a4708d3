"""``k`` samples of one prompt as one ``n=k`` request: the pure grouping and usage split, the
OpenAI adapter against a real ``sc-chains serve`` (which answers ``n``) and against a server
that ignores ``n`` (the missing choices come as single requests), and the server's ``n``."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import chat_body, reply

from adapters.openai_compat import OpenAIModel
from adapters.openai_n import sample_groups, split_usage
from adapters.types import GenerationRequest, Usage
from sc_chains.testing import FakeLogprobModel

MSG = ({"role": "user", "content": "What is 2 + 3?"},)


def _req(seed: int | None, temperature: float = 0.7, **kw: Any) -> GenerationRequest:
    return GenerationRequest(messages=MSG, temperature=temperature, seed=seed, **kw)


def test_sample_groups_finds_runs_of_one_prompt_with_consecutive_seeds() -> None:
    assert sample_groups([_req(5), _req(6), _req(7)]) == [range(0, 3)]
    assert sample_groups([_req(None), _req(None)]) == [range(0, 2)]
    assert sample_groups([_req(5), _req(7)]) == [range(0, 1), range(1, 2)]  # not seed + 1
    assert sample_groups([_req(5), _req(None)]) == [range(0, 1), range(1, 2)]
    assert sample_groups([_req(0, 0.0), _req(1, 0.0)]) == [range(0, 1), range(1, 2)]  # greedy: no samples
    other = GenerationRequest(messages=({"role": "user", "content": "Other?"},), temperature=0.7, seed=6)
    assert sample_groups([_req(5), other, _req(6)]) == [range(0, 1), range(1, 2), range(2, 3)]
    assert sample_groups([_req(5), _req(6, max_tokens=9)]) == [range(0, 1), range(1, 2)]
    assert sample_groups([_req(i) for i in range(5)], max_n=2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert sample_groups([]) == []


def test_split_usage_reads_the_prompt_once_and_adds_up() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4}}
    assert split_usage(usage, [2, 3, 4]) == [Usage(10, 2, 4), Usage(0, 3, 0), Usage(0, 4, 0)]
    assert split_usage(usage, [None, None]) == [Usage(10, 5, 4), Usage(0, 4, 0)]  # even share, rest first
    assert split_usage(usage, [2, None, None]) == [Usage(10, 2, 4), Usage(0, 4, 0), Usage(0, 3, 0)]
    assert split_usage(usage, [8, 8]) == [Usage(10, 5, 4), Usage(0, 4, 0)]  # counts above the total
    assert split_usage({}, [None]) == [Usage(0, 0, 0)]


def _n_body(texts: list[str]) -> dict[str, Any]:
    bodies = [chat_body(t) for t in texts]
    choices = [{**b["choices"][0], "index": i} for i, b in enumerate(bodies)]
    words = sum(b["usage"]["completion_tokens"] for b in bodies)
    return {"choices": choices[::-1], "usage": {"prompt_tokens": 5, "completion_tokens": words}}  # any order


def test_the_adapter_sends_samples_as_one_n_request(scripted_server) -> None:
    srv = scripted_server([reply(200, _n_body(["The answer is 5.", "It is 6.", "Five."]))])
    model = OpenAIModel("m", base_url=srv.base_url, api_key="x")
    gens = model.batch([_req(5), _req(6), _req(7)])
    assert [g.text for g in gens] == ["The answer is 5.", "It is 6.", "Five."]
    assert len(srv.requests) == 1 and srv.requests[0]["json"]["n"] == 3 and srv.requests[0]["json"]["seed"] == 5
    assert [g.usage.prompt_tokens for g in gens] == [5, 0, 0]
    assert [g.usage.completion_tokens for g in gens] == [4, 3, 1] and model.sends_n


def test_a_server_that_ignores_n_gets_the_rest_as_single_requests(scripted_server) -> None:
    srv = scripted_server([reply(200, chat_body("One.")), reply(200, chat_body("Two.")), reply(200, chat_body("Three."))])
    model = OpenAIModel("m", base_url=srv.base_url, api_key="x")
    gens = model.batch([_req(5), _req(6), _req(7)], max_concurrency=1)
    assert [g.text for g in gens] == ["One.", "Two.", "Three."] and not model.sends_n
    sent = [r["json"] for r in srv.requests]
    assert [(b.get("n"), b["seed"]) for b in sent] == [(3, 5), (None, 6), (None, 7)]
    model.batch([_req(1), _req(2)])
    assert all("n" not in r["json"] for r in srv.requests[3:]) and len(srv.requests) == 5


def test_sample_n_false_and_async_batch(scripted_server) -> None:
    import asyncio

    srv = scripted_server([reply(200, chat_body("Hi."))])
    model = OpenAIModel("m", base_url=srv.base_url, api_key="x", sample_n=False)
    assert len(model.batch([_req(5), _req(6)])) == 2 and all("n" not in r["json"] for r in srv.requests)
    srv2 = scripted_server([reply(200, _n_body(["A.", "B."]))])
    gens = asyncio.run(OpenAIModel("m", base_url=srv2.base_url, api_key="x").abatch([_req(1), _req(2), _req(0, 0.0)]))
    assert [g.text for g in gens][:2] == ["A.", "B."] and len(gens) == 3
    assert [r["json"].get("n") for r in srv2.requests].count(2) == 1
    from adapters.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as err:
        OpenAIModel("m", base_url=srv.base_url, api_key="x", sample_n="yes")
    assert err.value.param == "sample_n"


# -- sc-chains serve answers n -------------------------------------------------------------------
def test_the_server_answers_n_choices_and_the_adapter_uses_them() -> None:
    openai = pytest.importorskip("openai")
    pytest.importorskip("uvicorn")
    from sc_chains.server import running_server

    upstream = FakeLogprobModel(replies=["The answer is 5.", "The answer is 6.", "The answer is 5."] * 3)
    with running_server(upstream) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        r = client.chat.completions.create(model="baseline", messages=list(MSG), n=3, temperature=0.7, seed=11,
                                           logprobs=True)
        assert sorted(c.message.content for c in r.choices) == ["The answer is 5.", "The answer is 5.",
                                                               "The answer is 6."]
        assert [c.index for c in r.choices] == [0, 1, 2] and all(c.logprobs.content for c in r.choices)
        assert sorted(c.seed for c in upstream.calls) == [11, 12, 13]
        ext = r.model_extra["sc_chains"]
        assert ext["n"] == 3 and ext["cost"]["calls"] == 3 and r.usage.completion_tokens == ext["cost"]["completion_tokens"]
        assert all(c.model_extra["sc_chains"]["chain"] == "baseline" for c in r.choices)
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="baseline", messages=list(MSG), n=2, stream=True)
        assert err.value.body["param"] == "n"
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="baseline", messages=list(MSG), n=17)
        assert err.value.body["param"] == "n"
        # the adapter's batch of samples reaches the server as one request and gets every choice
        model = OpenAIModel("baseline", base_url=url, api_key="unused", require_logprobs=False)
        sent: list[dict[str, Any]] = []
        call = model._call
        model._call = lambda path, payload: sent.append(payload) or call(path, payload)  # a spy: the real call
        before = len(upstream.calls)
        gens = model.batch([_req(20), _req(21), _req(22)])
        assert len(gens) == 3 and model.sends_n and len(upstream.calls) - before == 3
        assert [p.get("n") for p in sent] == [3]
        assert sorted(c.seed for c in upstream.calls[before:]) == [20, 21, 22]
