"""LECO's pure policy on literal numbers: steps, the three scores, cut point, stop rule, vote."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import InvalidRequestError
from adapters.types import tokens_from_pairs
from graphs.leco.config import MAX_RETHINKS_LIMIT, LecoConfig
from graphs.leco.policy import (
    Tok,
    average_score,
    cut_point,
    divergence_score,
    is_candidate,
    next_step_number,
    score_steps,
    should_stop,
    split_steps,
    step_score,
    to_tokens,
    token_probability,
    transition_score,
    weighted_vote,
)
from sc_chains.testing import split_tokens


def toks_for(text: str, probs: list[float]) -> list[Tok]:
    """Fake-tokenise ``text`` (newlines alone) and give token j probability probs[j]."""
    pieces = split_tokens(text)
    assert len(pieces) == len(probs), pieces
    out, off = [], 0
    for piece, p in zip(pieces, probs):
        out.append((piece, math.log(p) if p > 0 else -math.inf, off))
        off += len(piece)
    return to_tokens(out)


# -- token probability -------------------------------------------------------------------------
def test_true_probability_is_exp_logprob() -> None:
    assert token_probability(Tok("a", math.log(0.6), 0), "true") == pytest.approx(0.6)
    assert token_probability(Tok("a", 0.0, 0), "true") == 1.0
    assert token_probability(Tok("a", 1e-9, 0), "true") == 1.0  # rounding above 0 is clamped
    assert token_probability(Tok("a", -math.inf, 0), "true") == 0.0


def test_topk_probability_renormalises_over_the_top_k() -> None:
    alts = tuple((t, math.log(p)) for t, p in [("a", 0.6), ("b", 0.2), ("c", 0.1), ("d", 0.05), ("e", 0.04), ("f", 0.01)])
    tok = Tok("a", math.log(0.6), 0, alts)
    # k=5: 0.6 / (0.6 + 0.2 + 0.1 + 0.05 + 0.04) = 0.6 / 0.99
    assert token_probability(tok, "topk", 5) == pytest.approx(0.6 / 0.99)
    # k=2: 0.6 / (0.6 + 0.2) = 0.75
    assert token_probability(tok, "topk", 2) == pytest.approx(0.75)
    # a sampled token outside the top-2 joins the denominator: 0.01 / (0.6 + 0.2 + 0.01)
    sampled = Tok("f", math.log(0.01), 0, alts)
    assert token_probability(sampled, "topk", 2) == pytest.approx(0.01 / 0.81)
    # plain-float alternatives (no token names) work too
    assert token_probability(Tok("a", math.log(0.6), 0, tuple((None, lp) for _, lp in alts)), "topk", 2) == pytest.approx(0.75)


def test_topk_without_alternatives_and_nan_are_errors() -> None:
    with pytest.raises(InvalidRequestError, match="top_logprobs"):
        token_probability(Tok("a", -0.1, 0), "topk", 5)
    with pytest.raises(InvalidRequestError, match="NaN"):
        token_probability(Tok("a", math.nan, 0), "true")


# -- the three scores, by hand -----------------------------------------------------------------
def test_average_score_by_hand() -> None:
    # (0.9 + 0.5 + 0.7) / 3 = 0.7
    assert average_score([0.9, 0.5, 0.7]) == pytest.approx(0.7)


def test_transition_score_skips_the_step_label() -> None:
    # fake tokens: "Step" " 1:" " x" " y" " z"; the label "Step 1:" is two tokens (0.99, 0.98)
    text = "Step 1: x y z"
    toks = toks_for(text, [0.99, 0.98, 0.5, 0.7, 0.9])
    (step,) = split_steps(text, toks)
    assert step.token_ids == (0, 1, 2, 3, 4) and step.content_ids == (2, 3, 4)
    probs = [0.99, 0.98, 0.5, 0.7, 0.9]
    # K=2 after the label: (0.5 + 0.7) / 2 = 0.6
    assert transition_score([probs[j] for j in step.content_ids], 2) == pytest.approx(0.6)
    # K=5 is longer than the content: all three, (0.5 + 0.7 + 0.9) / 3 = 0.7
    assert transition_score([probs[j] for j in step.content_ids], 5) == pytest.approx(0.7)
    # a label-only step falls back to its first K tokens: (0.99 + 0.98) / 2
    assert transition_score([], 5, [0.99, 0.98]) == pytest.approx(0.985)


def test_divergence_score_by_hand() -> None:
    # p = (0.75, 0.25): H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335; KL = ln 2 - H = 0.130812
    # div = ln(0.130812^(1/3) + 1) = ln(1.507632) = 0.410540
    assert divergence_score([0.75, 0.25]) == pytest.approx(0.41054039695773886, abs=1e-12)
    # p_hat is rescaled first, so (0.2, 0.6) -> (0.25, 0.75): the same value
    assert divergence_score([0.2, 0.6]) == pytest.approx(0.41054039695773886, abs=1e-12)
    # tau = 1: ln(0.130812 + 1) = 0.122936
    assert divergence_score([0.75, 0.25], tau=1.0) == pytest.approx(math.log(1.130812035941137))


def test_combined_score_by_hand() -> None:
    probs = [0.75, 0.25]
    s = step_score(probs, probs, transition_k=1)
    # avg 0.5, trans 0.75 (first content token), div 0.410540 -> 0.5 + 0.75 - 0.410540 = 0.839460
    assert (s.avg, s.trans) == (pytest.approx(0.5), pytest.approx(0.75))
    assert s.score == pytest.approx(0.5 + 0.75 - 0.41054039695773886)
    w = step_score(probs, probs, transition_k=1, weights=(2.0, 0.0, 1.0))
    assert w.score == pytest.approx(2 * 0.5 - 0.41054039695773886)


def test_edge_cases_stay_finite() -> None:
    # one token: KL over one position is 0
    assert divergence_score([0.3]) == 0.0
    assert step_score([0.3], [0.3]).score == pytest.approx(0.6)
    # identical probabilities (including all 1.0): KL = 0 exactly, never a complex power
    for p in (1.0, 0.37, 1e-300):
        assert divergence_score([p] * 7) == 0.0
    # a zero next to a one: p_hat = (1, 0), H = 0, KL = ln 2 -> ln(ln(2)^(1/3) + 1) = 0.633926
    assert divergence_score([1.0, 0.0]) == pytest.approx(0.6339262529945103)
    # all zero: treated as uniform
    assert divergence_score([0.0, 0.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        average_score([])


# -- steps -----------------------------------------------------------------------------------
def test_split_steps_on_offsets_excludes_newline_tokens() -> None:
    text = "Let's think step by step.\nStep 1: 3 + 4 = 7.\n\nStep 2: 7 - 1 = 6.\nThe answer is 6.\n"
    # adapter tokens (TokenLogprob with offsets), as Generation.tokens holds them
    toks = to_tokens(tokens_from_pairs([(p, -0.1, []) for p in split_tokens(text)]))
    steps = split_steps(text, toks)
    assert [s.text for s in steps] == [
        "Let's think step by step.", "Step 1: 3 + 4 = 7.", "", "Step 2: 7 - 1 = 6.", "The answer is 6.",
    ]
    newline_ids = {j for j, t in enumerate(toks) if t.text == "\n"}
    for s in steps:
        assert not newline_ids & set(s.token_ids)
        assert "".join(toks[j].text for j in s.token_ids) == s.text
        assert text[s.start : s.end] == s.text
    assert steps[2].token_ids == ()  # the blank line
    assert [is_candidate(s.text, len(s.token_ids)) for s in steps] == [False, True, False, True, False]


def test_split_steps_works_without_labels_and_with_merged_newline_tokens() -> None:
    text = "a b\nc d"
    # a tokenizer that merges "b\n": that token crosses the line end and belongs to no step
    toks = to_tokens([("a", -0.1, 0), (" b\n", -0.2, 1), ("c", -0.3, 4), (" d", -0.4, 5)])
    s0, s1 = split_steps(text, toks)
    assert (s0.token_ids, s1.token_ids) == ((0,), (2, 3))
    assert s0.label_end == s0.start and s1.content_ids == (2, 3)
    assert split_steps("", []) == []


def test_score_steps_marks_prefix_steps_as_kept() -> None:
    prefix = "Step 1: keep.\n"
    gen = "Step 2: new.\nThe answer is 2."
    toks = to_tokens([(t, -0.1, o) for t, o in _with_offsets(gen)], shift=len(prefix))
    rows = score_steps(prefix + gen, toks, prob_mode="true", min_offset=len(prefix))
    assert [r["candidate"] for r in rows] == [False, True, False]
    assert rows[0]["score"] is None and rows[0]["n_tokens"] == 0
    assert rows[1]["avg"] == pytest.approx(math.exp(-0.1)) and rows[1]["div"] == 0.0


def _with_offsets(text: str) -> list[tuple[str, int]]:
    out, off = [], 0
    for p in split_tokens(text):
        out.append((p, off))
        off += len(p)
    return out


def test_candidate_filter() -> None:
    assert not is_candidate("So The Answer Is 5", 3)
    assert not is_candidate("Let's go Step By Step", 3)
    assert not is_candidate("   ", 1)
    assert not is_candidate("Step 1: x", 0)
    assert is_candidate("Step 1: x", 2)


# -- cut point, stop rule, vote ----------------------------------------------------------------
def test_cut_point_is_the_earlier_of_the_two_lowest() -> None:
    # lowest: step 1 (0.7), then step 2 (1.2) -> the earlier is 1
    assert cut_point([1.9, 0.7, 1.2, None]) == 1
    # lowest: step 3 (0.1), then step 1 (0.5) -> 1
    assert cut_point([1.9, 0.5, 1.2, 0.1]) == 1
    # plus the steps already kept
    assert cut_point([1.9, 0.7, 1.2, None], offset=3) == 4
    assert cut_point([None, 0.5]) == 1
    assert cut_point([1.0, 1.0, 1.0]) == 0  # ties rank the earlier step first
    assert cut_point([None, None]) is None and cut_point([]) is None


def test_should_stop() -> None:
    assert should_stop(["7"], 0, 3) is None
    assert should_stop(["7", "7.0"], 1, 3) == "agreement"
    assert should_stop(["7", "6"], 1, 3) is None
    assert should_stop(["7", "6", "5", "4"], 3, 3) == "max_rethinks"
    assert should_stop([None, None], 1, 3) is None  # no answer never agrees
    assert should_stop(["7"], 0, 0) == "max_rethinks"


def test_weighted_vote() -> None:
    assert weighted_vote(["7", "6"]) == ("7", {"7": 1.5, "6": 1.0})
    assert weighted_vote(["7", "6", "6"]) == ("6", {"7": 1.5, "6": 2.0})
    # 2 and 3 tie at 2.0 (above 1's 1.5): 2 was seen last
    assert weighted_vote(["1", "2", "3", "3", "2"])[0] == "2"
    assert weighted_vote(["1", "3", "2", "2", "3"])[0] == "3"
    # equal answers pool (first spelling kept); None does not vote
    assert weighted_vote(["18", None, "18.0"]) == ("18", {"18": 2.5})
    assert weighted_vote([None, "4", "5"])[0] == "5"
    assert weighted_vote([None, None]) == (None, {})
    assert weighted_vote(["7", "6"], first_weight=0.5)[0] == "6"


def test_next_step_number() -> None:
    assert next_step_number("Step 1: a\nStep 2: b\n") == 3
    assert next_step_number("**Step 4:** x\n") == 5
    assert next_step_number("first\nsecond\n") == 3
    assert next_step_number("") == 1


# -- config ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [{"k": 0}, {"tau": 0}, {"tau": -1.0}, {"max_rethinks": -1}, {"max_rethinks": MAX_RETHINKS_LIMIT + 1},
     {"max_tokens": 0}, {"max_completion_tokens": 0}, {"prob_mode": "logits"}, {"weights": (1, 1)},
     {"regeneration": "x"}, {"temperature": -0.1}, {"transition_k": 0}, {"k": True}],
)
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(InvalidRequestError) as err:
        LecoConfig(**bad)
    assert err.value.param == next(iter(bad))


def test_config_from_options() -> None:
    cfg = LecoConfig.from_options({"k": 3, "weights": [1, 1, 0]})
    assert cfg.k == 3 and cfg.weights == (1, 1, 0)
    with pytest.raises(InvalidRequestError, match="LecoConfig accepts"):
        LecoConfig.from_options({"kk": 3})


# -- properties ------------------------------------------------------------------------------
prob = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(prob, min_size=1, max_size=40), st.integers(1, 8), st.floats(0.05, 3.0))
def test_scores_are_finite(probs: list[float], k: int, tau: float) -> None:
    s = step_score(probs, probs[1:], transition_k=k, tau=tau)
    assert all(math.isfinite(v) for v in (s.avg, s.trans, s.div, s.score))
    assert 0.0 <= s.div <= math.log(math.log(len(probs)) ** tau + 1) + 1e-9 if len(probs) > 1 else s.div == 0


line = st.text(alphabet="abc 12:.=+", min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(line, min_size=1, max_size=8), st.lists(prob, min_size=60, max_size=60), st.integers(0, 5))
def test_cut_point_lies_inside_the_solution(lines: list[str], probs: list[float], kept: int) -> None:
    text = "\n".join(f"Step {i + 1}: {x}" if i % 2 == 0 else x for i, x in enumerate(lines))
    pieces = _with_offsets(text)
    toks = to_tokens([(t, math.log(p) if p > 0 else -math.inf, o) for (t, o), p in zip(pieces, probs * 4)])
    rows = score_steps(text, toks, prob_mode="true")
    for r in rows:
        assert r["score"] is None or math.isfinite(r["score"])
    k = cut_point([r["score"] if r["candidate"] else None for r in rows], offset=kept)
    if k is not None:
        assert kept <= k < kept + len(rows)
        assert rows[k - kept]["candidate"]


def test_attempt_answer_never_takes_a_step_label_and_reads_any_kind_of_answer() -> None:
    from graphs.leco.policy import attempt_answer, looks_like_reasoning

    assert attempt_answer("Step 1: 3 + 4 = 7.\nStep 2: So it is done.") == "7"  # not the label's 2
    assert attempt_answer("Step 1: 3 + 4 = 7.\nThe answer is 7.") == "7"
    assert attempt_answer("Step 1: The capital of France is Paris.") == "the capital of france is paris"
    assert attempt_answer("") is None
    assert looks_like_reasoning("How many apples are left?") and looks_like_reasoning("What is 6 times 7?")
    assert not looks_like_reasoning("What is the capital of France?")
