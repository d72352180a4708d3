"""``CritiqueReviseMiddleware``: critique the agent's final answer and revise it.

A thin driver of :func:`graphs.critique.loop.critique_loop` (the same loop the graph runs:
Self-Refine, RCI or SCoRe, the same critics, stop rules, echo check and trace), placed in an
agent in one of two ways:

- hidden (default, ``wrap_model_call``): inside one model call, draft -> critique -> revise
  until a stop rule fires; only the final answer leaves the model node.
- ``visible=True`` (``after_model``): each critique's revision request is added to the
  conversation as a user turn (marked ``additional_kwargs["sc_chains"] = "<name>"``) and the
  agent jumps back to the model, so every draft and critique is a checkpointed step.

``review=True`` pauses before each revision for a person, in LangChain's HITL shape: the
interrupt carries ``action_requests`` / ``review_configs`` (plus ``draft`` and ``critique``);
resume with ``Command(resume={"decisions": [{"type": "approve"}]})``, an ``"edit"`` decision
(``edited_action={"name": "critique.revise", "args": {"critique": "..."}}``) or ``"reject"``
(keep the draft). The draft and the critique are checkpointed in private state before the pause,
so resuming never runs the draft or the critique again.

Streaming (hidden mode): under ``stream="final"`` (default) every call of the loop runs
``nostream``; once the loop has chosen the final answer it streams in ``stream_mode="messages"``
token by token, once (drafts and verdicts never). ``stream="all"``: drafts and revisions stream
live as they are made. A tool-call turn shows whole when the model node ends.

Tool-call messages are never critiqued. The critic: ``None`` (the default: the agent's own model,
hidden mode, behind the disagreement gate: a second reply is asked for and the draft is critiqued
only when its answer differs; that reply is sampled at ``gate_temperature`` and ``seed``, set
as call keywords on the agent's model; a revision then stands only if that reply's answer
confirms it, ``gate_confirm``: do no harm), ``"self"``
(the old ungated self-critique), ``"program"`` (the sandboxed program critic; on a disagreement
the program's printed answer is the answer; ``ProgramCritic(samples=5)`` votes five sampled
programs with the draft, each sampled with the critic's ``temperature`` and ``seed + i`` as call
keywords; ``ProgramCritic(resolve="vote")`` lets one sampled reply overrule the program; see
:mod:`graphs.critique.program`), a chat model, a
``LogprobModel`` or spec, a :class:`~graphs.judge.Judge`, a
``graphs.critique`` critic, or a verifier function ``(question, answer, reference) -> bool |
(bool, feedback)`` (anything but ``True`` / ``(True, ...)`` / an approving review is not
approval; a string like ``"no"`` is a typed error).

Bounds: at most :data:`~graphs.critique.config.MAX_REVISIONS` revisions per request, whatever
``max_corrections`` says (``max_corrections=10**9, max_completion_tokens=None`` still ends), so
visible mode stays far inside LangGraph's recursion limit.

Cost: the final message's ``usage_metadata`` is everything the turn spent (drafts, critiques,
revisions, and what an inner middleware such as LECO spent on drafts that were replaced);
``response_metadata["sc_chains"][name]`` itemises the extra calls and tokens and the loop's trace
(``turns``, ``stop_reason``, ``usage``).

With LangChain's ``ModelCallLimitMiddleware``: it counts the agent's model *steps*. A hidden
critique loop is one step (its own calls are bounded by ``max_corrections`` and
``MAX_REVISIONS``); in visible mode each revision is a step, and a run limit listed *after* this
middleware ends the revisions (listed before it, the jump back to the model skips its count).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    PrivateStateAttr,
    hook_config,
)
from langchain_core.messages import AIMessage, RemoveMessage
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from typing_extensions import NotRequired

from adapters.errors import InvalidRequestError
from graphs.critique.config import MAX_REVISIONS, CritiqueConfig
from graphs.critique.critics import JudgeCritic, ModelCritic, make_critic, uses_gate
from graphs.critique.loop import CritiqueResult
from graphs.loop import Review, drive
from graphs.streaming import stream_text
from graphs.validate import Options, check_bool, check_str
from graphs.vocab import Allowance
from sc_chains.middleware._calls import first_ai
from sc_chains.middleware._critique_run import (
    _Calls,
    _Session,
    _Suspend,
    _visible_extra,
    _with_id,
    replaced_message,
)
from sc_chains.middleware._shared import (
    UNSET,
    Budget,
    apply_overrides,
    by_name,
    chat_model,
    given,
    text_of,
)

__all__ = ["CritiqueReviseMiddlewareConfig", "CritiqueReviseMiddleware"]

class CritiqueMiddlewareState(AgentState):
    """The agent state plus the critique loops' private per-request ledgers (by name)."""

    sc_chains_critique: NotRequired[Annotated[dict[str, Any], PrivateStateAttr, by_name]]


@dataclass(frozen=True)
class CritiqueReviseMiddlewareConfig(Options):
    """How the critique-revise middleware runs (the loop's own options are in ``critique``)."""

    budget: Budget = Budget(max_corrections=2, max_completion_tokens=4000)
    """Revisions and generated tokens per request (cut to ``MAX_REVISIONS`` revisions), and the
    stream policy. (First, so ``max_completion_tokens=`` means the per-request budget.)"""
    critique: CritiqueConfig = CritiqueConfig(max_completion_tokens=None)
    """The loop: ``mode``, ``max_turns``, ``collapse_threshold``, ``confidence_threshold``,
    prompts, ``interrupt_before_revise`` (review)... Its own token budget is off: the
    per-request ``budget`` counts instead."""
    visible: bool = False
    """``True``: critiques and revision requests are conversation turns (``after_model``)."""
    name: str = "critique"
    """The instance's name: its node names, its private ledger, its ``sc_chains`` metadata key
    and its call tags (two instances with different names coexist in one agent)."""

    def __post_init__(self) -> None:
        check_bool("visible", self.visible)
        check_str("name", self.name, nonempty=True)




class CritiqueReviseMiddleware(AgentMiddleware):
    """Critique each final answer and revise it until a stop rule fires (bounded).

    Example::

        agent = create_agent(model, tools=[add], middleware=[CritiqueReviseMiddleware(critic=judge)])

    Args:
        critic: see the module docstring. Visible mode needs one (``after_model`` cannot see the
            agent's model): pass the agent's model itself for self-critique.
        mode: the loop: ``"self-refine"`` (default), ``"rci"`` or ``"score"``.
        visible: critiques as conversation turns instead of inside the model call.
        review: pause before each revision for a person (LangChain's HITL decisions); needs a
            checkpointer.
        max_corrections: most revisions per request (user message). Never more than
            :data:`~graphs.critique.config.MAX_REVISIONS`, a hard ceiling no argument lifts.
        max_completion_tokens: most tokens the loop's calls may generate per request (prompt
            tokens never count); ``None``: no token limit (the ceiling still holds).
        stream: ``"final"`` (only answers reach ``stream_mode="messages"``) or ``"all"``.
        name: this instance's name (two instances need two names).
        config: a :class:`CritiqueReviseMiddlewareConfig` to start from.
        options: any other :class:`~graphs.critique.config.CritiqueConfig` field
            (``max_turns``, ``collapse_threshold``, ``confidence_threshold``, prompts...).
    """

    state_schema = CritiqueMiddlewareState

    def __init__(self, critic: Any = None, *, mode: str = UNSET, visible: bool = UNSET, review: bool = UNSET,
                 max_corrections: int = UNSET, max_completion_tokens: int | None = UNSET, stream: str = UNSET,
                 name: str = UNSET, config: CritiqueReviseMiddlewareConfig | None = None, **options: Any) -> None:
        super().__init__()
        if mode in ("hidden", "visible"):
            raise InvalidRequestError("mode", mode, "mode is the critique method ('self-refine', 'rci', 'score'); "
                                      "pass visible=True to put critiques in the conversation")
        explicit = given(mode=mode, visible=visible, interrupt_before_revise=review, max_corrections=max_corrections,
                         max_completion_tokens=max_completion_tokens, stream=stream, name=name)
        opts = {**options, **explicit}
        self.config = apply_overrides(config or CritiqueReviseMiddlewareConfig(), opts, "CritiqueReviseMiddleware")
        self.tools = []
        if critic is None and self.config.visible:
            raise InvalidRequestError(
                "critic", None, "visible mode needs a critic: pass critic=<the agent's chat model> for self-critique"
            )
        self.critic = make_critic(critic, self.config.critique, chat=lambda c: chat_model(c, "critic"))
        self.gate = uses_gate(critic, self.config.critique)
        model = getattr(self.critic, "model", None)
        self.critic_model = model if isinstance(self.critic, (ModelCritic, JudgeCritic)) else None
        if self.config.visible or self.config.critique.interrupt_before_revise:
            # adds the after_model / before_model hooks (visible: and drops the model-call wrapper)
            self.__class__ = _CritiqueReviseVisible if self.config.visible else _CritiqueReviseSteps

    @property
    def name(self) -> str:
        """The instance name (``name=``): node names, ledger, ``sc_chains`` metadata key, tags."""
        return self.config.name

    def _check_checkpointer(self) -> None:
        """``review=True`` pauses the run: without a checkpointer the pause could never resume.
        Checked before the draft is paid for."""
        if not self.config.critique.interrupt_before_revise:
            return
        from langgraph.config import get_config

        try:
            configurable = get_config().get("configurable") or {}
        except RuntimeError:  # outside a graph run
            return
        if configurable.get("__pregel_checkpointer") is None:
            raise InvalidRequestError(
                "checkpointer", None, "review=True pauses the agent: create_agent(..., checkpointer=InMemorySaver())"
            )

    @property
    def budget(self) -> Budget:
        return self.config.budget

    def allowance(self, led: Mapping[str, Any]) -> Allowance:
        """What this request may still spend, cut to the hard ceiling."""
        left = self.budget.allowance(led)
        ceiling = max(0, MAX_REVISIONS - int(led.get("corrections", 0)))
        return {"corrections": min(left["corrections"] if left["corrections"] is not None else ceiling, ceiling),
                "completion_tokens": left["completion_tokens"]}

    # -- hidden: inside the model call ------------------------------------------------------------
    def _hidden(self, request: ModelRequest, handler: Any) -> tuple[_Session, _Calls] | None:
        if self.config.visible:
            return None
        self._check_checkpointer()
        session = _Session(self, request.state)
        raw = (session.run or {}).get("host")
        system = [request.system_message] if getattr(request, "system_message", None) is not None else []
        return session, _Calls(self, [*system, *request.messages], request=request, handler=handler, raw=raw)

    def _hidden_done(self, session: _Session, calls: _Calls, result: CritiqueResult | None) -> Any:
        if result is None:  # the draft called a tool: nothing to critique
            return calls.raw[-1]
        drafts = [first_ai(r) for r in calls.raw]
        if result["stop_reason"] == "tool_call":  # a revision chose a tool: the agent runs it
            _, update = session.close(result, drafts)
            return ExtendedModelResponse(model_response=calls.raw[-1], command=Command(update=update))
        final, update = session.close(result, drafts)
        final = self._replay(final)
        return ExtendedModelResponse(model_response=ModelResponse(result=[final]), command=Command(update=update))

    def _replay(self, final: AIMessage) -> AIMessage:
        """Under ``stream="final"``: the loop's final answer, token by token, once, in
        ``stream_mode="messages"`` (its calls ran ``nostream``; drafts and critiques never show).
        Inside an outer middleware's ``nostream`` call nothing is shown."""
        if self.budget.stream != "final":
            return final
        final = _with_id(final)
        stream_text(final.text, graph=self.name, message_id=final.id)
        return final

    def _hidden_pause(self, session: _Session, calls: _Calls, review: Review) -> Any:
        """Before a review: return the draft (checkpointed with the run) and let after_model and
        before_model ask the person; the model call resumes from the ledger."""
        draft = _with_id(first_ai(calls.raw[-1]))
        calls.raw[-1] = draft
        update = session.save(calls, review=dict(review.payload), draft_id=draft.id)
        return ExtendedModelResponse(model_response=ModelResponse(result=[draft]), command=Command(update=update))

    def _hidden_end(self, session: _Session, calls: _Calls, result: CritiqueResult | None, pause: Any) -> Any:
        return self._hidden_done(session, calls, result) if pause is None else self._hidden_pause(session, calls, pause)

    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Hidden mode: draft, critique and revise inside the model call (sync)."""
        hidden = self._hidden(request, handler)
        return handler(request) if hidden is None else self._hidden_end(*hidden, *hidden[0].drive(hidden[1]))

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Hidden mode: draft, critique and revise inside the model call (async)."""
        hidden = self._hidden(request, handler)
        if hidden is None:
            return await handler(request)
        return self._hidden_end(*hidden, *await hidden[0].adrive(hidden[1]))


class _CritiqueReviseSteps(CritiqueReviseMiddleware):
    """The same middleware with ``after_model`` / ``before_model`` hooks: used when ``visible``
    or ``review`` is on (a hidden loop without review needs neither, so it adds no graph nodes)."""

    # -- visible: critiques as conversation turns -------------------------------------------------
    def _visible(self, state: Mapping[str, Any]) -> tuple[_Session, _Calls] | dict[str, Any] | None:
        session = _Session(self, state)
        if session.run and session.run.get("review") is not None:
            return {"jump_to": "model"}  # a review is pending: before_model asks the person
        last = session.messages[-1] if session.messages else None
        if not self.config.visible or not isinstance(last, AIMessage) or last.tool_calls:
            return None
        self._check_checkpointer()
        if state.get("structured_response") is not None:
            return None
        base = session.run["base"] if session.run else len(session.messages) - 1
        session.base = base
        raw = (session.run or {}).get("host")
        return session, _Calls(self, session.messages[:base], given=last, raw=raw)

    def _visible_pause(self, session: _Session, calls: _Calls, request: Any) -> dict[str, Any]:
        last = session.messages[-1]
        if isinstance(request, Review):
            update = session.save(calls, base=session.base, review=dict(request.payload), draft_id=last.id)
            return {**update, "jump_to": "model"}
        update = session.save(calls, base=session.base, review=None)
        return {"messages": _visible_extra(request, text_of(last), self.name), **update, "jump_to": "model"}

    def _visible_done(self, session: _Session, calls: _Calls, result: CritiqueResult | None) -> dict[str, Any]:
        if result is None:
            return {}
        drafts = [first_ai(r) for r in calls.raw]
        if result["final"] >= len(drafts):  # the critic's own corrected response (no model call)
            final = replaced_message(result)
        else:
            final = drafts[result["final"]]
        if result["final"] < len(drafts) - 1:  # an echo or an unconfirmed revision: answer again
            final = AIMessage(final.text, usage_metadata={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})
        msg, update = session.close(result, drafts, final, visible=True)
        return {"messages": [msg], **update}

    def _visible_end(self, session: _Session, calls: _Calls, result: CritiqueResult | None,
                     pause: Any) -> dict[str, Any]:
        return self._visible_done(session, calls, result) if pause is None else self._visible_pause(session, calls, pause)

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: CritiqueMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Visible mode: critique the answer; jump back to the model to revise (sync). Either
        mode: a pending review sends the agent to ``before_model``, which asks the person."""
        visible = self._visible(state)
        return self._visible_end(*visible, *visible[0].drive(visible[1])) if isinstance(visible, tuple) else visible

    @hook_config(can_jump_to=["model"])
    async def aafter_model(self, state: CritiqueMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Visible mode (async): see :meth:`after_model`."""
        visible = self._visible(state)
        if not isinstance(visible, tuple):
            return visible
        return self._visible_end(*visible, *await visible[0].adrive(visible[1]))

    # -- review: the person decides before a revision -----------------------------------------------
    @hook_config(can_jump_to=["end"])
    def before_model(self, state: CritiqueMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """A pending review: ``interrupt`` with the HITL request; the decision resumes the loop
        from the checkpointed run (no model call is repeated). A malformed decision is asked
        again in this node (LangGraph matches each ``interrupt`` to its resume value)."""
        self._check_checkpointer()
        session = _Session(self, state)
        if not session.run or session.run.get("review") is None:
            return None
        session.base = session.run.get("base", 0)
        calls = _Calls(self, session.messages[: session.base], raw=session.run.get("host"))
        try:
            result = drive(session.rec.run(), calls.call, on_review=lambda r: interrupt(dict(r.payload)))
        except _Suspend as pause:  # approve / edit: on to the revision
            update = session.save(calls, review=None)
            if self.config.visible:
                return {"messages": _visible_extra(pause.args[0], text_of(session.messages[-1]), self.name), **update}
            return {"messages": [RemoveMessage(id=session.run["draft_id"])], **update}
        msg, update = session.close(result, [first_ai(r) for r in calls.raw], visible=self.config.visible)
        if not self.config.visible:
            msg = self._replay(msg)
        return {"messages": [msg], **update, "jump_to": "end"}

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: CritiqueMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Async :meth:`before_model` (a review resumes without any model call)."""
        return self.before_model(state, runtime)


class _CritiqueReviseVisible(_CritiqueReviseSteps):
    """Visible mode: the loop runs in ``after_model`` / ``before_model`` only, so the model call
    is not wrapped (a wrapper would pass every call through, and LangChain traces each one: a
    span and two thread hops per call under ``ainvoke``)."""

    wrap_model_call = AgentMiddleware.wrap_model_call  # type: ignore[assignment]
    awrap_model_call = AgentMiddleware.awrap_model_call  # type: ignore[assignment]
