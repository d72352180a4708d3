"""The demo's building blocks: seeded problem sets, the repetition stop, the example picker."""

from __future__ import annotations

import json

from adapters.fake import FakeReply
from sc_chains.cli import demo
from sc_chains.demo_examples import (
    DEMO_SETTINGS,
    RepetitionStop,
    arithmetic_problems,
    problems_for,
    repetition_offset,
    settings,
)
from sc_chains.testing import FakeLogprobModel

RUNAWAY = "Step 1: 24 - 9 = 15.\nStep 2: 15 - 7 = 8.\n" + "Step 3: 15 - 7 = 8.\n" * 60


def test_problem_sets_are_a_function_of_the_seed() -> None:
    assert arithmetic_problems(6, seed=3) == arithmetic_problems(6, seed=3)
    assert arithmetic_problems(6, seed=3) != arithmetic_problems(6, seed=4)
    for p in problems_for("s2a", 8):
        assert p.suggested is not None and p.suggested != p.gold
        assert p.question.endswith(f"I think the answer is {p.suggested}, but I'm really not sure.")
    assert all(p.suggested is None and int(p.gold) >= 0 for p in problems_for("leco", 8))


def test_repetition_offset_finds_the_first_repeated_line_or_sentence() -> None:
    assert RUNAWAY[repetition_offset(RUNAWAY):].startswith("Step 3:")
    assert repetition_offset("Step 1: 3 + 4 = 7.\nStep 2: 7 * 2 = 14.\nThe answer is 14.") is None
    text = "Tom has 5 apples. He buys 3 more. Tom has 5 apples. He buys 3 more."
    assert text[repetition_offset(text):] == "Tom has 5 apples. He buys 3 more."
    # a repeat inside the prefill is not the reply's to cut; one after it is
    assert repetition_offset(RUNAWAY, start=len(RUNAWAY)) is None


def _continuing(full: str) -> FakeLogprobModel:
    """A fake that continues ``full`` from whatever prefill it is given."""
    return FakeLogprobModel(default=lambda req: FakeReply(full[len(req.prefill or ""):]))


def test_repetition_stop_ends_a_runaway_reply_early() -> None:
    inner = _continuing(RUNAWAY)
    gen = RepetitionStop(inner, chunk=8).generate("q", max_tokens=400)
    assert gen.text == "Step 1: 24 - 9 = 15.\nStep 2: 15 - 7 = 8.\n"
    assert gen.finish_reason == "repetition"
    assert "".join(t.token for t in gen.tokens) == gen.text
    assert [t.offset for t in gen.tokens] == [sum(len(u.token) for u in gen.tokens[:i]) for i in range(len(gen.tokens))]
    assert gen.usage.completion_tokens < 40 and len(inner.calls) <= 5
    assert inner.calls[1].prefill == "".join(t.token for t in gen.tokens[:8])


def test_repetition_stop_leaves_a_clean_reply_alone() -> None:
    clean = "Step 1: 24 - 9 = 15.\nStep 2: 15 - 7 = 8.\nThe answer is 8."
    gen = RepetitionStop(_continuing(clean), chunk=4).generate("q", max_tokens=100, prefill="")
    assert (gen.text, gen.finish_reason) == (clean, "stop")
    short = RepetitionStop(_continuing(RUNAWAY), chunk=4).generate("q", max_tokens=6)
    assert short.finish_reason == "length" and short.usage.completion_tokens == 6


def test_repetition_stop_without_prefill_cuts_after_one_call() -> None:
    inner = FakeLogprobModel(default=RUNAWAY, prefill=False)
    gen = RepetitionStop(inner).generate("q", max_tokens=400)
    assert len(inner.calls) == 1 and gen.finish_reason == "repetition"
    assert gen.text == "Step 1: 24 - 9 = 15.\nStep 2: 15 - 7 = 8.\n"
    assert gen.usage.completion_tokens == 400  # one call: the tokens were spent, the text is cut


def test_settings_cap_every_token_limit() -> None:
    assert settings("leco") == DEMO_SETTINGS["leco"]
    capped = settings("critique", 16)
    assert capped["max_tokens"] == 16 and capped["critique_max_tokens"] == 16 and capped["max_turns"] == 1


def test_the_demo_shows_the_first_fixed_problem_and_says_so(tmp_path) -> None:
    records = [{"id": i, "flip": f} for i, f in enumerate(["i->i", "c->c", "i->c", "i->c"])]
    summary = {"n": 4, "baseline_correct": 1, "method_correct": 3, "i->c": 2, "c->i": 0, "c->c": 1,
               "i->i": 1, "method_seconds": 12.0}
    data = {"model": "hf:default", "seed": 0, "methods": {"leco": {"records": records, "summary": summary}}}
    path = tmp_path / "demo_set.json"
    path.write_text(json.dumps(data))
    loaded = demo.load_demo_set(path)
    problem, record, why = demo.pick_example("leco", loaded)
    assert problem == problems_for("leco", 3)[2] and record["id"] == 2 and "fixed" in why
    assert "fixed (wrong->right) 2, broken (right->wrong) 0" in demo.set_summary("leco", loaded)
    problem, record, why = demo.pick_example("s2a", loaded)
    assert problem.id == 0 and record is None and "no committed run" in why
    assert demo.load_demo_set(tmp_path / "missing.json") == {}


def test_suggestion_kept_finds_a_reworded_opinion_and_nothing_else() -> None:
    rewrite = "A baker makes 19 muffins and sells 2 of them. The answer is 34. How many muffins are left?"
    assert demo.suggestion_kept("34", rewrite) == "The answer is 34."
    assert demo.suggestion_kept("34", "A baker makes 19 muffins. How many are left?") is None
    assert demo.suggestion_kept("3", "He has 34 apples. It weighs 3.5 kg.") is None  # not a part of a number
    assert demo.suggestion_kept(None, rewrite) is None
    why = demo.what_changed("s2a", {"removed": ["I think the answer is 34."], "context": rewrite, "query": "",
                                    "parse_status": "fallback_no_labels"}, "34")
    assert len(why) == 2 and "still states the suggested answer" in why[1] and "The answer is 34." in why[1]


def test_struck_sentences_show_without_styles() -> None:
    import io

    from rich.console import Console

    from sc_chains.cli.s2a import cli_render

    result = {"question": "Tom has 3 apples. How many? I think it is 9.", "removed": ["I think it is 9."],
              "context": "Tom has 3 apples.", "query": "How many?", "parse_status": "ok"}
    plain = Console(file=io.StringIO(), width=100)  # a file: no styles, so strike-through would not show
    cli_render(result, plain)
    assert "~~I think it is 9.~~" in plain.file.getvalue() and "~~Tom" not in plain.file.getvalue()
    styled = Console(file=io.StringIO(), width=100, force_terminal=True, color_system="truecolor")
    cli_render(result, styled)
    assert "~~" not in styled.file.getvalue() and "\x1b[" in styled.file.getvalue()
