"""Pure stop rules, edit distance, confidence and verdict parsing of the critique loop."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import InvalidRequestError
from adapters.types import TokenLogprob
from graphs.critique.config import CritiqueConfig
from graphs.critique.policy import (
    edit_distance,
    merge_turns,
    normalized_edit_distance,
    parse_verdict,
    sequence_confidence,
    stop_after_critique,
    stop_after_draft,
)


def test_edit_distance_literals() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "abc") == 0
    assert edit_distance(["a", "b"], ["b"]) == 1


@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12))
def test_edit_distance_is_a_metric(a: str, b: str, c: str) -> None:
    assert edit_distance(a, b) == edit_distance(b, a)
    assert (edit_distance(a, b) == 0) == (a == b)
    assert edit_distance(a, c) <= edit_distance(a, b) + edit_distance(b, c)
    assert edit_distance(a, b) <= max(len(a), len(b))


def test_normalized_edit_distance() -> None:
    assert normalized_edit_distance("", "") == 0.0
    assert normalized_edit_distance("the answer is 5", "the answer is 6") == 0.25
    assert normalized_edit_distance("a b", "c d e f") == 1.0
    assert normalized_edit_distance("abcd", "abce", unit="char") == 0.25
    # whitespace changes are not word edits
    assert normalized_edit_distance("x  y\n z", "x y z") == 0.0


def _tok(lp: float, off: int = 0) -> TokenLogprob:
    return TokenLogprob(token="t", logprob=lp, offset=off)


def test_sequence_confidence_is_mean_token_probability() -> None:
    assert sequence_confidence(None) is None
    assert sequence_confidence([]) is None
    assert sequence_confidence([_tok(0.0), _tok(math.log(0.5))]) == pytest.approx(0.75)
    assert sequence_confidence([_tok(math.log(0.2))]) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Step 2 is wrong.\nVerdict: incorrect", False),
        ("All good.\nVerdict: correct", True),
        ("**Verdict:** Correct", True),
        ("Verdict: correct ... on reflection Verdict: incorrect", False),
        ("It is correct.", True),
        ("It is not correct.", None),
        ("The sum in step 1 is off by one.", None),
        ("", None),
    ],
)
def test_parse_verdict(text: str, expected: bool | None) -> None:
    assert parse_verdict(text) is expected


BASE = dict(
    turns=1, max_turns=4, distance=None, collapse_threshold=0.02, confidence=0.5,
    confidence_threshold=None, tokens_used=100, token_budget=1000,
)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"turns": 4}, "max_turns"),
        ({"turns": 2, "distance": 0.0}, "collapse"),
        ({"turns": 2, "distance": 0.019}, "collapse"),
        ({"turns": 2, "distance": 0.02}, None),
        ({"confidence_threshold": 0.9, "confidence": 0.95}, "confident"),
        ({"confidence_threshold": 0.9, "confidence": 0.9}, "confident"),
        ({"confidence_threshold": 0.9, "confidence": 0.89}, None),
        ({"confidence_threshold": 0.9, "confidence": None}, None),  # unknown confidence never gates
        ({"tokens_used": 1000}, "budget"),
        ({"token_budget": None, "tokens_used": 10**9}, None),
        ({"turns": 4, "distance": 0.0, "tokens_used": 5000}, "max_turns"),  # precedence
        ({"turns": 2, "distance": 0.0, "confidence_threshold": 0.1}, "collapse"),
    ],
)
def test_stop_after_draft(changes: dict, reason: str | None) -> None:
    assert stop_after_draft(**{**BASE, **changes}) == reason


def test_stop_after_critique() -> None:
    assert stop_after_critique(approved=True, tokens_used=0, token_budget=10) == "approved"
    assert stop_after_critique(approved=False, tokens_used=5, token_budget=10) is None
    assert stop_after_critique(approved=None, tokens_used=10, token_budget=10) == "budget"
    assert stop_after_critique(approved=None, tokens_used=10, token_budget=None) is None


def test_merge_turns_upserts_by_index() -> None:
    left = [{"index": 0, "text": "a", "critique": None}]
    merged = merge_turns(left, [{"index": 0, "critique": "c"}, {"index": 1, "text": "b"}])
    assert merged == [{"index": 0, "text": "a", "critique": "c"}, {"index": 1, "text": "b"}]
    assert left == [{"index": 0, "text": "a", "critique": None}]  # inputs not mutated
    assert merge_turns(None, None) == []


def test_config_defaults_and_validation() -> None:
    assert CritiqueConfig().turn_limit == 4
    assert CritiqueConfig(mode="score").turn_limit == 2
    assert CritiqueConfig(mode="rci").turn_limit == 3
    assert CritiqueConfig(mode="rci", max_turns=5).turn_limit == 6  # max_turns counts revisions
    assert CritiqueConfig(max_turns=0).turn_limit == 1
    assert CritiqueConfig(mode="score", max_turns=1).turn_limit == 2
    for bad in (
        {"mode": "nope"},
        {"mode": "score", "max_turns": 2},
        {"max_turns": -1},
        {"collapse_threshold": 1.5},
        {"confidence_threshold": 0.0},
        {"token_budget": 0},
        {"max_tokens": -1},
    ):
        with pytest.raises(InvalidRequestError):
            CritiqueConfig(**bad)
