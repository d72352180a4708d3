"""Pure parsing of an S2A rewrite: labelled sections, the explicit fallback, what was removed.

No LangGraph, no model. Labels are matched loosely: case-insensitive; with or without their
parenthetical; with markdown (``**Label:**``, ``### Label``, ``- Label:``, ``1. Label:``) or
quotes around them; ``:`` or a dash after them, or alone on their line as a heading. A label's
*key* is its text before any ``(`` or ``:``; a key with a slash (``Question/Query``) also
matches each part alone, and the generic words ``Context`` / ``Question`` are accepted for the
context / question section, but only at the start of a line and followed by a separator.

Fallback policy when parsing fails (never silent: ``status`` says which, ``reason`` why):

- ``fallback_empty_rewrite``: the rewrite is empty: the answer step sees the original input
  unchanged (as the question, no context). S2A then degrades to the baseline.
- ``fallback_no_labels``: no label found: the whole rewrite is the context, and the question
  is the original's last question sentence (:func:`last_question_sentence`). Single form: the
  whole rewrite is the one section.
- ``fallback_no_question``: the question section is missing or empty: the parsed context is
  kept, and the question is the original's last question sentence.
- ``fallback_no_context``: only the question label was found: the text before it is the
  context; when nothing comes before it, the original input is the context (answering the bare
  question would drop every fact; small models often return only the question section).
- ``fallback_empty_section``: single form, the label is there but its section is empty: the
  original input is used, as for an empty rewrite.

An empty *context* next to a valid question is ``ok`` (self-contained questions have none);
``reason`` notes it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "ParsedRewrite",
    "find_sections",
    "label_pattern",
    "last_question_sentence",
    "parse_rewrite",
    "removed_sentences",
    "sentence_spans",
    "split_sentences",
]

_HEAD = r"(?P<head>^[ \t]*(?:>[ \t]*)?(?:\#{1,6}[ \t]*|[-*+•][ \t]+|\d+[.)][ \t]*)?(?:\*\*|__|\*|_)?[ \t]*[\"“'`]?[ \t]*)?"
_TAIL = (
    r"[ \t]*(?:\([^)\n]*\))?[ \t]*[\"”'`]?[ \t]*(?:\*\*|__|\*|_)?[ \t]*"
    r"(?P<sep>[:：]|[-–—](?=\s))?[ \t]*[\"”'`]?[ \t]*(?:\*\*|__|[*_](?=\s|$))?"
)
_EMPTY_VALUES = {"", "none", "n/a", "na", "-", "(none)", "nothing", "empty", "[none]"}
_LEAD_CHATTER = re.compile(
    r"^\W*(sure|here\b|here's|okay|ok|certainly|of course|below is|i've extracted|extracted)\b.{0,80}$",
    re.IGNORECASE | re.DOTALL,
)
_CHATTER = re.compile(
    r"^\W*(note:|please note|i hope|hope this|let me know|feel free|this (?:extraction|text|version)|"
    r"i(?: have|'ve) (?:removed|extracted|kept|left out|excluded)|the (?:above|extracted)|if you (?:have|need))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedRewrite:
    """The outcome of parsing one rewrite."""

    context: str
    """The context the answer step sees (single form: the whole rewritten text)."""
    query: str
    """The question the answer step sees (single form: empty unless a fallback sets it)."""
    status: str
    """``"ok"`` or ``"fallback_..."`` (see the module docstring)."""
    reason: str
    """Why, in words."""


def _key(label: str) -> str:
    return re.split(r"[(:：]", label, maxsplit=1)[0].strip().strip("\"'“”*_ ")


def _words(text: str) -> str:
    return r"\s*/\s*".join(r"\s+".join(re.escape(w) for w in part.split()) for part in text.split("/"))


def label_pattern(label: str, generic: str | None = None) -> tuple[re.Pattern[str], frozenset[str]]:
    """A regex finding ``label`` and the set of its short aliases (accepted at line start only).
    Built once per label (cached: every rewrite of a run uses the same few labels)."""
    return _label_pattern(label, generic)


@functools.lru_cache(maxsize=128)
def _label_pattern(label: str, generic: str | None) -> tuple[re.Pattern[str], frozenset[str]]:
    key = _key(label)
    aliases = {p.strip().lower() for p in key.split("/") if "/" in key and p.strip()}
    if generic:
        aliases.add(generic.lower())
    alts = sorted({key, *aliases}, key=len, reverse=True)
    body = "|".join(_words(a) for a in alts)
    pattern = re.compile(_HEAD + r"(?<![\w])(?P<key>" + body + r")(?![\w])" + _TAIL, re.IGNORECASE | re.MULTILINE)
    return pattern, frozenset(aliases)


def _accepted(m: re.Match[str], text: str, aliases: frozenset[str]) -> bool:
    at_line_start = m.group("head") is not None
    eol = text.find("\n", m.end())
    rest_of_line = text[m.end() : eol if eol >= 0 else len(text)].strip()
    heading = at_line_start and rest_of_line == ""
    is_alias = re.sub(r"\s+", " ", m.group("key").lower()) in aliases
    if is_alias:
        return at_line_start and (m.group("sep") is not None or heading)
    return m.group("sep") is not None or heading


def find_sections(text: str, labels: dict[str, tuple[str, str | None]]) -> dict[str, tuple[int, str]]:
    """Find labelled sections in ``text``.

    ``labels`` maps a section name to ``(label, generic_alias)``. Returns ``{name: (start,
    content)}`` for the names found, ``start`` being where the label begins. A section runs from
    its label (first accepted occurrence) to the next accepted label of any section, or the end.
    """
    hits: list[tuple[int, int, str]] = []
    for name, (label, generic) in labels.items():
        pattern, aliases = label_pattern(label, generic)
        for m in pattern.finditer(text):
            if _accepted(m, text, aliases):
                hits.append((m.start("key") if m.group("head") is None else m.start(), m.end(), name))
    hits.sort()
    out: dict[str, tuple[int, str]] = {}
    for i, (start, end, name) in enumerate(hits):
        if name in out:
            continue
        stop = next((s for s, _, _ in hits[i + 1 :] if s >= end), len(text))
        out[name] = (start, text[end:stop])
    return out


def _clean(section: str, *, first_paragraph: bool = False, lead: bool = False) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", section.strip()) if p.strip()]
    if lead:  # text outside any section: drop "Sure, here is ..." openers
        while paragraphs and _LEAD_CHATTER.match(paragraphs[0]) and (len(paragraphs) > 1 or paragraphs[0].endswith(":")):
            paragraphs.pop(0)
    if first_paragraph:
        paragraphs = paragraphs[:1]
    while len(paragraphs) > 1 and _CHATTER.match(paragraphs[-1]):
        paragraphs.pop()
    out = "\n\n".join(paragraphs).strip()
    for _ in range(3):  # unwrap **bold**, quotes, a stray separator
        new = re.sub(r"^(?:\*\*|__|[\"“”'`:：])\s*|\s*(?:\*\*|__|[\"“”'`])$", "", out).strip()
        if new == out:
            break
        out = new
    return "" if out.lower().strip(".") in _EMPTY_VALUES else out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text`` (ends at ``.!?`` + space, or a newline)."""
    return list(_sentence_spans(text))


@functools.lru_cache(maxsize=32)  # pure; a rewrite's input is split several times
def _sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    spans = []
    for line in _LINE.finditer(text):
        base, chunk = line.start(), line.group()
        for m in _SENTENCE.finditer(chunk):
            seg = m.group()
            lead = len(seg) - len(seg.lstrip())
            if seg.strip():
                spans.append((base + m.start() + lead, base + m.start() + len(seg.rstrip())))
    return tuple(spans)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see :func:`sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def last_question_sentence(text: str) -> str:
    """The last sentence ending in ``?``, else the last sentence, else the stripped text."""
    sents = split_sentences(text)
    for s in reversed(sents):
        if s.rstrip("\"'”’)] ").endswith("?"):
            return s
    return sents[-1] if sents else text.strip()


_LINE = re.compile(r"[^\n]+")
_SENTENCE = re.compile(r".+?(?:[.!?]+[\"'”’)\]]*(?=\s)|$)")
_WORD = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def removed_sentences(original: str, rewrite: str, *, min_overlap: float = 0.5) -> list[str]:
    """Sentences of ``original`` the rewrite dropped, in order.

    A sentence counts as kept when at least ``min_overlap`` of its word bigrams (its words, for
    one-word sentences) occur in the rewrite; light paraphrase is kept, a dropped sentence that
    shares a few words with the rest is still reported removed.
    """
    rw = _tokens(rewrite)
    rw_bigrams, rw_words = set(zip(rw, rw[1:])), set(rw)
    out = []
    for sent in split_sentences(original):
        toks = _tokens(sent)
        if not toks:
            continue
        grams = list(zip(toks, toks[1:])) if len(toks) > 1 else [(t,) for t in toks]
        have = sum((g in rw_bigrams) if len(g) == 2 else (g[0] in rw_words) for g in grams)
        if have / len(grams) < min_overlap:
            out.append(sent)
    return out


def parse_rewrite(
    rewrite: str,
    original: str,
    *,
    context_label: str,
    question_label: str | None,
) -> ParsedRewrite:
    """Parse ``rewrite`` into context and question, applying the module's fallback policy."""
    if not rewrite or not rewrite.strip():
        return ParsedRewrite("", original.strip(), "fallback_empty_rewrite", "the rewrite is empty; using the original input")
    if question_label is None:
        found = find_sections(rewrite, {"context": (context_label, None)})
        if "context" not in found:
            if not _clean(rewrite, lead=True):
                return ParsedRewrite("", original.strip(), "fallback_empty_rewrite", "the rewrite has no content; using the original input")
            return ParsedRewrite(_clean(rewrite, lead=True), "", "fallback_no_labels", f"label {_key(context_label)!r} not found; using the whole rewrite")
        text = _clean(found["context"][1])
        if not text:
            return ParsedRewrite("", original.strip(), "fallback_empty_section", "the section is empty; using the original input")
        return ParsedRewrite(text, "", "ok", "parsed")
    found = find_sections(rewrite, {"context": (context_label, "context"), "query": (question_label, "question")})
    ctx = _clean(found["context"][1]) if "context" in found else None
    qry = _clean(found["query"][1], first_paragraph=True) if "query" in found else None
    if ctx is None and qry is None:
        if not _clean(rewrite, lead=True):
            return ParsedRewrite("", original.strip(), "fallback_empty_rewrite", "the rewrite has no content; using the original input")
        return ParsedRewrite(
            _clean(rewrite, lead=True), last_question_sentence(original), "fallback_no_labels",
            "no label found; the whole rewrite is the context, the question is the original's last question sentence",
        )
    if not qry:
        why = "empty" if qry == "" else "missing"
        return ParsedRewrite(
            ctx or "", last_question_sentence(original), "fallback_no_question",
            f"the question section is {why}; using the original's last question sentence",
        )
    if ctx is None:
        before = _clean(rewrite[: found["query"][0]], lead=True)
        if before:
            return ParsedRewrite(before, qry, "fallback_no_context",
                                 "the context label is missing; the text before the question is the context")
        return ParsedRewrite(original.strip(), qry, "fallback_no_context",
                             "the context label is missing and nothing precedes the question; "
                             "the original input is the context")
    return ParsedRewrite(ctx, qry, "ok", "parsed" if ctx else "parsed; the context section is empty")
