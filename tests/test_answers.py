from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphs.answers import answers_equal, extract_answer, normalize_answer, parse_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Step 1: 3+4=7\nThe answer is 7.", "7"),
        ("The answer is $1,234.", "1234"),
        ("so the answer is 18 dollars", "18"),
        ("Natalia sold 72 clips.\n#### 72", "72"),
        ("We get \\boxed{\\frac{3}{4}} here; the answer is 5", "0.75"),
        ("\\boxed{3/4}", "0.75"),
        ("The answer is 2.50", "2.5"),
        ("The answer is 7.0", "7"),
        ("The answer is -3", "-3"),
        ("the answer is \u22125", "-5"),
        ("First 3 apples, then 5 more, total 8", "8"),
        ("The answer is: Paris.", "paris"),
        ("no numbers here", None),
        ("", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_parse_number_forms() -> None:
    assert parse_number("1,000") == 1000
    assert parse_number("$3.50") == parse_number("3.5")
    assert parse_number("50%") == 50
    assert parse_number("1/0") is None
    assert parse_number("abc") is None


def test_answers_equal() -> None:
    assert answers_equal("18", "18.0")
    assert answers_equal("1,000", "1000")
    assert answers_equal("0.5", "1/2")
    assert not answers_equal("18", "19")
    assert not answers_equal(None, "1")
    assert answers_equal("Paris", "paris.")


def test_normalize_keeps_non_terminating_fraction() -> None:
    assert normalize_answer("1/3") == "1/3"


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_integer_answers_round_trip(n: int) -> None:
    assert extract_answer(f"Step 1: compute.\nThe answer is {n:,}.") == str(n)
