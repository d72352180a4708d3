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

Tool-call messages are never critiqued. The critic: ``None`` (the agent's own model; hidden
mode), a chat model, a ``LogprobModel`` or spec, a :class:`~graphs.judge.Judge`, a
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
from langchain_core.messages import AIMessage, BaseMessage, RemoveMessage
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from typing_extensions import NotRequired

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from graphs.critique.config import MAX_REVISIONS, CritiqueConfig
from graphs.critique.critics import JudgeCritic, ModelCritic, make_critic
from graphs.critique.loop import CritiqueResult, critique_loop
from graphs.driver import model_requests
from graphs.loop import Emit, ModelCall, Review, adrive, drive, reply_from_json, reply_to_json
from graphs.validate import Options, check_bool, check_str
from graphs.vocab import Allowance, add_cost, zero_cost
from sc_chains.middleware._shared import (
    Budget,
    apply_overrides,
    call_scope,
    charge_cost,
    chat_model,
    first_ai,
    is_ours,
    lc_message,
    ledger,
    text_of,
    to_generation,
    with_cost,
)

__all__ = ["CritiqueReviseMiddlewareConfig", "CritiqueReviseMiddleware"]

KEY = "sc_chains_critique"
_UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "<default>"})()


def _by_name(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reducer of the private key: one ledger per middleware ``name`` (instances coexist)."""
    return {**(left or {}), **(right or {})}


class CritiqueMiddlewareState(AgentState):
    """The agent state plus the critique loops' private per-request ledgers (by name)."""

    sc_chains_critique: NotRequired[Annotated[dict[str, Any], PrivateStateAttr, _by_name]]


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


class _Suspend(Exception):
    """The loop reached a request this hook cannot serve (a revision in visible mode, a review)."""


class _Recorder:
    """Feeds a loop the replies recorded in the ledger, then passes requests through, logging
    each new reply (JSON) and counting events, so the next hook can resume exactly there."""

    def __init__(self, loop: Any, run: Mapping[str, Any] | None) -> None:
        self.loop = loop
        self.replies: list[Any] = list((run or {}).get("replies") or [])
        self.skip = int((run or {}).get("emitted") or 0)
        self.emitted = 0

    def run(self) -> Any:
        """The wrapped loop (a generator for :func:`graphs.loop.drive` / ``adrive``)."""
        fed = 0
        try:
            req = next(self.loop)
            while True:
                if isinstance(req, Emit):
                    self.emitted += 1
                    reply = (yield req) if self.emitted > self.skip else None
                elif fed < len(self.replies):
                    reply, fed = reply_from_json(self.replies[fed]), fed + 1
                else:
                    reply = yield req
                    self.replies.append(reply_to_json(reply))
                    fed += 1
                req = self.loop.send(reply)
        except StopIteration as done:
            return done.value

    def state(self, **extra: Any) -> dict[str, Any]:
        return {"replies": self.replies, "emitted": max(self.emitted, self.skip), **extra}


def _suspend(request: Any) -> Any:
    raise _Suspend(request)


class _Calls:
    """Executes the loop's model calls in an agent: the draft and revisions (``target="model"``)
    through the agent's ``handler`` (hidden) or from the conversation (visible: ``given`` is the
    agent's latest answer; a second such call suspends the hook); critiques to the critic (a chat
    model, or a judge's ``LogprobModel``). Host replies are kept in :attr:`raw`, in order."""

    def __init__(self, mw: CritiqueReviseMiddleware, host: list[BaseMessage], *, request: Any = None,
                 handler: Any = None, given: AIMessage | None = None, raw: list[Any] | None = None) -> None:
        self.mw, self.host, self.request, self.handler, self.given = mw, host, request, handler, given
        self.raw: list[Any] = list(raw or [])

    def _host(self, call: ModelCall) -> Any:
        """The request for the agent's handler, or the reply already given (visible)."""
        if self.handler is None:
            if self.given is None:
                raise _Suspend(call)
            msg, self.given = self.given, None
            return msg
        extra = [lc_message(m, self.mw.name) for m in call.extra]
        return self.request.override(messages=[*self.request.messages, *extra]) if extra else self.request

    def _critic(self, call: ModelCall) -> tuple[Any, Any]:
        model = self.mw.critic_model or (self.request.model if self.request is not None else None)
        if isinstance(model, LogprobModel):  # a judge: k sampled scores on its own prompt
            return model, model_requests(model, call, [m for m in self.host])
        if call.n != 1:
            raise InvalidRequestError("critic", model, "a chat-model critic answers one call at a time (n=1)")
        msgs = call.messages if call.messages is not None else [*self.host, *call.extra]
        return model, [m if isinstance(m, BaseMessage) else lc_message(m, self.mw.name) for m in msgs]

    def _record(self, raw: Any) -> Any:
        self.raw.append(raw)
        result = getattr(raw, "result", None)
        structured = getattr(raw, "structured_response", None) is not None or (result is not None and len(result) != 1)
        return to_generation(first_ai(raw), structured=structured)

    def call(self, call: ModelCall) -> Any:
        """One model call (sync)."""
        with call_scope(self.mw.budget.stream, self.mw.name, call.role, final=call.final):
            if call.target == "model":
                req = self._host(call)
                return self._record(req if isinstance(req, AIMessage) else self.handler(req))
            model, arg = self._critic(call)
            if isinstance(model, LogprobModel):
                return model.generate(arg[0]) if len(arg) == 1 else model.batch(arg)
            return to_generation(model.invoke(arg))

    async def acall(self, call: ModelCall) -> Any:
        """One model call (async)."""
        with call_scope(self.mw.budget.stream, self.mw.name, call.role, final=call.final):
            if call.target == "model":
                req = self._host(call)
                return self._record(req if isinstance(req, AIMessage) else await self.handler(req))
            model, arg = self._critic(call)
            if isinstance(model, LogprobModel):
                return await model.agenerate(arg[0]) if len(arg) == 1 else await model.abatch(arg)
            return to_generation(await model.ainvoke(arg))


def _question(messages: list[BaseMessage]) -> str:
    return next((text_of(m) for m in reversed(messages) if m.type == "human" and not is_ours(m)), "")


def _with_id(message: AIMessage) -> AIMessage:
    if message.id:
        return message
    import uuid

    return message.model_copy(update={"id": f"sc-chains-{uuid.uuid4()}"})


def _visible_extra(call: ModelCall, draft: str, owner: str) -> list[BaseMessage]:
    """What a revision adds to a visible conversation: the revise call's messages after the
    current draft (the conversation already holds the drafts before it)."""
    extra = list(call.extra)
    cut = max((i for i, m in enumerate(extra) if m["role"] == "assistant" and m["content"] == draft), default=-1)
    out = []
    for m in extra[cut + 1 :]:
        msg = lc_message(m, owner)
        out.append(msg if m["role"] == "user" else _mark(msg, owner))
    return out


def _mark(message: BaseMessage, owner: str) -> BaseMessage:
    message.additional_kwargs = {**(message.additional_kwargs or {}), "sc_chains": owner}
    return message


class _Session:
    """One hook's view of this request's critique run: its ledger, the run recorded so far (a
    review or a visible revision spans several hooks), and the loop replayed to that point."""

    def __init__(self, mw: CritiqueReviseMiddleware, state: Mapping[str, Any]) -> None:
        self.mw = mw
        self.messages: list[BaseMessage] = list(state.get("messages") or [])
        mine = (state.get(KEY) or {}).get(mw.name)
        self.led = ledger({"messages": self.messages, "led": mine}, "led")
        self.run: dict[str, Any] | None = self.led.get("run")
        self.allowance: Allowance = self.run["allowance"] if self.run else mw.allowance(self.led)
        loop = critique_loop(_question(self.messages), mw.config.critique, mw.critic, allowance=self.allowance)
        self.rec = _Recorder(loop, self.run)
        self.base = 0
        """Visible mode: how many messages precede the run's first draft (the critic's host)."""

    def drive(self, calls: _Calls) -> CritiqueResult | None:
        return drive(self.rec.run(), calls.call, on_review=_suspend)

    async def adrive(self, calls: _Calls) -> CritiqueResult | None:
        return await adrive(self.rec.run(), calls.acall, on_review=_suspend)

    def save(self, calls: _Calls, **extra: Any) -> dict[str, Any]:
        """The ledger with this unfinished run recorded (private state update)."""
        run = self.rec.state(allowance=self.allowance, host=[first_ai(r) for r in calls.raw], **extra)
        for key in ("base", "draft_id"):
            if self.run and key in self.run and key not in run:
                run[key] = self.run[key]
        return {KEY: {self.mw.name: {**self.led, "run": run}}}

    def close(self, result: CritiqueResult, drafts: list[AIMessage], final: AIMessage | None = None,
              *, visible: bool = False) -> tuple[AIMessage, dict[str, Any]]:
        """The final answer with the trace and the extra cost on it; the ledger charged with
        everything the loop spent. The extra cost is what the thread's messages do not already
        show: beyond the final answer (hidden) or beyond every visible draft, including the
        calls an inner middleware made for drafts that are not shown (LECO inside critique)."""
        final = final if final is not None else drafts[result["final"]]
        counted = drafts if visible else [final]
        own = zero_cost()
        for m in counted:
            um = m.usage_metadata or {}
            own = add_cost(own, {"calls": 1, "prompt_tokens": int(um.get("input_tokens", 0)),
                                 "completion_tokens": int(um.get("output_tokens", 0))})
        hidden = sum(_inner_calls(m, self.mw.name) for m in drafts if not any(m is c for c in counted))
        usage, revisions = result["usage"], len(drafts) - 1
        trace = {
            "mode": result["mode"], "visible": visible, "stop_reason": result["stop_reason"],
            "revisions": revisions, "corrections": revisions, "turns": result["turns"], "usage": usage,
            "calls": usage["calls"] - own["calls"] + hidden,
            "input_tokens": usage["prompt_tokens"] - own["prompt_tokens"],
            "output_tokens": usage["completion_tokens"] - own["completion_tokens"],
        }
        led = {**self.led, "run": None}
        charge_cost(led, usage, corrections=revisions)
        return with_cost(final, self.mw.name, trace), {KEY: {self.mw.name: led}}


def _inner_calls(message: AIMessage, mine: str) -> int:
    """Extra calls an inner middleware itemised on a reply (``sc_chains[<other>]["calls"]``)."""
    sc = (message.response_metadata or {}).get("sc_chains") or {}
    return sum(int(v.get("calls", 0)) for k, v in sc.items() if k != mine and isinstance(v, Mapping))


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

    def __init__(self, critic: Any = None, *, mode: str = _UNSET, visible: bool = _UNSET, review: bool = _UNSET,
                 max_corrections: int = _UNSET, max_completion_tokens: int | None = _UNSET, stream: str = _UNSET,
                 name: str = _UNSET, config: CritiqueReviseMiddlewareConfig | None = None, **options: Any) -> None:
        super().__init__()
        if mode in ("hidden", "visible"):
            raise InvalidRequestError("mode", mode, "mode is the critique method ('self-refine', 'rci', 'score'); "
                                      "pass visible=True to put critiques in the conversation")
        explicit = {"mode": mode, "visible": visible, "interrupt_before_revise": review,
                    "max_corrections": max_corrections, "max_completion_tokens": max_completion_tokens,
                    "stream": stream, "name": name}
        opts = {**options, **{k: v for k, v in explicit.items() if v is not _UNSET}}
        self.config = apply_overrides(config or CritiqueReviseMiddlewareConfig(), opts, "CritiqueReviseMiddleware")
        self.tools = []
        if critic is None and self.config.visible:
            raise InvalidRequestError(
                "critic", None, "visible mode needs a critic: pass critic=<the agent's chat model> for self-critique"
            )
        self.critic = make_critic(critic, self.config.critique, chat=lambda c: chat_model(c, "critic"))
        model = getattr(self.critic, "model", None)
        self.critic_model = model if isinstance(self.critic, (ModelCritic, JudgeCritic)) else None
        if self.config.visible or self.config.critique.interrupt_before_revise:
            self.__class__ = _CritiqueReviseSteps  # adds the after_model / before_model hooks

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
        return ExtendedModelResponse(model_response=ModelResponse(result=[final]), command=Command(update=update))

    def _hidden_pause(self, session: _Session, calls: _Calls, review: Review) -> Any:
        """Before a review: return the draft (checkpointed with the run) and let after_model and
        before_model ask the person; the model call resumes from the ledger."""
        draft = _with_id(first_ai(calls.raw[-1]))
        calls.raw[-1] = draft
        update = session.save(calls, review=dict(review.payload), draft_id=draft.id)
        return ExtendedModelResponse(model_response=ModelResponse(result=[draft]), command=Command(update=update))

    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Hidden mode: draft, critique and revise inside the model call (sync)."""
        hidden = self._hidden(request, handler)
        if hidden is None:
            return handler(request)
        try:
            return self._hidden_done(*hidden, hidden[0].drive(hidden[1]))
        except _Suspend as pause:
            return self._hidden_pause(*hidden, pause.args[0])

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Hidden mode: draft, critique and revise inside the model call (async)."""
        hidden = self._hidden(request, handler)
        if hidden is None:
            return await handler(request)
        try:
            return self._hidden_done(*hidden, await hidden[0].adrive(hidden[1]))
        except _Suspend as pause:
            return self._hidden_pause(*hidden, pause.args[0])


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
        final = drafts[result["final"]]
        if result["final"] != len(drafts) - 1:  # the last revision was an echo: answer again
            final = AIMessage(final.text, usage_metadata={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})
        msg, update = session.close(result, drafts, final, visible=True)
        return {"messages": [msg], **update}

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: CritiqueMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Visible mode: critique the answer; jump back to the model to revise (sync). Either
        mode: a pending review sends the agent to ``before_model``, which asks the person."""
        visible = self._visible(state)
        if not isinstance(visible, tuple):
            return visible
        try:
            return self._visible_done(*visible, visible[0].drive(visible[1]))
        except _Suspend as pause:
            return self._visible_pause(*visible, pause.args[0])

    @hook_config(can_jump_to=["model"])
    async def aafter_model(self, state: CritiqueMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Visible mode (async): see :meth:`after_model`."""
        visible = self._visible(state)
        if not isinstance(visible, tuple):
            return visible
        try:
            return self._visible_done(*visible, await visible[0].adrive(visible[1]))
        except _Suspend as pause:
            return self._visible_pause(*visible, pause.args[0])

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
        return {"messages": [msg], **update, "jump_to": "end"}

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: CritiqueMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Async :meth:`before_model` (a review resumes without any model call)."""
        return self.before_model(state, runtime)
