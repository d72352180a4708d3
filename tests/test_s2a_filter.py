"""S2A filter variant: sentence split, yes/no relevance scores, the filter, the loop on a scripted fake."""

from __future__ import annotations

import math

import pytest

from adapters.errors import InvalidRequestError
from adapters.fake import FakeLogprobModel
from adapters.types import Generation, TokenLogprob, TopLogprob
from graphs.driver import execute
from graphs.loop import drive
from graphs.s2a.filter import (
    RELEVANCE_INSTRUCTION,
    drop_decisions,
    RELEVANCE_TOP_LOGPROBS,
    filter_sentences,
    relevance_loop,
    relevance_messages,
    relevance_score,
    split_problem,
)

P = ("Tom has 3 apples. His sister Ann is 12 years old. He buys 4 more apples. "
     "How many apples does he have now?")


def yes_no(p_yes: float, p_no: float, chosen: str = "Yes", others: tuple[tuple[str, float], ...] = ()) -> Generation:
    """A one-token reply whose top alternatives give these probabilities."""
    alts = [TopLogprob(t, math.log(p)) for t, p in (("Yes", p_yes), ("No", p_no), *others) if p > 0]
    alts.sort(key=lambda a: -a.logprob)
    lp = next(a.logprob for a in alts if a.token == chosen)
    return Generation(text=chosen, tokens=(TokenLogprob(chosen, lp, 0, tuple(alts)),))


def test_split_problem_question_and_context() -> None:
    context, question = split_problem(P)
    assert question == "How many apples does he have now?"
    assert context == ["Tom has 3 apples.", "His sister Ann is 12 years old.", "He buys 4 more apples."]
    assert split_problem("Add 2 and 3.") == ([], "Add 2 and 3.")  # no '?': the last sentence
    assert split_problem("How many are left? Ann had 5.")[1] == "How many are left?"
    with pytest.raises(InvalidRequestError, match="problem"):
        split_problem("  ")


def test_relevance_score_from_top_logprobs() -> None:
    p_yes, p_no, score = relevance_score(yes_no(0.6, 0.2))
    assert math.isclose(p_yes, 0.6) and math.isclose(p_no, 0.2) and math.isclose(score, 0.75)
    # spelling variants add up; unrelated tokens are ignored
    g = yes_no(0.3, 0.2, others=((" yes", 0.1), ("YES", 0.1), ("Maybe", 0.2)))
    assert math.isclose(relevance_score(g)[2], 0.5 / 0.7)
    assert relevance_score(yes_no(0.9, 0.0))[2] == 1.0  # "No" absent from the top list counts as 0
    no_top = Generation(text="Sure", tokens=(TokenLogprob("Sure", -0.1, 0),))
    assert relevance_score(no_top) == (0.0, 0.0, None)
    chosen_only = Generation(text="No", tokens=(TokenLogprob("No", -0.2, 0),))
    assert relevance_score(chosen_only)[2] == 0.0
    assert relevance_score(Generation(text="", tokens=()))[2] is None


def test_filter_drops_low_scores_keeps_question_and_unknowns() -> None:
    unknown = Generation(text="?", tokens=(TokenLogprob("?", -0.1, 0),))
    out = filter_sentences(P, [yes_no(0.9, 0.1), yes_no(0.2, 0.7), unknown], rule="threshold", threshold=0.5)
    assert out.problem == "Tom has 3 apples. He buys 4 more apples. How many apples does he have now?"
    assert out.dropped == ["His sister Ann is 12 years old."]
    assert [(s["index"], s["kept"]) for s in out.scores] == [(0, True), (1, False), (2, True)]
    assert out.scores[2]["score"] is None and out.question.endswith("now?")
    keep_all = filter_sentences(P, [yes_no(0.9, 0.1), yes_no(0.2, 0.7), unknown], rule="threshold", threshold=0.0)
    assert keep_all.problem == P and keep_all.dropped == []
    with pytest.raises(InvalidRequestError, match="replies"):
        filter_sentences(P, [unknown])
    with pytest.raises(InvalidRequestError, match="threshold"):
        filter_sentences(P, [unknown] * 3, rule="threshold", threshold=1.5)


def test_question_in_the_middle_keeps_its_place() -> None:
    text = "Ann had 5 pens. How many are left? She lost 2. Her dog is brown."
    out = filter_sentences(text, [yes_no(0.8, 0.2), yes_no(0.7, 0.3), yes_no(0.1, 0.9)], rule="threshold")
    assert out.problem == "Ann had 5 pens. How many are left? She lost 2."


def test_relevance_loop_on_a_scripted_fake_shares_the_prefix() -> None:
    fake = FakeLogprobModel([yes_no(0.8, 0.1), yes_no(0.05, 0.9), yes_no(0.7, 0.2)])
    events = []
    result = drive(relevance_loop(P), lambda req: execute(fake, req), on_emit=lambda e: events.append(e))
    assert result.dropped == ["His sister Ann is 12 years old."]
    assert [e.name for e in events] == ["s2a.filter"] and events[0].payload["scores"] == result.scores
    reqs = fake.calls
    assert len(reqs) == 3 and all(r.max_tokens == 1 and r.temperature == 0 for r in reqs)
    assert all(r.top_logprobs == RELEVANCE_TOP_LOGPROBS for r in reqs)
    texts = [r.messages[-1]["content"] for r in reqs]
    prefix = texts[0].split("Sentence:")[0]
    assert prefix.startswith(f"Problem: {P}") and all(t.startswith(prefix) for t in texts)
    assert texts[1].endswith(f"Sentence: \"His sister Ann is 12 years old.\"\n{RELEVANCE_INSTRUCTION}")
    assert relevance_messages(P, "Q?", "S.", system="sys")[0] == {"role": "system", "content": "sys"}


def test_drop_rules_on_literals() -> None:
    scores = [0.45, 0.30, None, 0.50]
    assert drop_decisions(scores, rule="threshold", threshold=0.5) == [True, True, False, False]
    assert drop_decisions(scores) == [False, True, False, False]  # default: "lowest", margin 0.02
    assert drop_decisions(scores, rule="lowest", margin=0.05) == [False, True, False, False]
    assert drop_decisions(scores, rule="lowest", margin=0.2) == [False, False, False, False]  # not clearly lowest
    assert drop_decisions([0.3, 0.3, 0.6], rule="lowest") == [False, False, False]  # a tie drops nothing
    assert drop_decisions([0.1, None], rule="lowest") == [False, False]  # one known score: no comparison
    with pytest.raises(InvalidRequestError, match="rule"):
        drop_decisions(scores, rule="median")
    with pytest.raises(InvalidRequestError, match="margin"):
        drop_decisions(scores, rule="lowest", margin=2)


def test_lowest_rule_in_the_filter() -> None:
    out = filter_sentences(P, [yes_no(0.4, 0.6), yes_no(0.2, 0.8), yes_no(0.45, 0.55)], rule="lowest")
    assert out.dropped == ["His sister Ann is 12 years old."]
    assert filter_sentences(P, [yes_no(0.4, 0.6)] * 3, rule="lowest").dropped == []
