"""LLM-as-a-judge: parsing (fuzzed), expected score from literal logprobs, pairwise, the Judge."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from adapters.types import Generation, tokens_from_pairs
from graphs.judge import (
    Judge,
    expected_score,
    pairwise_winner,
    parse_preference,
    parse_score,
)
from graphs.judge.policy import mean_or_none
from graphs.judge.prompts import POINTWISE_PROMPT


@pytest.mark.parametrize(
    ("text", "score", "status"),
    [
        ("Relevant and complete.\nScore: 4", 4, "ok"),
        ("**Score:** 5", 5, "ok"),
        ("score = 3", 3, "ok"),
        ("Score: 2.0", 2, "ok"),
        ("Score: 1 ... revised. Score: 3", 3, "ok"),
        ("Score: 7", None, "out_of_range"),
        ("Score: 4.5", None, "out_of_range"),
        ("Score: -1", None, "out_of_range"),
        ("I would give it four points.", None, "parse_error"),
        ("", None, "parse_error"),
    ],
)
def test_parse_score_literals(text: str, score: int | None, status: str) -> None:
    assert parse_score(text)[:2] == (score, status)


@given(st.text(max_size=200), st.integers(0, 5), st.sampled_from(["Score: ", "score:", "**Score:** ", "SCORE = "]))
def test_parse_score_fuzz_finds_a_trailing_score(prefix: str, n: int, label: str) -> None:
    text = f"{prefix}\n{label}{n}"
    score, status, pos = parse_score(text)
    assert (score, status) == (n, "ok") and text[pos] == str(n)


@given(st.text(max_size=300))
def test_parse_score_never_raises_and_ok_means_in_range(text: str) -> None:
    score, status, pos = parse_score(text)
    assert status in ("ok", "parse_error", "out_of_range")
    assert (status == "ok") == (score is not None)
    if status == "ok":
        assert 0 <= score <= 5 and text[pos].isdigit()
    if status == "parse_error":
        assert pos == -1


def _gen(pairs) -> Generation:
    return Generation(text="".join(t for t, _, _ in pairs), tokens=tokens_from_pairs(pairs))


def test_expected_score_renormalises_over_digit_alternatives() -> None:
    L = math.log
    gen = _gen([
        ("Good", L(0.9), []),
        (". Score", L(0.9), []),
        (":", L(0.99), []),
        (" 4", L(0.6), [(" 4", L(0.6)), (" 5", L(0.3)), (" 3", L(0.05)), (" excellent", L(0.05))]),
    ])
    score, status, pos = parse_score(gen.text)
    assert (score, status) == (4, "ok")
    assert expected_score(gen.tokens, pos) == pytest.approx((4 * 0.6 + 5 * 0.3 + 3 * 0.05) / 0.95)


def test_expected_score_merges_spellings_and_handles_glued_tokens() -> None:
    L = math.log
    # "4" and " 4" are the same digit; 9 is out of the 0..5 range and ignored
    gen = _gen([("Score:", 0.0, []), (" 4", L(0.5), [(" 4", L(0.5)), ("4", L(0.2)), (" 2", L(0.2)), (" 9", L(0.1))])])
    _, _, pos = parse_score(gen.text)
    assert expected_score(gen.tokens, pos) == pytest.approx((4 * 0.7 + 2 * 0.2) / 0.9)
    # a token that glues the colon to the digit: ":3" with alternatives ":2", ":3"
    gen = _gen([("Score", 0.0, []), (":3", L(0.75), [(":3", L(0.75)), (":2", L(0.25))])])
    _, _, pos = parse_score(gen.text)
    assert expected_score(gen.tokens, pos) == pytest.approx(2.75)


def test_expected_score_is_none_without_a_distribution() -> None:
    gen = _gen([("Score:", 0.0, []), (" 4", -0.1, [])])
    assert expected_score(gen.tokens, parse_score(gen.text)[2]) is None
    assert expected_score(None, 3) is None
    assert expected_score(gen.tokens, -1) is None
    no_digits = _gen([("Score:", 0.0, []), (" 4", -0.1, [(" four", -0.1)])])
    assert expected_score(no_digits.tokens, 7) is None


def test_pairwise_parsing_and_aggregation() -> None:
    assert parse_preference("A is clearer.\nWinner: A") == "A"
    assert parse_preference("Winner: [[B]]") == "B"
    assert parse_preference("**Winner:** tie") == "tie"
    assert parse_preference("I prefer the first one") is None
    assert pairwise_winner("A", "B") == "A"  # a wins in both orders
    assert pairwise_winner("B", "A") == "B"
    assert pairwise_winner("A", "A") == "tie"  # position bias: inconsistent
    assert pairwise_winner("tie", "B") == "tie"
    assert pairwise_winner(None, "A") is None
    assert mean_or_none([None, 2, 4]) == 3 and mean_or_none([None]) is None


def test_judge_averages_k_seeded_samples_and_counts_parse_errors() -> None:
    fake = FakeLogprobModel(["Fine. Score: 4", "Fine. Score: 5", "I like it a lot."])
    res = Judge(fake, k=3, temperature=0.7, seed=10).score("What is 2+2?", "It is 4.")
    assert res.score == 4.5 and res.parse_errors == 1
    assert [s.status for s in res.samples] == ["ok", "ok", "parse_error"]
    assert res.samples[2].score is None and res.samples[2].raw == "I like it a lot."
    assert [c.seed for c in fake.calls] == [10, 11, 12]
    assert all(c.temperature == 0.7 and c.top_logprobs == 10 for c in fake.calls)
    assert fake.calls[0].messages[0]["content"] == POINTWISE_PROMPT.format(question="What is 2+2?", response="It is 4.")
    # the fake's alternatives are not digits, so the expected score is the sampled digit
    assert res.expected == 4.5 and res.usage["calls"] == 3
    assert res.to_dict()["parse_errors"] == 1


def test_all_samples_failing_is_none_not_zero() -> None:
    res = Judge(FakeLogprobModel(default="no idea"), k=2).score("q", "r")
    assert res.score is None and res.expected is None and res.parse_errors == 2 and res.best_score is None


def test_score_many_batches_and_groups_in_order() -> None:
    fake = FakeLogprobModel(default=lambda req: "Score: 1" if "first" in req.messages[0]["content"] else "Score: 5")
    results = Judge(fake, k=2, max_concurrency=3).score_many([("q", "first"), ("q", "second"), ("q", "first")])
    assert [r.score for r in results] == [1, 5, 1] and len(fake.calls) == 6


async def test_async_equals_sync() -> None:
    script = ["Score: 3", "Score: 4", "Winner: A", "Winner: B"]
    j1, j2 = Judge(FakeLogprobModel(script), k=2), Judge(FakeLogprobModel(script), k=2)
    assert j1.score("q", "r") == await j2.ascore("q", "r")
    assert j1.compare("q", "a", "b") == await j2.acompare("q", "a", "b")


def test_pairwise_swaps_positions() -> None:
    fake = FakeLogprobModel(["Winner: A", "Winner: B", "Winner: A", "Winner: A", "A is best", "Winner: B"])
    judge = Judge(fake, k=1, temperature=0.0)
    results = judge.compare_many([("q", "good", "bad"), ("q", "x", "y"), ("q", "m", "n")])
    assert [r.winner for r in results] == ["A", "tie", None]
    assert [r.status for r in results] == ["ok", "ok", "parse_error"]
    assert [r.consistent for r in results] == [True, False, False]
    first, swapped = fake.calls[0].messages[0]["content"], fake.calls[1].messages[0]["content"]
    assert first.index("[Response A]\ngood") < first.index("[Response B]\nbad")
    assert swapped.index("[Response A]\nbad") < swapped.index("[Response B]\ngood")


def test_judge_validation() -> None:
    with pytest.raises(InvalidRequestError):
        Judge(FakeLogprobModel(), k=0)
    with pytest.raises(InvalidRequestError):
        Judge(FakeLogprobModel(), k=3, temperature=0.0)
    with pytest.raises(InvalidRequestError):
        Judge(FakeLogprobModel(), top_p=0)
    assert Judge(FakeLogprobModel(logprobs=False)).top_logprobs == 0


def test_tiny_random_judge_counts_failures_not_zeros() -> None:
    from adapters.specs import resolve_model

    judge = Judge(resolve_model("hf:tiny-random"), k=2, max_tokens=12, seed=1)
    res = judge.score("What is 2+2?", "4")
    assert len(res.samples) == 2 and res.usage["calls"] == 2
    assert res.parse_errors == sum(s.status != "ok" for s in res.samples)
    if res.parse_errors == 2:
        assert res.score is None
    assert judge.compare("q", "a", "b").status in ("ok", "parse_error")


@pytest.mark.slow
def test_smollm2_judge_expected_score_in_range(smollm2) -> None:
    judge = Judge(smollm2, k=2, max_tokens=160)
    res = judge.score("What is the capital of France?", "The capital of France is Paris.")
    assert res.parse_errors + sum(s.status == "ok" for s in res.samples) == 2
    for s in res.samples:
        if s.status == "ok":
            assert s.expected is None or 0 <= s.expected <= 5
