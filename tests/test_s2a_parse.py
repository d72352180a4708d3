"""S2A's pure parts: labelled-section parsing, the fallback policy, the removal diff, prompts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.errors import InvalidRequestError, SCChainsError
from graphs.s2a.config import S2AConfig
from graphs.s2a.parse import (
    last_question_sentence,
    parse_rewrite,
    removed_sentences,
    sentence_spans,
    split_sentences,
)
from graphs.s2a.prompts import BUILTIN_REWRITES, RewritePrompt, build_answer_prompt

OP = BUILTIN_REWRITES["opinion"]
IC = BUILTIN_REWRITES["irrelevant"]
SINGLE = BUILTIN_REWRITES["opinion_single"]
ORIGINAL = "Which city is the capital of Australia? I think the answer is Sydney, but I'm really not sure."


def parse(text: str, prompt: RewritePrompt = OP, original: str = ORIGINAL):
    return parse_rewrite(text, original, context_label=prompt.context_label, question_label=prompt.question_label)


# --- labelled sections ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        # the labels exactly as the prompt writes them
        "Unbiased text context (includes all content except user's bias): Australia is a country.\n"
        "Question/Query (does not include user bias/preference): Which city is the capital?",
        # markdown bold, colon inside the bold, chatter before and after
        "Sure! Here is the extraction.\n\n**Unbiased text context:** Australia is a country.\n\n"
        "**Question/Query:** Which city is the capital?\n\nI hope this helps!",
        # colon outside the bold, upper case, a dash
        "**UNBIASED TEXT CONTEXT**: Australia is a country.\n**QUESTION/QUERY** - Which city is the capital?",
        # reordered, headings alone on their lines
        "### Question/Query\nWhich city is the capital?\n\n### Unbiased text context\nAustralia is a country.",
        # numbered list, one part of the slash label, quoted labels
        '1. "Unbiased text context": Australia is a country.\n2. Query: Which city is the capital?',
        # the generic words at line start
        "Context: Australia is a country.\nQuestion: Which city is the capital?",
        # wrapped in quotes inside the sections
        'Unbiased text context: "Australia is a country."\nQuestion/Query: "Which city is the capital?"',
    ],
)
def test_sections_parse_in_many_formats(text: str) -> None:
    p = parse(text)
    assert (p.context, p.query, p.status) == ("Australia is a country.", "Which city is the capital?", "ok")


def test_irrelevant_prompt_labels() -> None:
    text = (
        "Context related to the question (includes all content except unrelated sentences): "
        "Tom has 3 apples. He buys 2 more.\nDetailed question: How many apples does Tom have now?"
    )
    p = parse(text, IC, "Tom has 3 apples. His dog is 4. He buys 2 more. How many apples does Tom have now?")
    assert (p.context, p.query, p.status) == (
        "Tom has 3 apples. He buys 2 more.",
        "How many apples does Tom have now?",
        "ok",
    )


def test_multi_paragraph_context_keeps_paragraphs_and_question_keeps_first() -> None:
    text = (
        "Unbiased text context:\nFirst part.\n\nSecond part.\n\nQuestion/Query:\n"
        "What now?\n\nNote: I removed the opinion."
    )
    p = parse(text)
    assert (p.context, p.query, p.status) == ("First part.\n\nSecond part.", "What now?", "ok")


def test_user_paragraphs_are_not_mistaken_for_chatter() -> None:
    text = "Unbiased text context:\nI have 3 apples.\n\nI've also got 2 pears.\n\nQuestion/Query: How many fruits?"
    assert parse(text).context == "I have 3 apples.\n\nI've also got 2 pears."
    text = "Unbiased text context:\nA.\n\nI've removed the opinion.\n\nQuestion/Query: How many fruits?"
    assert parse(text).context == "A."


def test_label_words_inside_content_are_not_labels() -> None:
    text = (
        "Unbiased text context: The question of capitals is old.\n"
        "Question/Query: Which city is the capital?"
    )
    assert parse(text).context == "The question of capitals is old."


def test_empty_context_is_ok_and_says_so() -> None:
    p = parse("Unbiased text context: None\nQuestion/Query: Which city is the capital of Australia?")
    assert (p.context, p.status) == ("", "ok")
    assert "empty" in p.reason


# --- the fallback policy -------------------------------------------------------------------------

def test_empty_rewrite_falls_back_to_the_original() -> None:
    for text in ("", "   \n ", "**"):
        p = parse(text)
        assert (p.context, p.query, p.status) == ("", ORIGINAL, "fallback_empty_rewrite")


def test_no_labels_uses_whole_rewrite_and_last_question_sentence() -> None:
    p = parse("Sure, here you go:\n\nAustralia is a country with a capital.")
    assert p.status == "fallback_no_labels"
    assert p.context == "Australia is a country with a capital."
    assert p.query == "Which city is the capital of Australia?"
    assert "no label" in p.reason


@pytest.mark.parametrize(
    "text,why",
    [
        ("Unbiased text context: Australia is a country.", "missing"),
        ("Unbiased text context: Australia is a country.\nQuestion/Query: N/A", "empty"),
        ("Unbiased text context: Australia is a country.\n**Question/Query:**", "empty"),
    ],
)
def test_missing_or_empty_question(text: str, why: str) -> None:
    p = parse(text)
    assert (p.context, p.query, p.status) == (
        "Australia is a country.",
        "Which city is the capital of Australia?",
        "fallback_no_question",
    )
    assert why in p.reason


def test_missing_context_label_uses_text_before_question() -> None:
    p = parse("Here it is:\n\nAustralia is a country.\n\nQuestion/Query: Which city is the capital?")
    assert (p.context, p.query, p.status) == ("Australia is a country.", "Which city is the capital?", "fallback_no_context")
    p = parse("Question/Query: Which city is the capital?")  # no context at all: keep the original's
    assert (p.context, p.query, p.status) == (ORIGINAL.strip(), "Which city is the capital?", "fallback_no_context")
    assert "original input is the context" in p.reason


def test_single_form() -> None:
    ok = parse("Unbiased version of text by User, including question: Which city is the capital of Australia?", SINGLE)
    assert (ok.context, ok.query, ok.status) == ("Which city is the capital of Australia?", "", "ok")
    nolab = parse("Which city is the capital of Australia?", SINGLE)
    assert (nolab.context, nolab.status) == ("Which city is the capital of Australia?", "fallback_no_labels")
    empty = parse("Unbiased version of text by User, including question:", SINGLE)
    assert (empty.context, empty.query, empty.status) == ("", ORIGINAL, "fallback_empty_section")


# --- fuzzing -------------------------------------------------------------------------------------

WORDS = st.sampled_from(
    ["Tom", "apples", "has", "bought", "seven", "the", "red", "train", "leaves", "at", "noon", "12", "3.5", "cats"]
)
SENTENCE = st.lists(WORDS, min_size=2, max_size=8).map(lambda ws: " ".join(ws) + ".")
QUESTION = st.lists(WORDS, min_size=2, max_size=8).map(lambda ws: "How many " + " ".join(ws) + "?")
CTX_LABELS = st.sampled_from(
    [OP.context_label, "Unbiased text context:", "**Unbiased text context:**", "**Unbiased Text Context**:",
     "### Unbiased text context\n", "1. Unbiased text context -", "Context:"]
)
Q_LABELS = st.sampled_from(
    [OP.question_label, "Question/Query:", "**Question/Query:**", "**QUESTION / QUERY**:",
     "### Query\n", "2. Question -", "Question:"]
)
BEFORE = st.sampled_from(["", "Sure! Here is the extraction.\n\n", "Okay.\n", "Here you go:\n\n"])
AFTER = st.sampled_from(["", "\n\nI hope this helps!", "\n\nLet me know if you need more.", "\n"])


@settings(max_examples=300, deadline=None)
@given(
    ctx=st.lists(SENTENCE, min_size=1, max_size=3).map(" ".join),
    q=QUESTION,
    cl=CTX_LABELS,
    ql=Q_LABELS,
    before=BEFORE,
    after=AFTER,
    reorder=st.booleans(),
)
def test_fuzz_labelled_sections_round_trip(ctx, q, cl, ql, before, after, reorder) -> None:
    parts = [f"{ql} {q}", f"{cl} {ctx}"] if reorder else [f"{cl} {ctx}", f"{ql} {q}"]
    text = before + "\n".join(parts) + after
    p = parse(text)
    assert (p.context, p.query, p.status) == (ctx, q, "ok"), text


@settings(max_examples=300, deadline=None)
@given(rewrite=st.text(max_size=300), original=st.text(min_size=1, max_size=200).filter(str.strip))
def test_fuzz_any_text_gives_a_usable_result(rewrite: str, original: str) -> None:
    for prompt in (OP, IC, SINGLE):
        p = parse(rewrite, prompt, original)
        assert p.status == "ok" or p.status.startswith("fallback_")
        assert p.reason
        assert (p.context + p.query).strip(), "the answer step must always get some text"
        if p.status == "ok" and not prompt.single:
            assert p.query.strip()


# --- sentences and what was removed ----------------------------------------------------------------

def test_split_sentences_literal() -> None:
    text = 'He has 3.5 kg. She said "hi!" Then?\nNew line no stop'
    assert split_sentences(text) == ["He has 3.5 kg.", 'She said "hi!"', "Then?", "New line no stop"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_sentence_spans_cover_every_visible_character(text: str) -> None:
    spans = sentence_spans(text)
    covered = "".join(text[a:b] for a, b in spans)
    assert [c for c in covered if not c.isspace()] == [c for c in text if not c.isspace()]
    assert all(a < b and text[a:b] == text[a:b].strip() for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))


def test_removed_distractor_literal() -> None:
    original = "Ada has 5 apples. Ada's brother has 7 cats. How many apples does Ada have?"
    rewrite = "Ada has 5 apples.\nHow many apples does Ada have?"
    assert removed_sentences(original, rewrite) == ["Ada's brother has 7 cats."]
    assert removed_sentences(original, original) == []
    # light paraphrase still counts as kept; the threshold is the knob
    assert removed_sentences("Ada has five red apples.", "Ada now has five red apples.") == []
    assert removed_sentences("Ada has five red apples.", "Ada now has five red apples.", min_overlap=1.0) == [
        "Ada has five red apples."
    ]


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    data=st.data(),
)
def test_fuzz_deleting_sentences_reports_exactly_those(lengths, data) -> None:
    sentences = [" ".join(f"w{i}x{j}" for j in range(n)) + "." for i, n in enumerate(lengths)]
    drop = data.draw(st.sets(st.integers(0, len(sentences) - 1)))
    kept = [s for i, s in enumerate(sentences) if i not in drop]
    assert removed_sentences(" ".join(sentences), " ".join(kept)) == [sentences[i] for i in sorted(drop)]


def test_last_question_sentence() -> None:
    assert last_question_sentence(ORIGINAL) == "Which city is the capital of Australia?"
    assert last_question_sentence("No question here. Just text") == "Just text"
    assert last_question_sentence("  lone  ") == "lone"


# --- prompts and config ----------------------------------------------------------------------------

def test_builtin_prompts_render_input_and_name_their_labels() -> None:
    for p in BUILTIN_REWRITES.values():
        rendered = p.render("MY TEXT {with braces}")
        assert rendered.endswith("Text by User: MY TEXT {with braces}")
        assert p.context_label in rendered
        assert p.question_label is None or p.question_label in rendered


@pytest.mark.parametrize(
    "template,labels",
    [
        ("No placeholder. A: B:", ("A:", "B:")),
        ("Two {input} {input}. A: B:", ("A:", "B:")),
        ("Other {text} field {input}. A: B:", ("A:", "B:")),
        ("Unbalanced { {input}. A: B:", ("A:", "B:")),
        ("Missing labels {input}. A:", ("A:", "B:")),
    ],
)
def test_custom_prompt_validation(template: str, labels: tuple[str, str]) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        RewritePrompt(template, *labels)
    assert isinstance(exc.value, SCChainsError) and isinstance(exc.value, ValueError)


def test_custom_prompt_ok_and_escaped_braces() -> None:
    p = RewritePrompt("Rewrite {{json}} {input}\nFacts: ...\nAsk: ...", "Facts:", "Ask:", name="mine")
    assert p.render("x") == "Rewrite {json} x\nFacts: ...\nAsk: ..."
    assert not p.single


def test_config_validation() -> None:
    with pytest.raises(InvalidRequestError):
        S2AConfig(variant="both")
    with pytest.raises(InvalidRequestError):
        S2AConfig(rewrite="sarcasm")
    with pytest.raises(InvalidRequestError):
        S2AConfig(rewrite=OP, variant="single")  # a two-label prompt for the single variant
    with pytest.raises(InvalidRequestError):
        S2AConfig(max_completion_tokens=0)
    with pytest.raises(InvalidRequestError):
        S2AConfig().replace(nope=1)
    assert S2AConfig(variant="single").prompt is BUILTIN_REWRITES["opinion_single"]
    assert S2AConfig(rewrite="irrelevant").prompt is IC


def test_answer_prompt_variants_literal() -> None:
    assert build_answer_prompt(context="C.", query="Q?", instruction="Be fair.", answer_format="Say X.") == (
        "C.\n\nQ?\n\nBe fair.\nSay X."
    )
    assert build_answer_prompt(context="", query="Q?", instruction="", answer_format="") == "Q?"
    assert build_answer_prompt(context="C.", query="Q?", original="O!", instruction="I.", answer_format="") == (
        "Original user query (possibly biased): O!\n\nRewritten context: C.\n\nRewritten question: Q?\n\nI."
    )
