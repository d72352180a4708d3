"""``CritiqueReviseMiddleware``: critique the agent's final answer and revise it (Self-Refine).

Two modes:

- ``"hidden"`` (``wrap_model_call``): inside one model call, draft -> critique -> revise until the
  critic approves or the budget is spent; only the final answer leaves the model node.
- ``"visible"`` (``after_model``): the critique is added to the conversation as a user turn
  (marked ``additional_kwargs["sc_chains"] = "critique"``) and the agent jumps back to the
  model, so every draft and critique is a checkpointed step of the thread. Each revision is a
  visible message with its own usage; the final answer's usage adds the critic calls.

Tool-call messages are never critiqued. The critic is pluggable: ``None`` (the agent's own
model; hidden mode), a chat model, a ``LogprobModel`` or spec, a ``graphs.critique`` critic
(``VerifierCritic``, ``JudgeCritic``...) or a verifier function ``(question, answer, reference)
-> bool | (bool, feedback)``. Approval is parsed from ``Verdict: correct|incorrect``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    PrivateStateAttr,
    hook_config,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Command
from typing_extensions import NotRequired

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError
from graphs.critique.critics import Critique, VerifierCritic
from graphs.critique.policy import parse_verdict
from graphs.critique.prompts import SELF_REFINE_FEEDBACK, SELF_REFINE_REFINE
from sc_chains.middleware._shared import (
    Budget,
    Call,
    Loop,
    adrive,
    apply_overrides,
    budget_stop,
    callers,
    charge,
    chat_model,
    check_choice,
    cost_delta,
    drive,
    event,
    is_ours,
    ledger,
    mark,
    text_of,
    swap_final,
    with_cost,
)

__all__ = ["CritiqueReviseConfig", "CritiqueReviseMiddleware"]

KEY = "sc_chains_critique"


class CritiqueState(AgentState):
    """The agent state plus the critique loop's private per-request ledger."""

    sc_chains_critique: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


@dataclass(frozen=True)
class CritiqueReviseConfig:
    """How the critique-revise loop runs."""

    mode: Literal["hidden", "visible"] = "hidden"
    """``hidden``: inside the model call; ``visible``: critiques are conversation turns."""
    budget: Budget = Budget(max_corrections=2, token_budget=4000)
    """Revisions and extra tokens per request, and the stream policy."""
    feedback_prompt: str = SELF_REFINE_FEEDBACK
    """Asks a model critic for feedback ending ``Verdict: correct|incorrect``."""
    refine_prompt: str = SELF_REFINE_REFINE
    """Sent with the feedback to ask for a revision."""

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, ("hidden", "visible"))
        if not isinstance(self.budget, Budget):
            raise InvalidRequestError("budget", self.budget, "pass a Budget(...)")
        for name in ("feedback_prompt", "refine_prompt"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise InvalidRequestError(name, getattr(self, name), "pass a non-empty string")


class CritiqueReviseMiddleware(AgentMiddleware):
    """Critique each final answer and revise it until the critic approves (bounded).

    Example::

        agent = create_agent(model, tools=[add], middleware=[CritiqueReviseMiddleware(critic=judge)])

    Args:
        config: a :class:`CritiqueReviseConfig`; keyword ``overrides`` replace its fields
            (``max_corrections=``, ``token_budget=``, ``stream=`` go to its budget).
        critic: see the module docstring. Visible mode needs one (``after_model`` cannot see
            the agent's model): pass the agent's model itself for self-critique.
    """

    state_schema = CritiqueState

    def __init__(self, config: CritiqueReviseConfig | None = None, *, critic: Any = None, **overrides: Any) -> None:
        super().__init__()
        self.config = apply_overrides(config or CritiqueReviseConfig(), overrides, "CritiqueReviseMiddleware")
        self.tools = []
        if critic is None and self.config.mode == "visible":
            raise InvalidRequestError(
                "critic", None, "visible mode needs a critic: pass critic=<the agent's chat model> for self-critique"
            )
        self.critic = _resolve(critic)

    # -- the pieces, once ---------------------------------------------------------------------
    def _critique(self, conversation: list[BaseMessage], question: str, draft: str, model: Any, led: dict[str, Any]) -> Loop[Critique]:
        critic = self.critic if self.critic is not None else model
        if isinstance(critic, BaseChatModel):
            ask = [*conversation, AIMessage(draft), HumanMessage(self.config.feedback_prompt)]
            reply = yield Call("critique", model=critic, messages=ask)
            charge(led, reply)
            text = text_of(reply).strip()
            return Critique(text=text, approved=parse_verdict(text))
        prepared = critic.prepare(question, draft, None)
        result = None
        if prepared is not None:
            result = yield Call("critique", adapter=critic.model, messages=prepared)
            charge(led, result)
        return critic.read(question, draft, None, result)

    def _feedback(self, critique: Critique) -> HumanMessage:
        msg = HumanMessage(f"Feedback:\n{critique.text}\n\n{self.config.refine_prompt}")
        return mark(msg, "critique")  # type: ignore[return-value]

    def _hidden(self, request: ModelRequest) -> Loop[tuple[ModelResponse, dict[str, Any] | None]]:
        draft = yield Call("draft", request=request)
        cur = _ai(draft)
        if cur is None or cur.tool_calls or draft.structured_response is not None or len(draft.result) != 1:
            return draft, None
        led = ledger(request.state, KEY)
        first, before, turns, stop = cur, dict(led), 0, None
        question = _question(request.messages)
        while not (stop := budget_stop(led, self.config.budget)):
            crit = yield from self._critique(request.messages, question, text_of(cur), request.model, led)
            event("critique.critique", turn=turns, draft=text_of(cur), critique=crit.text, approved=crit.approved)
            if crit.approved:
                stop = "approved"
                break
            if budget_stop(led, self.config.budget):
                continue  # the critique itself spent the budget
            ask = [*request.messages, AIMessage(text_of(cur)), self._feedback(crit)]
            reply = yield Call("revise", request=request.override(messages=ask))
            charge(led, _ai(reply), corrections=1)
            turns += 1
            nxt = _ai(reply)
            if nxt is None or nxt.tool_calls:
                return reply, led  # the reviser chose a tool: let the agent run it
            cur = nxt
            event("critique.revision", turn=turns, text=text_of(cur))
        trace = {"mode": "hidden", "stop_reason": stop, "revisions": turns}
        trace.update(swap_final(cost_delta(before, led), first, cur))
        event("critique.done", **trace)
        return ModelResponse(result=[with_cost(cur, "critique", trace)]), led

    def _visible(self, state: dict[str, Any]) -> Loop[dict[str, Any] | None]:
        msgs = state.get("messages") or []
        last = msgs[-1] if msgs else None
        if not isinstance(last, AIMessage) or last.tool_calls or state.get("structured_response") is not None:
            return None
        led = ledger(state, KEY)
        stop = budget_stop(led, self.config.budget)
        if not stop:
            crit = yield from self._critique(msgs[:-1], _question(msgs), text_of(last), None, led)
            event("critique.critique", draft=text_of(last), critique=crit.text, approved=crit.approved)
            if not crit.approved:
                led["corrections"] += 1
                return {"messages": [self._feedback(crit)], "jump_to": "model", KEY: led}
            stop = "approved"
        trace = {"mode": "visible", "stop_reason": stop, "revisions": led["corrections"]}
        trace.update({k: led[k] for k in ("calls", "input_tokens", "output_tokens")})
        event("critique.done", **trace)
        return {"messages": [with_cost(last, "critique", trace)], KEY: led}

    # -- hooks ------------------------------------------------------------------------------
    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Hidden mode: draft, critique and revise inside the model call (sync)."""
        if self.config.mode != "hidden":
            return handler(request)
        call, _ = callers(self.config.budget.stream, "critique", handler)
        return _finish(drive(self._hidden(request), call))

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Hidden mode: draft, critique and revise inside the model call (async)."""
        if self.config.mode != "hidden":
            return await handler(request)
        _, acall = callers(self.config.budget.stream, "critique", handler)
        return _finish(await adrive(self._hidden(request), acall))

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: CritiqueState, runtime: Runtime) -> dict[str, Any] | None:
        """Visible mode: critique the final answer; jump back to the model to revise (sync)."""
        if self.config.mode != "visible":
            return None
        call, _ = callers(self.config.budget.stream, "critique")
        return drive(self._visible(dict(state)), call)

    @hook_config(can_jump_to=["model"])
    async def aafter_model(self, state: CritiqueState, runtime: Runtime) -> dict[str, Any] | None:
        """Visible mode: critique the final answer; jump back to the model to revise (async)."""
        if self.config.mode != "visible":
            return None
        _, acall = callers(self.config.budget.stream, "critique")
        return await adrive(self._visible(dict(state)), acall)


def _finish(outcome: tuple[ModelResponse, dict[str, Any] | None]) -> ModelResponse | ExtendedModelResponse:
    response, led = outcome
    if led is None:
        return response
    return ExtendedModelResponse(model_response=response, command=Command(update={KEY: led}))


def _resolve(critic: Any) -> Any:
    """A chat model, a ``graphs.critique`` critic, or ``None`` (the agent's model)."""
    if critic is None or isinstance(critic, BaseChatModel):
        return critic
    if hasattr(critic, "prepare") and hasattr(critic, "read"):
        return critic
    if isinstance(critic, (str, LogprobModel)):
        return chat_model(critic, "critic")
    if callable(critic):
        return VerifierCritic(critic)
    raise InvalidRequestError(
        "critic", critic, "pass None, a chat model, a LogprobModel or spec, a graphs.critique critic, or a verifier function"
    )


def _question(messages: list[BaseMessage]) -> str:
    return next((text_of(m) for m in reversed(messages) if m.type == "human" and not is_ours(m)), "")


def _ai(response: ModelResponse | None) -> AIMessage | None:
    return next((m for m in (response.result if response else ()) if isinstance(m, AIMessage)), None)
