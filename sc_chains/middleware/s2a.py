"""``S2AMiddleware``: System 2 Attention before the model, as a drop-in ``create_agent`` middleware.

Around each model call (``wrap_model_call``), every user turn not yet rewritten (the latest only,
by default) is rewritten and read by S2A's one loop (:func:`graphs.s2a.loop.rewrite_loop`, which
the graph drives too: the prompt, the parse with its explicit fallbacks, the composed text). Only
what the model sees changes: the thread keeps what the user wrote, and every later model call of
the conversation sees the stored rewrite again (no second rewrite call). The original, the raw
rewrite, the parse status and the sentences removed stay in private state (``sc_chains_s2a``), go
out as a ``s2a.rewrite`` custom stream event, and the cost of the rewrite calls is added to the
request's final answer's ``usage_metadata`` (its first model answer without tool calls; no
extra graph node).

With ``mode="filter"`` the same loop scores each context sentence of the turn instead (one
one-token call each, to the rewriting model bound to greedy, one token and top logprobs where it
declares those fields: :func:`relevance_model`; all of a turn's calls at once, through the chat
model's ``batch``/``abatch``) and drops the lowest-scoring one; every score is in the record
(``scores``) and the ``s2a.filter`` event. With ``filter_signal="question"`` the filter reads no
reply at all: the rewriting model scores the question after the turn's context with each sentence
left out (one :class:`~graphs.loop.Score` request), which needs a
:class:`~sc_chains.chat_model.ChatLogprobModel` over a model that scores text (a local ``hf:``
model); any other chat model raises :class:`~adapters.errors.ScoringUnavailableError` with the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from langgraph.types import Command
from typing_extensions import NotRequired

from graphs.loop import Loop
from graphs.s2a.config import S2AConfig
from graphs.s2a.filter import RELEVANCE_TOP_LOGPROBS
from graphs.s2a.loop import RELEVANCE_TARGET, rewrite_loop
from graphs.validate import Options, check_bool, check_choice, check_instance, check_str
from graphs.vocab import MAX_COMPLETION_TOKENS
from sc_chains.middleware._calls import (
    ESTIMATED,
    AgentCalls,
    adrive,
    drive,
    first_ai,
)
from sc_chains.middleware._shared import (
    UNSET,
    Budget,
    apply_overrides,
    budget_stop,
    by_name,
    charge_cost,
    chat_model,
    event,
    given,
    is_ours,
    own_ledger,
    request_id,
    text_of,
    with_cost,
)

__all__ = ["S2AMiddleware", "S2AMiddlewareConfig", "relevance_model"]

KEY = "sc_chains_s2a"


class S2AMiddlewareState(AgentState):
    """The agent state plus S2A's private ledger (never in the agent's input or output)."""

    sc_chains_s2a: NotRequired[Annotated[dict[str, Any], PrivateStateAttr, by_name]]
    """One record per instance ``name``: the request's ledger and the rewrites."""


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
    name: str = "s2a"
    """The instance's name: its private record, its ``sc_chains`` metadata key and its call
    tags (two instances with different names coexist in one agent)."""

    def __post_init__(self) -> None:
        check_str("name", self.name, nonempty=True)
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
        rewrite, variant, mode, few_shot, messages, tool_results, check, max_completion_tokens,
            stream: the common options (see :class:`S2AMiddlewareConfig`, its ``s2a`` and ``budget``); left
            out, the config's values stay.
        name: this instance's name (default ``"s2a"``): its private record, its
            ``response_metadata["sc_chains"]`` key and its call tags; two instances need two names.
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
        mode: str = UNSET,
        few_shot: bool = UNSET,
        messages: str = UNSET,
        tool_results: bool = UNSET,
        check: bool = UNSET,
        max_completion_tokens: int | None = UNSET,
        stream: str = UNSET,
        name: str = UNSET,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.model = chat_model(model, "model")
        explicit = given(rewrite=rewrite, variant=variant, mode=mode, few_shot=few_shot, messages=messages,
                         tool_results=tool_results, check=check, max_completion_tokens=max_completion_tokens,
                         stream=stream, name=name)
        self.config = apply_overrides(config or S2AMiddlewareConfig(), {**overrides, **explicit}, "S2AMiddleware")
        self.relevance = relevance_model(self.model)
        self.tools = []

    @property
    def name(self) -> str:
        """The instance name (``name=``): private record, ``sc_chains`` metadata key, call tags."""
        return self.config.name

    def _private(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return (state.get(KEY) or {}).get(self.name) or {}

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
        led = own_ledger(state, KEY, self.name)
        rewrites = dict(self._private(state).get("rewrites") or {})
        targets = self._targets(list(request.messages), set(rewrites))
        for msg in targets:
            if budget_stop({**led, "corrections": 0}, cfg.budget):
                event("s2a.skipped", message_id=msg.id, reason=MAX_COMPLETION_TOKENS, middleware=self.name)
                break
            kind = "tool" if isinstance(msg, ToolMessage) else "user"
            left = cfg.budget.allowance(led)["completion_tokens"]
            record, cost = yield from rewrite_loop(text_of(msg), cfg.s2a, max_tokens=left, message_id=msg.id, kind=kind)
            charge_cost(led, cost)
            rewrites[msg.id] = {**record, "kind": kind}
        seen = [m.model_copy(update={"content": rewrites[m.id]["prompt"]}) if m.id in rewrites else m
                for m in request.messages]
        update = {KEY: {self.name: {**led, "rewrites": rewrites, "reported": False}}} if targets else None
        return request.override(messages=seen), update

    def _calls(self) -> AgentCalls:
        return AgentCalls(self.name, self.config.budget.stream,
                          models={"model": self.model, RELEVANCE_TARGET: self.relevance})

    def _count(self, update: dict[str, Any] | None, calls: AgentCalls) -> dict[str, Any] | None:
        """The update, with the rewrite calls whose usage was counted locally (no usage sent)."""
        if update is None or not calls.estimated:
            return update
        mine = update[KEY][self.name]
        return {KEY: {self.name: {**mine, ESTIMATED: int(mine.get(ESTIMATED, 0)) + calls.estimated}}}

    def _settle(self, request: ModelRequest, response: Any, update: dict[str, Any] | None) -> Any:
        """The model's response with S2A's private-state update; a final answer (no tool call)
        also gets this request's rewrite cost added, once (no extra graph node: the cost goes on
        the request's first answer without tool calls)."""
        priv = update[KEY][self.name] if update else self._private(request.state)
        msg = first_ai(response)
        if (priv.get("reported", True) or not priv.get("calls") or msg is None or msg.tool_calls
                or getattr(response, "structured_response", None) is not None
                or priv.get("request") != request_id(request.messages)):
            return _with_update(response, update)
        cost = {k: priv[k] for k in ("calls", "input_tokens", "output_tokens")}
        cost["rewritten"] = sum(1 for r in (priv.get("rewrites") or {}).values() if r.get("status"))
        if priv.get(ESTIMATED):
            cost[ESTIMATED] = priv[ESTIMATED]
        final = with_cost(msg, self.name, cost)
        if isinstance(response, AIMessage):
            response = ModelResponse(result=[final])
        else:
            response = ModelResponse(result=[final if m is msg else m for m in response.result],
                                     structured_response=response.structured_response)
        return _with_update(response, {KEY: {self.name: {**priv, "reported": True}}})

    # -- hooks ------------------------------------------------------------------------------
    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Rewrite the turns not rewritten yet, then call the model on the rewritten view (sync)."""
        calls = self._calls()
        seen, update = drive(self._rewrite(request), calls.call)
        return self._settle(request, handler(seen), self._count(update, calls))

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Rewrite the turns not rewritten yet, then call the model on the rewritten view (async)."""
        calls = self._calls()
        seen, update = await adrive(self._rewrite(request), calls.acall)
        return self._settle(request, await handler(seen), self._count(update, calls))


def relevance_model(model: Any) -> Any:
    """``model`` bound for the filter's relevance calls, on the fields it declares: greedy, one
    token, and the first token's top alternatives (``top_logprobs``, plus ``logprobs=True`` or
    Google's ``response_logprobs=True``). A model declaring none of these is used as is: its
    chosen token alone then decides each score (``Yes`` 1, ``No`` 0), a coarser filter."""
    fields = set(getattr(type(model), "model_fields", {}) or {})
    kw: dict[str, Any] = {}
    if fields & {"logprobs", "top_logprobs"}:
        kw["top_logprobs"] = RELEVANCE_TOP_LOGPROBS
    if "logprobs" in fields:
        kw["logprobs"] = True
    if "response_logprobs" in fields:
        kw["response_logprobs"] = True
    kw.update({k: v for k, v in (("max_tokens", 1), ("temperature", 0.0)) if k in fields})
    return model.bind(**kw) if kw else model


def _with_update(response: Any, update: dict[str, Any] | None) -> Any:
    """The model's response, with S2A's private-state update when it rewrote something."""
    return response if update is None else ExtendedModelResponse(model_response=response, command=Command(update=update))
