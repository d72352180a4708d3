"""``S2AMiddleware``: System 2 Attention before the model, as a drop-in ``create_agent`` middleware.

Around each model call (``wrap_model_call``), every user turn not yet rewritten (the latest only,
by default) is rewritten and read by S2A's one loop (:func:`graphs.s2a.loop.rewrite_loop`, which
the graph drives too: the prompt, the parse with its explicit fallbacks, the composed text). Only
what the model sees changes: the thread keeps what the user wrote, and every later model call of
the conversation sees the stored rewrite again (no second rewrite call). The original, the raw
rewrite, the parse status and the sentences removed stay in private state (``sc_chains_s2a``), go
out as a ``s2a.rewrite`` custom stream event, and the cost of the rewrite calls is added to the
final answer's ``usage_metadata`` after the agent finishes.
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
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.runtime import Runtime
from langgraph.types import Command
from typing_extensions import NotRequired

from graphs.loop import Loop
from graphs.s2a.config import S2AConfig
from graphs.s2a.loop import rewrite_loop
from graphs.validate import Options, check_bool, check_choice, check_instance
from graphs.vocab import MAX_COMPLETION_TOKENS
from sc_chains.middleware._shared import (
    UNSET,
    AgentCalls,
    Budget,
    adrive,
    apply_overrides,
    budget_stop,
    charge_cost,
    chat_model,
    drive,
    event,
    given,
    is_ours,
    ledger,
    text_of,
    with_cost,
)

__all__ = ["S2AMiddleware", "S2AMiddlewareConfig"]

KEY = "sc_chains_s2a"


class S2AMiddlewareState(AgentState):
    """The agent state plus S2A's private ledger (never in the agent's input or output)."""

    sc_chains_s2a: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


@dataclass(frozen=True)
class S2AMiddlewareConfig(Options):
    """What S2A rewrites and how. Keyword overrides reach the nested configs:
    ``S2AMiddleware(rewriter, rewrite="irrelevant", variant="single", stream="all")``."""

    s2a: S2AConfig = S2AConfig(answer_format="")
    """The rewrite prompt, the variant, the instruction and answer format appended to each
    rewritten turn (``answer_format`` is ``""`` here by default: the agent has its own)."""
    messages: Literal["latest", "all"] = "latest"
    """Rewrite only the latest user turn, or every user turn not rewritten yet."""
    tool_results: bool = False
    """Also rewrite tool results that follow the latest user turn."""
    budget: Budget = Budget(max_corrections=1_000_000, max_completion_tokens=None)
    """Generated tokens of the rewrite calls per request and the stream policy (rewrites are
    not counted as corrections); once spent, further turns go to the model unrewritten."""

    def __post_init__(self) -> None:
        check_instance("s2a", self.s2a, S2AConfig, "pass a graphs.s2a.S2AConfig(...)")
        check_choice("messages", self.messages, ("latest", "all"))
        check_bool("tool_results", self.tool_results)
        check_instance("budget", self.budget, Budget, "pass a Budget(...)")


class S2AMiddleware(AgentMiddleware):
    """Rewrite user turns with System 2 Attention before the model sees them.

    Example::

        agent = create_agent(model, tools=[add], middleware=[S2AMiddleware(rewriter)])

    Args:
        model: the rewriting model: a LangChain chat model (the agent's own model works), a
            ``LogprobModel`` or a spec like ``"hf:default"``.
        rewrite, variant, messages, tool_results, check, max_completion_tokens, stream: the
            common options (see :class:`S2AMiddlewareConfig`, its ``s2a`` and ``budget``); left
            out, the config's values stay.
        config: an :class:`S2AMiddlewareConfig`; keyword ``overrides`` replace its fields or
            those of its ``s2a`` config and ``budget`` (``stream=``, ``max_completion_tokens=``).
    """

    state_schema = S2AMiddlewareState

    def __init__(
        self,
        model: Any,
        config: S2AMiddlewareConfig | None = None,
        *,
        rewrite: Any = UNSET,
        variant: str = UNSET,
        messages: str = UNSET,
        tool_results: bool = UNSET,
        check: bool = UNSET,
        max_completion_tokens: int | None = UNSET,
        stream: str = UNSET,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.model = chat_model(model, "model")
        explicit = given(rewrite=rewrite, variant=variant, messages=messages, tool_results=tool_results,
                         check=check, max_completion_tokens=max_completion_tokens, stream=stream)
        self.config = apply_overrides(config or S2AMiddlewareConfig(), {**overrides, **explicit}, "S2AMiddleware")
        self.tools = []

    # -- driving the one loop ------------------------------------------------------------------
    def _targets(self, msgs: list[BaseMessage], done: set[str]) -> list[BaseMessage]:
        humans = [i for i, m in enumerate(msgs) if isinstance(m, HumanMessage) and not is_ours(m)]
        if not humans:
            return []
        picked = humans if self.config.messages == "all" else humans[-1:]
        out = [msgs[i] for i in picked]
        if self.config.tool_results:
            out += [m for m in msgs[humans[-1] + 1 :] if isinstance(m, ToolMessage)]
        return [m for m in out if m.id not in done and text_of(m).strip()]

    def _rewrite(self, request: ModelRequest) -> Loop[tuple[ModelRequest, dict[str, Any] | None]]:
        """Rewrite the turns not rewritten yet; the request the model sees (every rewritten turn
        replaced by its rewrite) and the private-state update. The thread is not changed."""
        cfg, state = self.config, request.state
        led = ledger(state, KEY)
        rewrites = dict((state.get(KEY) or {}).get("rewrites") or {})
        targets = self._targets(list(request.messages), set(rewrites))
        for msg in targets:
            if budget_stop({**led, "corrections": 0}, cfg.budget):
                event("s2a.skipped", message_id=msg.id, reason=MAX_COMPLETION_TOKENS)
                break
            kind = "tool" if isinstance(msg, ToolMessage) else "user"
            left = cfg.budget.allowance(led)["completion_tokens"]
            record, cost = yield from rewrite_loop(text_of(msg), cfg.s2a, max_tokens=left, message_id=msg.id, kind=kind)
            charge_cost(led, cost)
            rewrites[msg.id] = {**record, "kind": kind}
        seen = [m.model_copy(update={"content": rewrites[m.id]["prompt"]}) if m.id in rewrites else m
                for m in request.messages]
        update = {KEY: {**led, "rewrites": rewrites, "reported": False}} if targets else None
        return request.override(messages=seen), update

    def _calls(self) -> AgentCalls:
        return AgentCalls("s2a", self.config.budget.stream, models={"model": self.model})

    def _report(self, state: dict[str, Any]) -> dict[str, Any] | None:
        """Add this request's rewrite cost to the final answer, once."""
        priv = state.get(KEY) or {}
        led = ledger(state, KEY)
        if priv.get("reported", True) or led.get("request") != priv.get("request") or not led["calls"]:
            return None
        last = next((m for m in reversed(state["messages"]) if isinstance(m, AIMessage)), None)
        if last is None or last.tool_calls:
            return None
        cost = {k: led[k] for k in ("calls", "input_tokens", "output_tokens")}
        rewritten = [mid for mid, r in (priv.get("rewrites") or {}).items() if r.get("status")]
        cost["rewritten"] = len(rewritten)
        return {"messages": [with_cost(last, "s2a", cost)], KEY: {**priv, "reported": True}}

    # -- hooks ------------------------------------------------------------------------------
    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Rewrite the turns not rewritten yet, then call the model on the rewritten view (sync)."""
        seen, update = drive(self._rewrite(request), self._calls().call)
        return _with_update(handler(seen), update)

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Rewrite the turns not rewritten yet, then call the model on the rewritten view (async)."""
        seen, update = await adrive(self._rewrite(request), self._calls().acall)
        return _with_update(await handler(seen), update)

    def after_agent(self, state: S2AMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Add the rewrite calls' cost to the final answer's usage."""
        return self._report(dict(state))

    async def aafter_agent(self, state: S2AMiddlewareState, runtime: Runtime) -> dict[str, Any] | None:
        """Async :meth:`after_agent` (no I/O)."""
        return self._report(dict(state))


def _with_update(response: Any, update: dict[str, Any] | None) -> Any:
    """The model's response, with S2A's private-state update when it rewrote something."""
    return response if update is None else ExtendedModelResponse(model_response=response, command=Command(update=update))
