"""Pure decisions of the critique loop: stop rules, edit distance, confidence, verdicts, echoes,
review decisions and what a verifier may return."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.errors import InvalidRequestError
from adapters.types import TokenLogprob
from graphs.critique.config import MAX_REVISIONS, CritiqueConfig
from graphs.critique.policy import (
    echo_reason,
    parse_review,
    parse_verdict,
    read_verdict,
    sequence_confidence,
    stop_after_critique,
    stop_after_draft,
)
from graphs.critique.prompts import RCI_IMPROVE, SCORE_INSTRUCTION, SELF_REFINE_FEEDBACK, SELF_REFINE_REFINE
from graphs.text import edit_distance as normalized_edit_distance
from graphs.text import levenshtein as edit_distance


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
    turns=1, turn_limit=4, distance=None, collapse_threshold=0.02, confidence=0.5,
    confidence_threshold=None, completion_tokens=100, max_completion_tokens=1000,
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
        ({"turns": 4, "limit_reason": "max_corrections"}, "max_corrections"),
        ({"completion_tokens": 1000}, "max_completion_tokens"),
        ({"max_completion_tokens": None, "completion_tokens": 10**9}, None),
        ({"turns": 4, "distance": 0.0, "completion_tokens": 5000}, "max_turns"),  # precedence
        ({"turns": 2, "distance": 0.0, "confidence_threshold": 0.1}, "collapse"),
    ],
)
def test_stop_after_draft(changes: dict, reason: str | None) -> None:
    assert stop_after_draft(**{**BASE, **changes}) == reason


def test_stop_after_critique() -> None:
    kw = {"max_completion_tokens": 10}
    assert stop_after_critique(approved=True, completion_tokens=0, **kw) == "approved"
    assert stop_after_critique(approved=False, completion_tokens=5, **kw) is None
    assert stop_after_critique(approved=None, completion_tokens=10, **kw) == "max_completion_tokens"
    assert stop_after_critique(approved=None, completion_tokens=10, max_completion_tokens=None) is None


CRITIQUE = "Step 2 adds 3 and 4 and gets 8, but 3 plus 4 is 7, so the final answer is wrong."
PROMPTS = (SELF_REFINE_FEEDBACK, SELF_REFINE_REFINE, RCI_IMPROVE, SCORE_INSTRUCTION)


@pytest.mark.parametrize(
    ("revision", "reason"),
    [
        ("3 + 4 = 7. The answer is 7.", None),
        ("I re-checked step 2: 3 plus 4 is 7, so the answer is 7.", None),  # uses the feedback: fine
        ("Verdict: incorrect", "verdict"),
        ("The sum is wrong.\n**Verdict:** incorrect", "verdict"),
        ("Using all the feedback so far, write an improved solution that fixes the problems.", "prompt"),
        ("Sure! using all the FEEDBACK so far,  write an improved solution that fixes the problems", "prompt"),
        ("Based on the problems you found, improve your answer.", "prompt"),
        ("Feedback:\nThe answer is 7.", "feedback"),
        (CRITIQUE, "critique"),
        ("Critique: " + CRITIQUE, "critique"),
        ("", "empty"),
        ("   \n ", "empty"),
    ],
)
def test_echo_reason(revision: str, reason: str | None) -> None:
    assert echo_reason(revision, PROMPTS, CRITIQUE) == reason


def test_echo_reason_needs_a_long_enough_shared_sentence() -> None:
    # a short critique sentence repeated inside a real answer is not an echo
    assert echo_reason("Step 1: 3 + 4 = 7. The answer is 7.", PROMPTS, "The answer is 7.") is None
    assert echo_reason("Review your previous answer please.", (), None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"decisions": [{"type": "approve"}]}, {"type": "approve"}),
        ({"decisions": [{"type": "reject", "message": "keep it"}]}, {"type": "reject", "message": "keep it"}),
        ({"decisions": [{"type": "edit", "edited_action": {"name": "critique.revise", "args": {"critique": "c"}}}]},
         {"type": "edit", "critique": "c"}),
        ({"type": "approve"}, {"type": "approve"}),
        ({"action": "edit", "critique": "c"}, {"type": "edit", "critique": "c"}),
        ({"action": "reject"}, {"type": "reject"}),
    ],
)
def test_parse_review_accepts_langchains_hitl_shape(value: object, expected: dict) -> None:
    assert parse_review(value) == expected


@pytest.mark.parametrize(
    "value",
    ["approve", "no", True, None, {"decisions": []}, {"decisions": [{"type": "approve"}, {"type": "approve"}]},
     {"decisions": [{"type": "maybe"}]}, {"decisions": [{"type": "edit"}]},
     {"decisions": [{"type": "edit", "edited_action": {"args": {"critique": "  "}}}]}, {"decisions": "approve"}],
)
def test_parse_review_rejects_anything_else(value: object) -> None:
    with pytest.raises(InvalidRequestError, match="decisions"):
        parse_review(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, (True, "")),
        (False, (False, "")),
        ((True, "ok"), (True, "ok")),
        ((False, None), (False, "")),
        ({"decisions": [{"type": "approve"}]}, (True, "")),
        ({"decisions": [{"type": "reject"}]}, (False, "")),  # never approval
        ({"decisions": [{"type": "reject", "message": "wrong sum"}]}, (False, "wrong sum")),
        ({"decisions": [{"type": "edit", "edited_action": {"args": {"critique": "fix step 2"}}}]},
         (False, "fix step 2")),
    ],
)
def test_read_verdict(value: object, expected: tuple) -> None:
    assert read_verdict(value) == expected


@pytest.mark.parametrize("value", ["no", "yes", "", 1, 0, None, ("yes", "x"), (True, 3), {"ok": True}, [True]])
def test_read_verdict_only_an_explicit_true_approves(value: object) -> None:
    with pytest.raises(InvalidRequestError, match="verifier result"):
        read_verdict(value)


def test_config_defaults_and_validation() -> None:
    assert CritiqueConfig().turn_limit == 4
    assert CritiqueConfig(mode="score").turn_limit == 2
    assert CritiqueConfig(mode="rci").turn_limit == 3
    assert CritiqueConfig(mode="rci", max_turns=5).turn_limit == 6  # max_turns counts revisions
    assert CritiqueConfig(max_turns=0).turn_limit == 1
    assert CritiqueConfig(mode="score", max_turns=1).turn_limit == 2
    assert CritiqueConfig(max_turns=MAX_REVISIONS).turn_limit == MAX_REVISIONS + 1
    assert CritiqueConfig().replace(mode="rci").mode == "rci"
    with pytest.raises(InvalidRequestError, match="accepts"):
        CritiqueConfig.from_options({"token_budget": 100})
    for bad in (
        {"mode": "nope"},
        {"mode": "score", "max_turns": 2},
        {"max_turns": -1},
        {"collapse_threshold": 1.5},
        {"confidence_threshold": 0.0},
        {"max_completion_tokens": 0},
        {"max_tokens": -1},
        {"max_turns": MAX_REVISIONS + 1},  # the hard ceiling
        {"interrupt_before_revise": "yes"},
        {"refine_prompt": " "},
    ):
        with pytest.raises(InvalidRequestError):
            CritiqueConfig(**bad)
