"""The program-execution critic: run the draft's Python (or a program the model writes) and
compare its printed result with the draft's answer. An external signal for critique-revise.

Opt-in: sc-chains runs model-written code only when you construct a :class:`ProgramCritic` or
pass :func:`program_verifier` / :func:`make_program_verifier` yourself. Every run goes through
:func:`graphs.sandbox.run_program`; its module docstring states the trust model (careless code,
not a hostile adversary) and exactly which protections apply.

Policy (pure, :func:`compare_program`): the critic asks for a revision **only** when a program
ran cleanly, printed an answer, and that answer differs from the draft's final answer
(``graphs.answers.answers_equal``). No program, a failed run (error, timeout, a limit) or no
printed answer is *no signal*: the draft is kept (``approved=True``), so the critic never talks
a draft out of its answer without evidence.

What a disagreement does (``resolve``):

- ``"program"`` (default): the executed program's printed answer wins. The loop takes
  :func:`program_answer_text` (the program, what it printed, ``The answer is X.``) as the next
  draft with no revision call (stop reason ``"replaced"``). Measured on Qwen2.5-Coder-0.5B's
  recorded runs: where program and draft disagreed, the program was right on 21 of 59 SVAMP
  problems and the draft on 10 (6 vs 5 of 36 on GSM-IC-style), while the model's own revisions
  mostly repeated the program without an answer (rejected as echoes).
- ``"vote"``: the program's answer wins unless a sampled second solution (the critique gate's
  sample, one more call) sides with the draft: a vote of draft, program and sample in which a
  three-way split goes to the program (:func:`graphs.critique.policy.replacement_stands`).
  Measured with Qwen2.5-Coder-0.5B (n = 200 each): SVAMP 60.0% as ``"program"`` (60.0%), GSM-IC-
  style 20.5% against 19.0%, at 0.6-0.8 more calls per problem: no gain beyond noise, so it is
  not the default.
- ``"revise"``: the model revises its draft with the program's feedback (RCI/CRITIC style).

How many programs (``samples``): one (default, greedy), or ``samples=k`` programs sampled in one
request (``n=k`` at ``temperature``; the HF adapter shares the prompt's KV cache across them),
each run in the sandbox, and a majority vote of the draft's answer and every printed answer
(:func:`graphs.critique.policy.program_vote`: program-aided self-consistency, PAL + SC). The draft
votes first, so a tie keeps it; only a winning group without the draft counts as a disagreement.

Where the program comes from (``source``):

- ``"draft_first"`` (default): the draft's own fenced ``python`` code (Qwen2.5-Coder writes it
  unprompted), else one request asking the critic's model (default: the drafting model) for a
  program (greedy, ``max_tokens``).
- ``"model"``: always ask the model for a separate program (an independent check, even when the
  draft computed its answer with code of its own).

It speaks the critic protocol of :mod:`graphs.critique.critics`: ``ask(question, draft,
reference)`` returns the program request (a :class:`~graphs.loop.ModelCall` side call to
``target="critic"``; ``None``: no call) and ``read(...)`` runs the program and returns a
:class:`ProgramCritique` (a :class:`~graphs.critique.critics.Critique` that also carries the
:class:`ProgramCheck`). Pass it as ``create_critique_graph(model, critic=ProgramCritic())``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from adapters.types import Message
from graphs.answers import answers_equal, extract_answer
from graphs.critique.config import MAX_PROGRAM_SAMPLES
from graphs.critique.critics import Critique
from graphs.critique.policy import program_vote
from graphs.loop import ModelCall
from graphs.sandbox import ProgramResult, SandboxLimits, extract_program, run_program

__all__ = [
    "PROGRAM_INSTRUCTION",
    "RESOLVE",
    "ProgramCheck",
    "ProgramCritic",
    "ProgramCritique",
    "Verdict",
    "compare_program",
    "draft_answer",
    "make_program_verifier",
    "printed_answer",
    "program_answer_text",
    "program_feedback",
    "program_messages",
    "program_verifier",
    "vote_programs",
]

PROGRAM_INSTRUCTION = (
    "Write a Python program that computes the answer to the problem above. Use only the "
    "standard library. The program must print the final answer (just the number) on its last "
    "line. Reply with a single ```python code block."
)
"""The request for a program, sent after the question."""

RESOLVE: tuple[str, ...] = ("program", "vote", "revise")
"""What a disagreement does (see the module docstring)."""
Verdict = Literal["agree", "disagree", "split", "no_program", "failed", "no_output"]
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)


def program_messages(question: str, system: str | None = None) -> list[Message]:
    """The messages asking for a program that computes the answer to ``question``."""
    msgs: list[Message] = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": f"{question}\n\n{PROGRAM_INSTRUCTION}"})
    return msgs


def draft_answer(draft: str) -> str | None:
    """The draft's stated final answer, read from its prose (fenced code removed first, so a
    number inside the code is not mistaken for the answer)."""
    return extract_answer(_CODE_BLOCK.sub(" ", draft or ""))


def printed_answer(stdout: str) -> str | None:
    """The answer a program printed: read from its last non-empty output line."""
    lines = [ln for ln in (stdout or "").splitlines() if ln.strip()]
    return extract_answer(lines[-1]) if lines else None


@dataclass(frozen=True)
class ProgramCheck:
    """The outcome of comparing one program run with one draft."""

    verdict: Verdict
    """``agree`` / ``disagree`` (a signal); ``split`` (sampled programs: the draft stands on a tie
    though no program agrees with it); or ``no_program`` / ``failed`` / ``no_output``."""
    draft_answer: str | None
    """The draft's final answer."""
    program_answer: str | None
    """The answer the program printed (``None`` unless it ran cleanly and printed one)."""
    program: str | None = None
    """The program that ran."""
    result: ProgramResult | None = None
    """The sandboxed run."""
    votes: tuple[str | None, ...] = ()
    """Sampled programs: every program's printed answer, in order (``None``: it printed none or
    failed); empty for a single program."""

    @property
    def revise(self) -> bool:
        """Only a clean run that disagrees asks for a revision."""
        return self.verdict == "disagree"


def compare_program(draft: str, program: str | None, result: ProgramResult | None) -> ProgramCheck:
    """The pure policy (see the module docstring): agree, disagree or no signal."""
    mine = draft_answer(draft)
    if program is None or result is None:
        return ProgramCheck("no_program", mine, None, program, result)
    if not result.ok:
        return ProgramCheck("failed", mine, None, program, result)
    got = printed_answer(result.stdout)
    if got is None:
        return ProgramCheck("no_output", mine, None, program, result)
    verdict: Verdict = "agree" if answers_equal(got, mine) else "disagree"
    return ProgramCheck(verdict, mine, got, program, result)


def vote_programs(draft: str, programs: Sequence[str | None], results: Sequence[ProgramResult | None]) -> ProgramCheck:
    """The pure policy for sampled programs: each one's printed answer, then
    :func:`graphs.critique.policy.program_vote`. The check names the program that decided (the
    overruling one, else the first that agrees with the draft), ``split`` when the draft stands on
    a tie with no program agreeing, and falls back to the first program's outcome when no program
    printed an answer."""
    checks = [compare_program(draft, p, r) for p, r in zip(programs, results)]
    votes = tuple(c.program_answer for c in checks)
    if not checks:
        return compare_program(draft, None, None)
    if all(v is None for v in votes):
        return replace(checks[0], votes=votes)
    win = program_vote(checks[0].draft_answer, votes)
    if win is not None:
        return replace(checks[win], verdict="disagree", votes=votes)
    agreeing = next((c for c in checks if c.verdict == "agree"), None)
    if agreeing is not None:
        return replace(agreeing, votes=votes)
    first = next(c for c in checks if c.program_answer is not None)
    return replace(first, verdict="split", votes=votes)


def _tally(check: ProgramCheck) -> str:
    """``"3 of 5 programs"`` for sampled programs (how many printed ``check.program_answer``)."""
    if not check.votes:
        return "A Python program that computes the answer"
    same = sum(v is not None and answers_equal(v, check.program_answer) for v in check.votes)
    return f"{same} of {len(check.votes)} Python programs that compute the answer"


def program_feedback(check: ProgramCheck, *, show_program: bool) -> str:
    """The critique text for ``check`` (shown to the reviser when it disagrees)."""
    if check.verdict == "agree":
        return f"{_tally(check)} printed {check.program_answer}, which agrees with your answer."
    if check.verdict == "split":
        return f"No external check: the programs printed {_answers(check.votes)}, no majority against your answer; it is kept."
    if check.verdict != "disagree":
        why = {"no_program": "there was no program to run", "no_output": "the program printed no answer",
               "failed": f"the program failed ({_failure(check.result)})"}[check.verdict]
        return f"No external check: {why}; the answer is kept."
    stated = (f"your final answer is {check.draft_answer}" if check.draft_answer is not None
              else "your solution states no final answer")
    code = f"\n\nThe program:\n```python\n{check.program.strip()}\n```" if show_program and check.program else ""
    return (
        f"{_tally(check)} printed {check.program_answer}, but {stated}. "
        "Recheck each step against the problem; if the program is right, fix your solution, "
        f"and end with \"The answer is X.\"{code}"
    )


def program_answer_text(check: ProgramCheck) -> str:
    """The response that replaces a draft when the program decides (``resolve="program"``):
    the program, the answer it printed, and the answer line."""
    code = f"```python\n{check.program.strip()}\n```\n" if check.program else ""
    return f"{code}The program printed {check.program_answer}.\nThe answer is {check.program_answer}."


def _answers(votes: Sequence[str | None]) -> str:
    return ", ".join("nothing" if v is None else v for v in votes)


def _failure(result: ProgramResult | None) -> str:
    if result is None:
        return "not run"
    if result.timed_out:
        return "timed out"
    if result.killed_by_limit:
        return f"{result.killed_by_limit} limit"
    last = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return last[-1][:200] if last else f"exit status {result.exit_status}"


@dataclass(frozen=True)
class ProgramCritique(Critique):
    """A :class:`Critique` plus the program check behind it."""

    check: ProgramCheck | None = None
    """The comparison (verdict, both answers, the program, the sandboxed run)."""


class ProgramCritic:
    """Critic: revise only when a sandboxed program's printed result disagrees with the draft.

    Args:
        model: the model asked for a program (``target="critic"``); ``None``: in a graph or the
            middleware, the drafting model writes it.
        limits: the sandbox limits (:class:`graphs.sandbox.SandboxLimits`).
        source: ``"draft_first"`` or ``"model"`` (see the module docstring).
        resolve: ``"program"`` (default: on a disagreement the program's printed answer
            replaces the draft, no revision call), ``"vote"`` (the same unless one sampled
            solution sides with the draft) or ``"revise"`` (the model revises with the
            program's feedback); see the module docstring.
        ask_model: ``False``: never ask for a program, only run the draft's own code.
        max_tokens: most tokens of the program request.
        seed: the program request's seed (sampled programs: ``seed + i``; one greedy program:
            kept for servers that use it).
        samples: how many programs to sample and vote with the draft (1 to
            :data:`MAX_PROGRAM_SAMPLES`; 1: one greedy program, the draft's own first); see the
            module docstring.
        temperature: the sampling temperature of ``samples > 1`` programs (0 < t <= 2).
        system_prompt: an optional system message for the program request.

    In a method's loop: ``ask`` then ``read`` (the critic protocol). Standalone:
    :meth:`critique` makes the call with ``model`` itself.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        limits: SandboxLimits | None = None,
        source: Literal["draft_first", "model"] = "draft_first",
        resolve: Literal["program", "vote", "revise"] = "program",
        ask_model: bool = True,
        max_tokens: int = 384,
        seed: int | None = None,
        system_prompt: str | None = None,
        samples: int = 1,
        temperature: float = 0.7,
    ) -> None:
        if source not in ("draft_first", "model"):
            raise InvalidRequestError("source", source, "pass 'draft_first' or 'model'")
        if resolve not in RESOLVE:
            raise InvalidRequestError(
                "resolve", resolve, "pass 'program' (the program's answer wins), 'vote' (a sample breaks the tie) or 'revise'"
            )
        if source == "model" and not ask_model:
            raise InvalidRequestError("ask_model", ask_model, "source='model' asks a model for the program: keep ask_model=True")
        _check_sampling(samples, temperature, ask_model)
        if limits is not None and not isinstance(limits, SandboxLimits):
            raise InvalidRequestError("limits", limits, "pass graphs.sandbox.SandboxLimits(...)")
        self.model = resolve_model(model) if model is not None else None
        self.limits = limits or SandboxLimits()
        self.source = source
        self.resolve = resolve
        self.ask_model = ask_model
        self.max_tokens = max_tokens
        self.seed = seed
        self.system_prompt = system_prompt
        self.samples = samples
        self.temperature = temperature

    def _own_program(self, draft: str) -> str | None:
        return extract_program(draft) if self.source == "draft_first" else None

    def ask(self, question: str, draft: str, reference: str | None) -> ModelCall | None:
        """The program request, a side call to ``target="critic"`` (``None``: the draft's own
        code will be run, or ``ask_model=False``); ``samples > 1``: one sampled call for ``n``
        programs, asked even when the draft has code of its own (that code votes too)."""
        messages = tuple(program_messages(question, self.system_prompt))
        if self.samples > 1:
            return ModelCall("critique", target="critic", messages=messages, max_tokens=self.max_tokens,
                             temperature=self.temperature, seed=self.seed, n=self.samples, sampled=True)
        if not self.ask_model or self._own_program(draft) is not None:
            return None
        return ModelCall("critique", target="critic", messages=messages, max_tokens=self.max_tokens,
                         temperature=0.0, seed=self.seed)

    def read(self, question: str, draft: str, reference: str | None, reply: Any) -> ProgramCritique:
        """Run the program(s) (the draft's, and those in ``reply``: one or a list) and compare."""
        own = self._own_program(draft)
        replies = reply if isinstance(reply, (list, tuple)) else ([] if reply is None else [reply])
        if self.samples > 1:
            programs = [own, *(extract_program(r.text) for r in replies)] if own else [extract_program(r.text) for r in replies]
            check = vote_programs(draft, programs, [self._run(p) for p in programs])
        else:
            program = own or (extract_program(replies[0].text) if replies else None)
            check = compare_program(draft, program, self._run(program))
        text = program_feedback(check, show_program=own is None or check.program != own)
        replacement = program_answer_text(check) if check.revise and self.resolve != "revise" else None
        return ProgramCritique(text=text, approved=not check.revise, replacement=replacement,
                               vote=self.resolve == "vote", check=check)

    def _run(self, program: str | None) -> ProgramResult | None:
        return run_program(program, self.limits) if program is not None else None

    def critique(self, question: str, draft: str, reference: str | None = None) -> ProgramCritique:
        """Standalone use: ask ``model`` for a program when needed, run it, compare."""
        call = self.ask(question, draft, reference)
        if call is not None and self.model is None:
            raise InvalidRequestError(
                "model", None, "this draft has no program of its own: pass ProgramCritic(model=...) to ask for one"
            )
        replies = [] if call is None else [
            self.model.generate(list(call.messages or ()), max_tokens=call.max_tokens, temperature=call.temperature,
                                seed=None if call.seed is None else call.seed + i)
            for i in range(call.n)
        ]
        return self.read(question, draft, reference, replies)


def _check_sampling(samples: Any, temperature: Any, ask_model: bool) -> None:
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_PROGRAM_SAMPLES:
        raise InvalidRequestError("samples", samples, f"pass an int from 1 to {MAX_PROGRAM_SAMPLES} (programs to sample and vote)")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature <= 2:
        raise InvalidRequestError("temperature", temperature, "pass a sampling temperature in (0, 2], e.g. 0.7")
    if samples > 1 and not ask_model:
        raise InvalidRequestError("ask_model", ask_model, "samples > 1 asks the model for programs: keep ask_model=True")


def make_program_verifier(limits: SandboxLimits | None = None):
    """A verifier ``(question, response, reference) -> (ok, message)`` for rewards without gold.

    ``ok`` is ``True`` only when the response's own program ran cleanly and printed the
    response's final answer; a response without a program, or whose program fails, is not
    verified (``False``). ``reference`` is not used (it exists for the verifier signature).
    """
    lim = limits or SandboxLimits()

    def verify(question: str, response: str, reference: str | None = None) -> tuple[bool, str]:
        program = extract_program(response)
        check = compare_program(response, program, run_program(program, lim) if program else None)
        return check.verdict == "agree", program_feedback(check, show_program=False)

    return verify


def program_verifier(question: str, response: str, reference: str | None = None) -> tuple[bool, str]:
    """:func:`make_program_verifier` with the default limits (matches ``critics.Verifier``)."""
    return make_program_verifier()(question, response, reference)
