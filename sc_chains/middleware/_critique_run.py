"""How one critique-revise run is carried inside an agent: the model calls of the loop (the
agent's handler for drafts, the critic for critiques), the recording that lets a paused run resume
without re-running a call, and the session that saves and closes a run in private state.
Used by :mod:`sc_chains.middleware.critique` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from langchain_core.messages import AIMessage, BaseMessage

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from graphs.critique.loop import CritiqueResult, critique_loop
from graphs.driver import model_requests
from graphs.loop import Emit, ModelCall, adrive, drive, reply_from_json, reply_to_json
from graphs.vocab import Allowance, add_cost, zero_cost
from sc_chains.middleware._calls import (
    ESTIMATED,
    counted_response,
    first_ai,
    gather_all,
    lc_message,
    prompt_of,
    sampling_settings,
    to_generation,
)
from sc_chains.middleware._shared import (
    call_scope,
    charge_cost,
    is_ours,
    ledger,
    text_of,
    with_cost,
)

if TYPE_CHECKING:
    from sc_chains.middleware.critique import CritiqueReviseMiddleware

KEY = "sc_chains_critique"

__all__: list[str] = []  # internal


class _Suspend(Exception):
    """The loop reached a request this hook cannot serve (a revision in visible mode, a review)."""


class _Recorder:
    """Feeds a loop the replies recorded in the ledger, then passes requests through, logging
    each new reply (JSON) and counting events, so the next hook can resume exactly there."""

    def __init__(self, loop: Any, run: Mapping[str, Any] | None) -> None:
        self.loop = loop
        self.replies: list[Any] = list((run or {}).get("replies") or [])
        """The replies recorded by earlier hooks (JSON)."""
        self.new: list[Any] = []
        """The replies received in this hook (turned into JSON only when the run is saved)."""
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
                    self.new.append(reply)
                req = self.loop.send(reply)
        except StopIteration as done:
            return done.value

    def state(self, **extra: Any) -> dict[str, Any]:
        replies = [*self.replies, *(reply_to_json(r) for r in self.new)]
        return {"replies": replies, "emitted": max(self.emitted, self.skip), **extra}


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
        self.estimated = 0
        """Replies that came without usage (counted locally: ``_calls.counted``)."""

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
        msgs = call.messages if call.messages is not None else [*self.host, *call.extra]
        return model, [m if isinstance(m, BaseMessage) else lc_message(m, self.mw.name) for m in msgs]

    def _record(self, raw: Any, prompt: Any) -> Any:
        raw, estimated = counted_response(raw, prompt)
        self.estimated += estimated
        self.raw.append(raw)
        result = getattr(raw, "result", None)
        structured = getattr(raw, "structured_response", None) is not None or (result is not None and len(result) != 1)
        return to_generation(first_ai(raw), structured=structured)

    def _streams(self, call: ModelCall) -> bool:
        """Whether the call streams live: under ``stream="final"`` none does (the final answer is
        known only after the loop: :meth:`CritiqueReviseMiddleware._replay` streams it once)."""
        return call.final and self.mw.budget.stream == "all"

    def _critique(self, reply: Any, arg: Any) -> Any:
        reply, estimated = counted_response(reply, lambda: arg)
        self.estimated += estimated
        return to_generation(reply)

    def call(self, call: ModelCall) -> Any:
        """One model call (sync)."""
        with call_scope(self.mw.budget.stream, self.mw.name, call.role, final=self._streams(call)):
            if call.target == "model":
                req = self._host(call)
                return self._record(req if isinstance(req, AIMessage) else self.handler(req), lambda: _prompt(req))
            model, arg = self._critic(call)
            if isinstance(model, LogprobModel):
                return model.generate(arg[0]) if len(arg) == 1 else model.batch(arg)
            replies = [self._critique(model.invoke(arg, **sampling_settings(call, i)), arg) for i in range(call.n)]
            return replies[0] if call.n == 1 else replies

    async def acall(self, call: ModelCall) -> Any:
        """One model call (async)."""
        with call_scope(self.mw.budget.stream, self.mw.name, call.role, final=self._streams(call)):
            if call.target == "model":
                req = self._host(call)
                return self._record(req if isinstance(req, AIMessage) else await self.handler(req), lambda: _prompt(req))
            model, arg = self._critic(call)
            if isinstance(model, LogprobModel):
                return await model.agenerate(arg[0]) if len(arg) == 1 else await model.abatch(arg)
            raws = await gather_all([model.ainvoke(arg, **sampling_settings(call, i)) for i in range(call.n)])
            replies = [self._critique(raw, arg) for raw in raws]
            return replies[0] if call.n == 1 else replies


def _prompt(request: Any) -> list[BaseMessage]:
    """What a draft answered: the request's messages (none for a reply given in visible mode)."""
    return [] if isinstance(request, AIMessage) else prompt_of(request)


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


Outcome = tuple[Optional[CritiqueResult], Any]
"""What a hook's run of the loop came to: ``(result, None)`` when the loop ended (``result`` is
``None`` when the draft called a tool), or ``(None, request)`` when it reached a request the hook
cannot serve (a review, or a revision in visible mode)."""


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
        loop = critique_loop(_question(self.messages), mw.config.critique, mw.critic, allowance=self.allowance,
                             gate=mw.gate)
        self.rec = _Recorder(loop, self.run)
        self.base = 0
        """Visible mode: how many messages precede the run's first draft (the critic's host)."""

    def drive(self, calls: _Calls) -> Outcome:
        """Run the loop on (sync); see :data:`Outcome`."""
        try:
            return drive(self.rec.run(), calls.call, on_review=_suspend), None
        except _Suspend as pause:
            return None, pause.args[0]

    async def adrive(self, calls: _Calls) -> Outcome:
        """Run the loop on (async); see :data:`Outcome`."""
        try:
            return await adrive(self.rec.run(), calls.acall, on_review=_suspend), None
        except _Suspend as pause:
            return None, pause.args[0]

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
        if final is None:
            final = drafts[result["final"]] if result["final"] < len(drafts) else replaced_message(result)
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
        estimated = sum(1 for m in drafts if (m.response_metadata or {}).get(ESTIMATED))
        if estimated:  # drafts whose usage the server did not send: counted locally
            trace[ESTIMATED] = estimated
        led = {**self.led, "run": None}
        charge_cost(led, usage, corrections=revisions)
        return with_cost(final, self.mw.name, trace), {KEY: {self.mw.name: led}}


def replaced_message(result: CritiqueResult) -> AIMessage:
    """The answer when the critic replaced the draft (``"replaced"``): no model call made it,
    so it carries zero usage (the trace's cost has every call)."""
    return AIMessage(result["response"], usage_metadata={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})


def _inner_calls(message: AIMessage, mine: str) -> int:
    """Extra calls an inner middleware itemised on a reply (``sc_chains[<other>]["calls"]``)."""
    sc = (message.response_metadata or {}).get("sc_chains") or {}
    return sum(int(v.get("calls", 0)) for k, v in sc.items() if k != mine and isinstance(v, Mapping))
