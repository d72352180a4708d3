"""The critique-revise graph: a thin LangGraph driver of :func:`graphs.critique.loop.critique_loop`.

``START -> start -> step* -> END`` (:func:`graphs.driver.build_loop_graph`): every model call
and every review is one checkpointed super-step, a review resumes without re-running anything,
and a new question on a thread starts a fresh run. Every state value is JSON-serialisable, so
any checkpointer works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from graphs.critique.config import CritiqueConfig
from graphs.critique.critics import make_critic, uses_gate
from graphs.critique.loop import CritiqueResult, critique_loop
from graphs.critique.prompts import draft_messages
from graphs.driver import build_loop_graph, record_replies
from graphs.validate import start_input
from graphs.vocab import Cost, Turn

__all__ = ["CritiqueInput", "CritiqueState", "create_critique_graph"]

_OUTPUT_KEYS = (
    "turns", "final", "response", "answer", "usage", "stop_reason", "mode",
    "attempt1_response", "attempt1_answer", "attempt2_response", "attempt2_answer", "edit_distance", "gate",
)


class CritiqueInput(TypedDict, total=False):
    """The graph's input."""

    question: str
    reference: str | None
    """A gold answer for a verifier critic (never shown to the model)."""
    history: list[dict[str, str]] | None
    """The conversation before the question (system prompt, earlier turns), as role/content
    dicts; cleared at the start of a run (it becomes ``conversation``)."""


class CritiqueState(CritiqueInput, total=False):
    """State of the critique-revise graph: the input, the loop's recorded replies, its result."""

    conversation: list[dict[str, str]]
    """This run's conversation before the question (the checked ``history``)."""
    replies: Annotated[list[Any], record_replies]
    emitted: int
    finished: bool
    turns: list[Turn]
    final: int
    response: str
    answer: str | None
    usage: Cost
    stop_reason: str | None
    mode: str
    attempt1_response: str
    attempt1_answer: str | None
    attempt2_response: str
    attempt2_answer: str | None
    edit_distance: float | None
    gate: dict[str, Any] | None


def create_critique_graph(
    model: Any,
    config: CritiqueConfig | None = None,
    *,
    critic: Any = None,
    checkpointer: Any = None,
    stream: str = "final",
    **overrides: Any,
):
    """Build the critique-revise graph (Self-Refine, RCI or SCoRe two-attempt).

    Args:
        model: the drafting model (anything :func:`adapters.specs.resolve_model` accepts).
        config: a :class:`CritiqueConfig`; ``overrides`` (its field names) replace its fields.
        critic: ``None`` (the default: the same model critiques, behind the disagreement gate,
            see :attr:`CritiqueConfig.gate`), ``"self"`` (the same model, ungated: the old
            intrinsic critique), ``"program"`` (:class:`~graphs.critique.program.ProgramCritic`,
            runs model-written code in the sandbox), another model spec / ``LogprobModel``, a
            :class:`~graphs.judge.Judge`, or a verifier ``f(question, response, reference)``
            returning ``bool`` or ``(bool, message)`` (e.g. :func:`answer_match_verifier`).
        checkpointer: a LangGraph checkpointer (required with ``interrupt_before_revise``).
        stream: which calls reach ``stream_mode="messages"`` token by token: ``"final"`` (the
            draft and each revision, as each may be the answer; a revised draft has streamed
            before its critique, so follow the ``critique.*`` custom events to see which was
            kept), ``"all"`` (critiques too) or ``"none"``.

    Input ``{"question": str, "reference"?: str, "history"?: [role/content dicts]}``; output adds the
    :class:`~graphs.critique.loop.CritiqueResult` keys (``answer``, ``response``, ``turns``,
    ``usage``, ``stop_reason``, the attempt-1/attempt-2 keys). Streams custom events
    ``critique.draft``, ``critique.critique``, ``critique.review``, ``critique.revise`` and
    ``critique.done``. With ``interrupt_before_revise=True`` it pauses before each revision;
    resume with ``Command(resume={"decisions": [{"type": "approve"}]})`` (or ``"edit"`` with
    ``edited_action={"name": "critique.revise", "args": {"critique": ...}}``, or ``"reject"``).
    """
    cfg = CritiqueConfig.from_options(overrides, base=config)
    if cfg.interrupt_before_revise and checkpointer is None:
        raise InvalidRequestError(
            "checkpointer", None, "interrupt_before_revise=True needs a checkpointer, e.g. InMemorySaver()"
        )
    llm = resolve_model(model)
    critic_impl = make_critic(critic, cfg)
    gate = uses_gate(critic, cfg)
    return build_loop_graph(
        name=f"critique-{cfg.mode}", state_schema=CritiqueState, input_schema=CritiqueInput,
        model=llm, models={"critic": critic_impl.model or llm}, start=_start,
        make_loop=lambda s: critique_loop(s["question"], cfg, critic_impl, reference=s.get("reference"), gate=gate),
        host=lambda s: draft_messages(s["question"], cfg.system_prompt, s.get("conversation") or ()),
        finish=_finish, reset=_OUTPUT_KEYS, checkpointer=checkpointer, stream=stream,
    )


def _start(state: Mapping[str, Any]) -> dict[str, Any]:
    """The run's input keys: the question and history (checked), the reference (a string or none)."""
    reference = state.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise InvalidRequestError("reference", reference, "pass the gold answer as a string, or leave it out")
    return {**start_input(state), "reference": reference}


def _finish(state: Mapping[str, Any], result: CritiqueResult) -> dict[str, Any]:
    return dict(result)
