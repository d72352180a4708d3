"""S2A prompts: the rewrite prompts of the paper, and the answer prompt built from a rewrite.

Weston and Sukhbaatar (2023), arXiv 2311.11829. The two built-in rewrite prompts follow the
paper's wording: *opinion removal* (an unbiased context and the question without the user's bias)
and *irrelevant-context removal* (GSM-IC: the context related to the question and the detailed
question). Each has a *single* form (one section holding context and question together, the
paper's S2A-Single). A :class:`RewritePrompt` names its placeholder (``{input}``) and the labels
the parser looks for; custom prompts are validated at construction.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from adapters.errors import InvalidRequestError

__all__ = [
    "BUILTIN_REWRITES",
    "DEFAULT_ANSWER_FORMAT",
    "DEFAULT_INSTRUCTION",
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

    @property
    def single(self) -> bool:
        """Whether this prompt asks for one section (no context/question split)."""
        return self.question_label is None

    def render(self, text: str) -> str:
        """The prompt for the user's text."""
        return self.template.format(input=text)


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

BUILTIN_REWRITES: dict[str, RewritePrompt] = {
    p.name: p for p in (_OPINION, _IRRELEVANT, _OPINION_SINGLE, _IRRELEVANT_SINGLE)
}
"""The built-in rewrite prompts by name."""


def builtin_rewrite(name: str, *, single: bool) -> RewritePrompt:
    """The built-in prompt ``name`` (``"opinion"`` or ``"irrelevant"``), split or single form."""
    base = name.removesuffix("_single")
    if base not in ("opinion", "irrelevant"):
        raise InvalidRequestError(
            "rewrite", name, "use 'opinion', 'irrelevant' or a RewritePrompt(template=..., ...)"
        )
    return BUILTIN_REWRITES[f"{base}_single" if single else base]


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
