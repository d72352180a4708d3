"""The scripted fake that ships in sc_chains.testing."""

from __future__ import annotations

import asyncio
import math

import pytest

from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from sc_chains.testing import FakeLogprobModel, FakeReply, split_tokens


def test_split_tokens_keeps_newlines_alone() -> None:
    assert split_tokens("Step 1: a\nStep 2:  b") == ["Step", " 1:", " a", "\n", "Step", " 2:", "  b"]
    assert "".join(split_tokens("a \n\n b ")) == "a \n\n b "


def test_replies_come_in_order_and_calls_are_recorded() -> None:
    fake = FakeLogprobModel(["one", FakeReply("two", logprob=-1.0)])
    assert fake.generate("q1").text == "one"
    second = fake.generate([{"role": "user", "content": "q2"}], max_tokens=7, seed=3)
    assert second.text == "two" and second.tokens[0].logprob == -1.0
    assert [c.messages[0]["content"] for c in fake.calls] == ["q1", "q2"]
    assert fake.calls[1].max_tokens == 7 and fake.calls[1].seed == 3
    with pytest.raises(IndexError, match="reply queue is empty"):
        fake.generate("q3")


def test_overrides_set_logprobs_of_the_tokens_inside_a_substring() -> None:
    reply = FakeReply("Step 1: ok\nStep 2: bad\nThe answer is 4", overrides={"Step 2: bad": -3.0})
    gen = FakeLogprobModel([reply]).generate("q", top_logprobs=3)
    by_token = {t.token: t.logprob for t in gen.tokens}
    assert by_token[" bad"] == -3.0 and by_token[" ok"] == -0.05
    assert all(t.top_logprobs[0].logprob >= t.top_logprobs[-1].logprob for t in gen.tokens)
    assert all(sum(math.exp(a.logprob) for a in t.top_logprobs) <= 1.0 + 1e-9 for t in gen.tokens)
    assert "".join(t.token for t in gen.tokens) == gen.text
    assert [gen.text[t.offset : t.offset + len(t.token)] for t in gen.tokens] == [t.token for t in gen.tokens]


def test_stop_and_max_tokens() -> None:
    fake = FakeLogprobModel(default="a b c\nd e")
    assert fake.generate("q", stop=["\n"]).text == "a b c"
    cut = fake.generate("q", max_tokens=2)
    assert cut.text == "a b" and cut.finish_reason == "length"


def test_prefill_is_recorded_and_not_repeated() -> None:
    fake = FakeLogprobModel([" rest"])
    gen = fake.generate("q", prefill="Step 1: kept")
    assert gen.text == " rest" and gen.full_text == "Step 1: kept rest"
    assert fake.calls[0].prefill == "Step 1: kept"


def test_prefill_rejected_when_not_supported() -> None:
    with pytest.raises(InvalidRequestError, match="prefill"):
        FakeLogprobModel(["x"], prefill=False).generate("q", prefill="abc")


def test_top_logprobs_above_limit_is_rejected_before_calling() -> None:
    fake = FakeLogprobModel(["x"], max_top_logprobs=5)
    with pytest.raises(InvalidRequestError) as info:
        fake.generate("q", top_logprobs=6)
    assert info.value.value == 6 and "<= 5" in str(info.value)
    assert fake.calls == []


def test_no_logprobs_mode_is_detected() -> None:
    fake = FakeLogprobModel(["x"], logprobs=False)
    with pytest.raises(LogprobsUnavailableError, match="fake-logprob-model"):
        fake.require_logprobs()
    with pytest.raises(LogprobsUnavailableError):
        fake.checked(fake.generate("q"))


def test_exceptions_and_callables_in_the_queue() -> None:
    fake = FakeLogprobModel([TimeoutError("boom"), lambda req: f"echo {req.messages[-1]['content']}"])
    with pytest.raises(TimeoutError):
        fake.generate("a")
    assert fake.generate("b").text == "echo b"


def test_async_batch_and_abatch_keep_order() -> None:
    fake = FakeLogprobModel(default=lambda req: req.messages[-1]["content"].upper())
    assert [g.text for g in fake.batch(["a", "b", "c"], max_concurrency=2)] == ["A", "B", "C"]
    out = asyncio.run(fake.abatch(["x", "y"], max_concurrency=2))
    assert [g.text for g in out] == ["X", "Y"]
    assert asyncio.run(fake.agenerate("z")).text == "Z"
    with pytest.raises(InvalidRequestError, match="max_concurrency"):
        fake.batch(["a"], max_concurrency=0)
