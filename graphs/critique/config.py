"""Configuration of the critique-revise loop (the graph, the middleware and the LCEL chain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.errors import InvalidRequestError
from graphs.critique.prompts import SELF_REFINE_FEEDBACK, SELF_REFINE_REFINE
from graphs.validate import Options, check_bool, check_choice, check_int, check_number, check_str

__all__ = ["GATES", "MAX_PROGRAM_SAMPLES", "MAX_REVISIONS", "MODES", "CritiqueConfig", "Gate", "Mode"]

Gate = Literal["auto", "disagreement", "off"]
GATES: tuple[str, ...] = ("auto", "disagreement", "off")

Mode = Literal["self-refine", "rci", "score"]
MODES: tuple[str, ...] = ("self-refine", "rci", "score")
_DEFAULT_TURNS = {"self-refine": 3, "rci": 2, "score": 1}

MAX_REVISIONS = 8
"""The hard ceiling on revisions in one run of the loop. No argument lifts it: ``max_turns``
above it is rejected, and a larger allowance (the middleware's ``max_corrections``) is cut to
it, so every run makes at most ``1 + MAX_REVISIONS`` drafts."""

MAX_PROGRAM_SAMPLES = 16
"""The most programs one program critique samples (each one is a sandboxed run)."""


@dataclass(frozen=True)
class CritiqueConfig(Options):
    """How the critique-revise loop runs and when it stops."""

    mode: Mode = "self-refine"
    """``"self-refine"`` (feedback, refine with the history; stops when the feedback says the
    answer is correct), ``"rci"`` (RCI's review/improve prompts; the self-critique never approves,
    so pass a verifier critic to stop on a check) or ``"score"`` (SCoRe two-attempt protocol:
    exactly one correction turn with an instruction that does not reveal correctness)."""
    max_turns: int | None = None
    """Most revise turns (critique then revise) after the first draft; 0 means draft only.
    ``None``: the mode's default (self-refine 3, i.e. Self-Refine's 4 attempts; rci 2; score 1).
    ``score`` mode requires 1 (two attempts). At most :data:`MAX_REVISIONS`."""
    collapse_threshold: float = 0.02
    """Stop with ``"collapse"`` when a revision's normalised word edit distance to the previous
    draft is below this (the model barely edits). 0 disables."""
    confidence_threshold: float | None = None
    """Confidence gate: revise only when the draft's mean token probability is below this, so a
    confident draft is not talked out of its answer (stop reason ``"confident"``). ``None``
    disables; a draft without logprobs is never gated."""
    gate: Gate = "auto"
    """Do no harm by default: intrinsic critique (the drafting model judging itself, no external
    signal) breaks about as many right answers as it fixes on small models, so it runs only when
    the draft is in doubt. ``"disagreement"``: after the first draft, sample one more solution
    (``gate_temperature``; from the critic's model, the drafting model by default); if its answer
    agrees with the draft's (or it has none), keep the draft (stop reason ``"agreement"``), else
    critique and revise as usual. ``"auto"`` (default): the gate runs when the critic is the
    default one (``critic=None``), not with an external signal (a verifier, the program critic,
    a judge, another model) nor with an explicit ``critic="self"`` (the old, ungated intrinsic
    critique). ``"off"``: never."""
    gate_temperature: float = 0.7
    """Sampling temperature of the gate's second solution, in (0, 2]."""
    gate_confirm: bool = True
    """When the gate ran and the draft was revised: the revision replaces the draft only if its
    answer agrees with the gate's sample (:func:`~graphs.critique.policy.confirmed_final`, a 2-of-3
    vote of draft, sample and revision; ties keep the draft). On Qwen2.5-Coder-0.5B's recorded
    gated critiques this cuts the share of right drafts revised into wrong answers from 5.0% to
    1.0% (GSM-IC-style, n = 100) and from 2.7% to 0.5% (SVAMP, n = 185). ``False``: the last
    revision stands."""
    max_tokens: int = 512
    """Most tokens per draft (graphs; in the middleware the agent's model decides)."""
    critique_max_tokens: int = 384
    """Most tokens per model critique (and per program request of ``critic="program"``)."""
    program_samples: int = 1
    """With ``critic="program"``: programs to write and run. 1 (default): one greedy program
    (the draft's own code first); ``k > 1``: ``k`` programs sampled in one request (temperature
    0.7, seeds from ``seed``), each run in the sandbox, and a majority vote of the draft's answer
    and every printed answer decides (program-aided self-consistency; a tie keeps the draft). At
    most :data:`MAX_PROGRAM_SAMPLES`. See :class:`graphs.critique.program.ProgramCritic`."""
    max_completion_tokens: int | None = 4000
    """Stop with ``"max_completion_tokens"`` once the tokens the loop's calls *generated*
    (drafts, critiques, revisions; prompt tokens never count) reach this; ``None`` for no
    budget (``max_turns`` and :data:`MAX_REVISIONS` still bound the loop)."""
    temperature: float = 0.0
    """Sampling temperature of drafts and model critiques (0: greedy)."""
    seed: int | None = None
    """Sampling seed (draft ``i`` uses ``seed + i``)."""
    system_prompt: str | None = None
    """An optional system message for every draft and model critique (graphs)."""
    judge_threshold: float = 4.0
    """With a :class:`~graphs.judge.Judge` critic: approve when its score is at least this."""
    interrupt_before_revise: bool = False
    """Pause before each revision so a person can approve, edit or reject the critique
    (LangChain's HITL decisions ``{"decisions": [{"type": "approve"|"edit"|"reject"}]}``);
    needs a checkpointer."""
    feedback_prompt: str = SELF_REFINE_FEEDBACK
    """Self-refine: asks a model critic for feedback ending ``Verdict: correct|incorrect``."""
    refine_prompt: str = SELF_REFINE_REFINE
    """Self-refine: sent after each draft's feedback to ask for a revision."""

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, MODES)
        check_int("max_turns", self.max_turns, minimum=0, maximum=MAX_REVISIONS, allow_none=True,
                  why=f" (the hard ceiling is {MAX_REVISIONS} revisions)")
        if self.mode == "score" and self.max_turns not in (None, 1):
            raise InvalidRequestError(
                "max_turns", self.max_turns, "score mode is the two-attempt protocol (one revise turn); leave max_turns=None"
            )
        check_choice("gate", self.gate, GATES)
        check_number("gate_temperature", self.gate_temperature, low=0, high=2, low_open=True,
                     hint="; the gate compares with a *sampled* second solution")
        check_bool("gate_confirm", self.gate_confirm)
        check_number("collapse_threshold", self.collapse_threshold, low=0, high=1)
        check_number("confidence_threshold", self.confidence_threshold, low=0, high=1, low_open=True,
                     allow_none=True, hint=", e.g. 0.9, or None")
        check_int("max_tokens", self.max_tokens, minimum=1)
        check_int("critique_max_tokens", self.critique_max_tokens, minimum=1)
        check_int("program_samples", self.program_samples, minimum=1, maximum=MAX_PROGRAM_SAMPLES)
        check_int("max_completion_tokens", self.max_completion_tokens, minimum=1, allow_none=True)
        check_number("temperature", self.temperature, low=0, high=5)
        check_int("seed", self.seed, minimum=0, allow_none=True)
        if self.system_prompt is not None:
            check_str("system_prompt", self.system_prompt, nonempty=True)
        check_number("judge_threshold", self.judge_threshold, low=0)
        check_bool("interrupt_before_revise", self.interrupt_before_revise)
        check_str("feedback_prompt", self.feedback_prompt, nonempty=True)
        check_str("refine_prompt", self.refine_prompt, nonempty=True)

    @property
    def revisions(self) -> int:
        """The most revisions this config allows (``max_turns`` or the mode's default)."""
        return self.max_turns if self.max_turns is not None else _DEFAULT_TURNS[self.mode]

    @property
    def turn_limit(self) -> int:
        """The most drafts: the first one plus the effective ``max_turns`` revisions."""
        return 1 + self.revisions
