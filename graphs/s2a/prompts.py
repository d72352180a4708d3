"""S2A prompts: the rewrite prompts of the paper, and the answer prompt built from a rewrite.

Weston and Sukhbaatar (2023), arXiv 2311.11829. The two built-in rewrite prompts follow the
paper's wording: *opinion removal* (an unbiased context and the question without the user's bias)
and *irrelevant-context removal* (GSM-IC: the context related to the question and the detailed
question). Each has a *single* form (one section holding context and question together, the
paper's S2A-Single). A :class:`RewritePrompt` names its placeholder (``{input}``) and the labels
the parser looks for; custom prompts are validated at construction.
"""

from __future__ import annotations

import dataclasses
import re
import string
from dataclasses import dataclass

from adapters.errors import InvalidRequestError
from adapters.types import Message

__all__ = [
    "BUILTIN_REWRITES",
    "DEFAULT_ANSWER_FORMAT",
    "DEFAULT_INSTRUCTION",
    "FEW_SHOT_EXAMPLES",
    "RewritePrompt",
    "build_answer_prompt",
    "builtin_rewrite",
]

DEFAULT_INSTRUCTION = "Answer in an unbiased way."
"""The paper's answer-step instruction (dropped by the no-instruction variant)."""

DEFAULT_ANSWER_FORMAT = 'End your response with a final line of the form "The answer is X."'
"""Asks for a line that :func:`graphs.answers.extract_answer` reads."""


@dataclass(frozen=True)
class RewritePrompt:
    """A rewrite prompt and the labels of the sections it asks for.

    ``template`` must contain the placeholder ``{input}`` exactly once and no other ``{...}``
    field (write literal braces as ``{{`` and ``}}``); every label must appear in the template,
    so the model is told what to write.
    """

    template: str
    """The prompt; ``{input}`` is replaced by the user's full text."""
    context_label: str
    """Label of the context section (in single form: the one section, context plus question)."""
    question_label: str | None = None
    """Label of the question section; ``None`` for a single-section prompt."""
    name: str = "custom"
    """A short name shown in traces."""
    examples: tuple[tuple[str, str], ...] = ()
    """Worked examples ``(user text, rewrite)``, sent before the real request as earlier chat
    turns (the template on the example's text, then the rewrite as the assistant's reply), so a
    small model sees the labelled format written out. Each rewrite must name the labels."""

    def __post_init__(self) -> None:
        if not isinstance(self.template, str):
            raise InvalidRequestError("template", self.template, "pass the rewrite prompt as a string")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None]
        except ValueError as exc:
            raise InvalidRequestError(
                "template", self.template[:80], f"unbalanced braces ({exc}); write literal braces as {{{{ }}}}"
            ) from None
        if fields != ["input"]:
            raise InvalidRequestError(
                "template",
                self.template[:80],
                f"the template must contain the placeholder {{input}} exactly once and no other "
                f"fields (found {fields}); escape literal braces as {{{{ and }}}}",
            )
        labels = [self.context_label] + ([self.question_label] if self.question_label is not None else [])
        for lab in labels:
            if not isinstance(lab, str) or not lab.strip():
                raise InvalidRequestError("label", lab, "labels must be non-empty strings")
            if lab.lower() not in self.template.lower():
                raise InvalidRequestError(
                    "label", lab, "name each label in the template, so the model writes it"
                )
        self._check_examples(labels)

    def _check_examples(self, labels: list[str]) -> None:
        if not isinstance(self.examples, tuple):
            raise InvalidRequestError("examples", self.examples, "pass a tuple of (user text, rewrite) pairs")
        for ex in self.examples:
            if not (isinstance(ex, tuple) and len(ex) == 2 and all(isinstance(t, str) and t.strip() for t in ex)):
                raise InvalidRequestError("examples", ex, "each example is a (user text, rewrite) pair of non-empty strings")
            missing = [lab for lab in labels if _label_key(lab).lower() not in ex[1].lower()]
            if missing:
                raise InvalidRequestError(
                    "examples", ex[1][:80], f"each example rewrite must write the label {missing[0]!r}"
                )

    @property
    def single(self) -> bool:
        """Whether this prompt asks for one section (no context/question split)."""
        return self.question_label is None

    def render(self, text: str) -> str:
        """The prompt for the user's text."""
        return self.template.format(input=text)

    def messages(self, text: str) -> tuple[Message, ...]:
        """The rewrite call's messages: each worked example as a user turn and the assistant's
        reply, then the prompt for ``text``."""
        shots: list[Message] = []
        for given, rewrite in self.examples:
            shots += [{"role": "user", "content": self.render(given)}, {"role": "assistant", "content": rewrite}]
        return (*shots, {"role": "user", "content": self.render(text)})


def _label_key(label: str) -> str:
    """A label's text before any ``(`` or ``:`` (what an example must write)."""
    return re.split(r"[(:：]", label, maxsplit=1)[0].strip()


_OPINION = RewritePrompt(
    name="opinion",
    template=(
        "Given the following text by a user, extract the part that is unbiased and not their "
        "opinion, so that using that text alone would be good context for providing an unbiased "
        "answer to the question portion of the text.\n"
        "Please include the actual question or query that the user is asking. Separate this into "
        'two categories labeled with "Unbiased text context (includes all content except '
        "user's bias):\" and \"Question/Query (does not include user bias/preference):\".\n\n"
        "Text by User: {input}"
    ),
    context_label="Unbiased text context (includes all content except user's bias):",
    question_label="Question/Query (does not include user bias/preference):",
)

_IRRELEVANT = RewritePrompt(
    name="irrelevant",
    template=(
        "Given the following text by a user, extract the part that is related and useful, so "
        "that using that text alone would be good context for providing an accurate and correct "
        "answer to the question portion of the text. Please include the actual question or query "
        'that the user is asking. Separate this into two categories labeled with "Context '
        'related to the question (includes all content except unrelated sentences):" and '
        '"Detailed question:". Do not answer the question.\n\n'
        "Text by User: {input}"
    ),
    context_label="Context related to the question (includes all content except unrelated sentences):",
    question_label="Detailed question:",
)

_OPINION_SINGLE = RewritePrompt(
    name="opinion_single",
    template=(
        "Given the following text by a user, extract the part that is unbiased and not their "
        "opinion, so that using that text alone would be good context plus question for "
        "providing an unbiased answer to the question portion of the text.\n"
        'Please start your response with "Unbiased version of text by User, including '
        'question:" followed by your extraction.\n\n'
        "Text by User: {input}"
    ),
    context_label="Unbiased version of text by User, including question:",
)

_IRRELEVANT_SINGLE = RewritePrompt(
    name="irrelevant_single",
    template=(
        "Given the following text by a user, extract the part that is related and useful, so "
        "that using that text alone would be good context plus question for providing an "
        "accurate and correct answer to the question portion of the text.\n"
        'Please start your response with "Related version of text by User, including '
        'question:" followed by your extraction. Do not answer the question.\n\n'
        "Text by User: {input}"
    ),
    context_label="Related version of text by User, including question:",
)

FEW_SHOT_EXAMPLES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "irrelevant": (
        ("Lena buys 3 boxes of pencils. Her brother owns 5 toy cars. Each box holds 12 pencils. "
         "How many pencils did Lena buy?",
         "Lena buys 3 boxes of pencils. Each box holds 12 pencils.",
         "How many pencils did Lena buy?"),
        ("A farm has 20 cows. Each cow gives 6 liters of milk a day. The farmer's truck is 8 years old. "
         "How many liters of milk do the cows give in 2 days?",
         "A farm has 20 cows. Each cow gives 6 liters of milk a day.",
         "How many liters of milk do the cows give in 2 days?"),
    ),
    "opinion": (
        ("Sam has 4 bags with 5 apples in each bag. How many apples does Sam have? "
         "I think the answer is 25, but I'm not sure.",
         "Sam has 4 bags with 5 apples in each bag.",
         "How many apples does Sam have?"),
        ("I really love the ocean. Which planet is closest to the Sun? My teacher said it is Venus, and I agree.",
         "",
         "Which planet is closest to the Sun?"),
    ),
}
"""The few-shot prompts' worked examples, ``(user text, related context, question)``, written
for this project (short, not from any evaluation set): an inserted sentence with a number that
the question does not need (``irrelevant``), a suggested answer or a stated opinion
(``opinion``). :func:`builtin_rewrite` writes them in each prompt's labelled format."""


def _with_examples(prompt: RewritePrompt, base: str) -> RewritePrompt:
    shots = []
    for text, context, question in FEW_SHOT_EXAMPLES[base]:
        if prompt.single:
            shots.append((text, f"{prompt.context_label} {' '.join(p for p in (context, question) if p)}"))
        else:
            shots.append((text, f"{prompt.context_label} {context or 'None.'}\n{prompt.question_label} {question}"))
    return dataclasses.replace(prompt, name=f"{prompt.name}_fewshot", examples=tuple(shots))


BUILTIN_REWRITES: dict[str, RewritePrompt] = {
    p.name: p for p in (_OPINION, _IRRELEVANT, _OPINION_SINGLE, _IRRELEVANT_SINGLE)
}
BUILTIN_REWRITES.update({
    f"{p.name}_fewshot": _with_examples(p, p.name.removesuffix("_single")) for p in list(BUILTIN_REWRITES.values())
})
"""The built-in rewrite prompts by name (``opinion``, ``irrelevant``, their ``_single`` forms,
and each with ``_fewshot``: the same prompt after two worked examples)."""


def builtin_rewrite(name: str, *, single: bool, few_shot: bool = False) -> RewritePrompt:
    """The built-in prompt ``name`` (``"opinion"`` or ``"irrelevant"``), split or single form,
    with worked examples when ``few_shot``."""
    base = name.removesuffix("_single")
    if base not in ("opinion", "irrelevant"):
        raise InvalidRequestError(
            "rewrite", name, "use 'opinion', 'irrelevant' or a RewritePrompt(template=..., ...)"
        )
    return BUILTIN_REWRITES[base + ("_single" if single else "") + ("_fewshot" if few_shot else "")]


def build_answer_prompt(
    *,
    context: str,
    query: str,
    original: str | None = None,
    instruction: str = DEFAULT_INSTRUCTION,
    answer_format: str = DEFAULT_ANSWER_FORMAT,
) -> str:
    """The answer step's prompt (pure).

    Default (the paper): context, question, then the instruction. With ``original`` (the
    keep-original variant) the user's text comes first, marked as possibly biased, then the
    rewritten context and question. Empty parts are left out; ``instruction`` and
    ``answer_format`` may be empty.
    """
    if original is not None:
        parts = [f"Original user query (possibly biased): {original.strip()}"]
        if context.strip():
            parts.append(f"Rewritten context: {context.strip()}")
        if query.strip():
            parts.append(f"Rewritten question: {query.strip()}")
    else:
        parts = [p.strip() for p in (context, query) if p.strip()]
    tail = "\n".join(s.strip() for s in (instruction, answer_format) if s and s.strip())
    if tail:
        parts.append(tail)
    return "\n\n".join(parts)
