"""S2A configuration: which rewrite prompt, which variant, and the bounds."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.errors import InvalidRequestError
from graphs.validate import Options, check_bool, check_choice, check_int, check_number, check_str
from graphs.s2a.filter import RULES
from graphs.s2a.likelihood import check_gain
from graphs.s2a.prompts import DEFAULT_ANSWER_FORMAT, DEFAULT_INSTRUCTION, RewritePrompt, builtin_rewrite

__all__ = ["FILTER_SIGNALS", "MODES", "VARIANTS", "S2AConfig"]

MODES = ("rewrite", "filter")
"""How S2A removes what should not steer the answer. ``rewrite``: the paper's, the model
rewrites the text into labelled sections; ``filter``: the model scores each context sentence's
relevance (one yes/no token each, :mod:`graphs.s2a.filter`) and the lowest-scoring ones are
dropped; the question sentence is always kept (for models too small to write the sections)."""

FILTER_SIGNALS = ("yes-no", "question")
"""What the filter scores a sentence by. ``yes-no``: the model's ``P(yes)`` to "Is this sentence
needed to answer the question?" (:mod:`graphs.s2a.filter`; any model with top logprobs);
``question``: how much the sentence raises the likelihood of the question itself, left out one at
a time (:mod:`graphs.s2a.likelihood`; a model that scores text: a local ``hf:`` model, or
``OpenAIModel(..., text_scores=True)`` on a server that echoes prompt logprobs)."""

VARIANTS = ("split", "single", "keep_original")
"""``split``: context and question sections (the paper's default); ``single``: one rewritten
section; ``keep_original``: like split, and the answer step also sees the original input,
marked as possibly biased."""


@dataclass(frozen=True)
class S2AConfig(Options):
    """How the S2A graph rewrites and answers.

    The no-instruction variant of the paper is ``instruction=""``. The graph makes exactly one
    rewrite call and one answer step (no loop), so its iteration bound is fixed;
    ``max_completion_tokens`` caps the generated tokens of both model calls together. With
    ``mode="filter"`` the rewrite call is replaced by one one-token call per context sentence
    (at most :data:`graphs.s2a.filter.MAX_SENTENCES`), sent together as one batch.
    """

    rewrite: str | RewritePrompt = "opinion"
    """``"opinion"`` (remove the user's opinion), ``"irrelevant"`` (GSM-IC: remove unrelated
    sentences) or a custom :class:`RewritePrompt` (one label for ``single``, two otherwise).
    Unused when ``mode="filter"``."""
    variant: str = "split"
    """One of :data:`VARIANTS` (``single`` needs ``mode="rewrite"``)."""
    mode: str = "rewrite"
    """One of :data:`MODES`: the paper's rewrite, or the per-sentence relevance filter."""
    few_shot: bool = False
    """Send the built-in rewrite prompt after two worked examples of its labelled format
    (:data:`graphs.s2a.prompts.FEW_SHOT_EXAMPLES`) so a small model writes the sections. For a
    custom prompt give it ``examples=`` instead; ``mode="rewrite"`` only."""
    filter_rule: str = "lowest"
    """``mode="filter"``: how scores become drops (:func:`graphs.s2a.filter.drop_decisions`):
    ``"lowest"`` drops at most the one clearly lowest-scoring sentence, ``"threshold"`` every
    sentence scoring below ``filter_threshold``."""
    filter_signal: str = "yes-no"
    """``mode="filter"``: one of :data:`FILTER_SIGNALS`. ``"question"`` scores each sentence by
    its leave-one-out gain in the question's log-probability (nats; no generation) and needs a
    model that scores text (:class:`~adapters.errors.ScoringUnavailableError` otherwise)."""
    filter_gain_below: float = 0.0
    """``filter_signal="question"``: a sentence whose gain (nats) is below this is a drop candidate
    (0: the question is likelier without it); ``"lowest"`` drops the lowest candidate only."""
    filter_threshold: float = 0.5
    """``mode="filter"``, signal ``"yes-no"``, rule ``"threshold"``: drop a context sentence whose
    relevance score ``P(yes) / (P(yes) + P(no))`` is below this, in [0, 1]."""
    filter_margin: float = 0.02
    """``mode="filter"``, signal ``"yes-no"``, rule ``"lowest"``: the lowest score must sit this far below the mean of
    the other scores of its problem to be dropped, in [0, 1]."""
    instruction: str = DEFAULT_INSTRUCTION
    """Appended to the answer prompt; ``""`` is the paper's no-instruction variant."""
    answer_format: str = DEFAULT_ANSWER_FORMAT
    """Appended to the plain answer prompt so the final answer can be extracted; not sent to an
    answer subgraph (which has its own format)."""
    rewrite_max_tokens: int = 512
    """Most tokens the rewrite may generate."""
    answer_max_tokens: int = 512
    """Most tokens the plain answer step may generate."""
    temperature: float = 0.0
    """Sampling temperature of both calls (0: greedy)."""
    max_completion_tokens: int | None = None
    """Cap on generated tokens over the rewrite and the plain answer call (``None``: none). When
    the rewrite used it all, the answer step is skipped and ``stop_reason`` says so."""
    check: bool = True
    """Check each parsed rewrite (:func:`graphs.s2a.check.check_rewrite`): one that drops an
    instruction of the user's ("Use the calculator tool.") or adds facts (numbers not in the
    input) is not used; the model sees the original (``parse_status="fallback_check"``)."""
    min_kept_overlap: float = 0.5
    """A sentence of the input counts as kept by the rewrite when at least this share of its word
    bigrams appear there (for the ``removed`` trace)."""

    def __post_init__(self) -> None:
        check_choice("variant", self.variant, VARIANTS)
        check_choice("mode", self.mode, MODES)
        check_bool("few_shot", self.few_shot)
        check_choice("filter_rule", self.filter_rule, RULES)
        check_number("filter_threshold", self.filter_threshold, low=0, high=1)
        check_number("filter_margin", self.filter_margin, low=0, high=1)
        check_choice("filter_signal", self.filter_signal, FILTER_SIGNALS)
        check_gain(self.filter_gain_below)
        self._check_mode()
        self._check_rewrite()
        check_str("instruction", self.instruction)
        check_str("answer_format", self.answer_format)
        check_int("rewrite_max_tokens", self.rewrite_max_tokens, minimum=1)
        check_int("answer_max_tokens", self.answer_max_tokens, minimum=1)
        check_int("max_completion_tokens", self.max_completion_tokens, minimum=1, allow_none=True)
        check_number("temperature", self.temperature, low=0, high=5)
        check_bool("check", self.check)
        check_number("min_kept_overlap", self.min_kept_overlap, low=0, low_open=True, high=1)

    def _check_mode(self) -> None:
        if self.mode != "filter":
            return
        if self.variant == "single":
            raise InvalidRequestError("variant", self.variant, "mode='filter' keeps context and question apart: "
                                      "use variant='split' or 'keep_original', or mode='rewrite'")
        if self.few_shot:
            raise InvalidRequestError("few_shot", self.few_shot, "few_shot is for mode='rewrite' (the filter "
                                      "writes no sections): drop few_shot or use mode='rewrite'")

    def _check_rewrite(self) -> None:
        if isinstance(self.rewrite, str):
            builtin_rewrite(self.rewrite, single=self.variant == "single")  # validates the name
        elif self.few_shot:
            raise InvalidRequestError("few_shot", self.few_shot, "few_shot adds the built-in examples to a built-in "
                                      "prompt; give a custom RewritePrompt its own examples=(...) instead")
        elif isinstance(self.rewrite, RewritePrompt):
            if self.rewrite.single != (self.variant == "single"):
                need = "one label (question_label=None)" if self.variant == "single" else "two labels"
                raise InvalidRequestError(
                    "rewrite", self.rewrite.name, f"variant {self.variant!r} needs a prompt with {need}"
                )
        else:
            raise InvalidRequestError("rewrite", self.rewrite, "use 'opinion', 'irrelevant' or a RewritePrompt")

    @property
    def prompt(self) -> RewritePrompt:
        """The rewrite prompt this config uses."""
        if isinstance(self.rewrite, RewritePrompt):
            return self.rewrite
        return builtin_rewrite(self.rewrite, single=self.variant == "single", few_shot=self.few_shot)
