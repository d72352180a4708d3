"""``LecoMiddleware``: LECO (learning from correctness) around each model call of an agent.

Inside ``wrap_model_call`` this drives LECO's one loop, :func:`graphs.leco.loop.leco_loop` (the
graph drives the same code): the agent's model answers (the *draft*); a tool-calling turn, or a
structured-output turn, passes through untouched. A text answer's steps are scored from its
token logprobs, the earlier of the two least-confident steps is the cut point, and the model
regenerates from the trusted prefix (the chat path: the prefix in a user message after the
conversation, with the agent's tools still bound). It stops when two consecutive answers agree,
at ``max_rethinks``, or when the request's budget is spent; the final answer is the weighted
vote. Only that answer leaves the model node.

Logprobs come from the reply's ``response_metadata`` (``adapters.langchain.parse_logprobs``:
OpenAI, Google, Ollama shapes), from the agent's model, or from ``logprob_model=`` (a chat model,
a ``LogprobModel`` or a spec) used for these turns instead. A model that gives none raises
:class:`~adapters.errors.LogprobsUnavailableError` on the first call, unless
``on_missing_logprobs="passthrough"``: then the draft goes out unchanged, marked so in
``response_metadata["sc_chains"]["leco"]`` and in a ``leco.passthrough`` stream event.
"""

from __future__ import annotations

from collections.abc import Callable
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
from langchain_core.messages import SystemMessage
from langgraph.types import Command
from typing_extensions import NotRequired

from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from adapters.langchain import ChatModelAdapter
from graphs.leco.config import LecoConfig
from graphs.leco.loop import LecoResult, attempt_summary, leco_loop
from graphs.leco.policy import looks_like_reasoning
from graphs.streaming import stream_text
from graphs.validate import Options, check_bool, check_choice, check_instance, check_str
from graphs.vocab import NO_LOGPROBS
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
    by_name,
    charge_cost,
    chat_model,
    event,
    given,
    is_ours,
    own_ledger,
    swap_final,
    text_of,
    with_cost,
)

__all__ = ["LecoMiddleware", "LecoMiddlewareConfig"]

KEY = "sc_chains_leco"


class LecoMiddlewareState(AgentState):
    """The agent state plus LECO's private per-request ledger."""

    sc_chains_leco: NotRequired[Annotated[dict[str, Any], PrivateStateAttr, by_name]]
    """One ledger per instance ``name``."""


@dataclass(frozen=True)
class LecoMiddlewareConfig(Options):
    """How LECO scores, cuts and stops inside an agent. Keyword overrides reach the nested
    configs: ``LecoMiddleware(max_rethinks=2, max_corrections=3)``."""

    budget: Budget = Budget(max_corrections=3, max_completion_tokens=4000)
    """Rethinks and generated tokens per request, and the stream policy."""
    leco: LecoConfig = LecoConfig(prob_mode="true")
    """Scoring and stopping (``k``, ``prob_mode``, ``transition_k``, ``tau``, ``weights``,
    ``skip_phrases``, ``max_rethinks`` per model call, ``first_weight``, ``system_prompt``).
    ``prob_mode="true"`` by default: chat APIs often return no alternatives. Sampling settings
    (``max_tokens``, ``temperature``, ``seed``) are the agent's model's own, except for sampled
    rethinks (``rethink_samples=n > 1``): each cut then makes ``n`` agent calls (concurrent under
    ``ainvoke``) with ``rethink_temperature`` and ``seed + i`` in the request's
    ``model_settings``; every sample votes, and a round of samples counts as one correction."""
    on_missing_logprobs: Literal["error", "passthrough"] = "error"
    """A reply without logprobs: raise :class:`LogprobsUnavailableError`, or pass it through
    unchanged (visibly: ``response_metadata["sc_chains"]["leco"]["status"] == "passthrough"``)."""
    step_instruction: bool = True
    """Append LECO's step format (``leco.system_prompt``: ``Step N:`` lines, ``The answer is X``)
    to the agent's system message for the turns LECO manages."""
    applies: Callable[[str], bool] = looks_like_reasoning
    """Which turns LECO manages, from the latest user message's text: ``False`` passes the model
    call through untouched (no step format, no rethink). Default
    :func:`graphs.leco.policy.looks_like_reasoning` ("how many...?" yes, "capital of France?"
    no); ``lambda q: True`` for every turn."""
    name: str = "leco"
    """The instance's name: its private ledger, its ``sc_chains`` metadata key and its call
    tags (two instances with different names coexist in one agent)."""

    def __post_init__(self) -> None:
        check_str("name", self.name, nonempty=True)
        check_instance("leco", self.leco, LecoConfig, "pass a graphs.leco.LecoConfig(...)")
        check_instance("budget", self.budget, Budget, "pass a Budget(...)")
        check_choice("on_missing_logprobs", self.on_missing_logprobs, ("error", "passthrough"))
        check_bool("step_instruction", self.step_instruction)
        if not callable(self.applies):
            raise InvalidRequestError("applies", self.applies, "pass a function (question: str) -> bool")


class LecoMiddleware(AgentMiddleware):
    """Rethink the least confident step of each final answer, from token logprobs.

    Example::

        agent = create_agent(model, tools=[add], middleware=[LecoMiddleware(max_corrections=2)])

    Args:
        max_rethinks, max_corrections, max_completion_tokens, stream, applies,
            on_missing_logprobs: the common options (see :class:`LecoMiddlewareConfig`, its
            ``leco`` and ``budget``); left out, the config's values stay.
        config: a :class:`LecoMiddlewareConfig`; keyword ``overrides`` replace its fields
            (``max_corrections=``, ``max_completion_tokens=``, ``stream=`` go to its budget;
            ``max_rethinks=``, ``k=``... to its ``leco`` config).
        name: this instance's name (default ``"leco"``): its private ledger, its
            ``response_metadata["sc_chains"]`` key and its call tags; two instances need two names.
        logprob_model: run LECO's turns on this model instead of the agent's (a chat model, a
            ``LogprobModel`` or a spec such as ``"hf:default"``); ``None``: the agent's model.
    """

    state_schema = LecoMiddlewareState

    def __init__(
        self,
        config: LecoMiddlewareConfig | None = None,
        *,
        logprob_model: Any = None,
        max_rethinks: int = UNSET,
        max_corrections: int = UNSET,
        max_completion_tokens: int | None = UNSET,
        stream: str = UNSET,
        applies: Callable[[str], bool] = UNSET,
        on_missing_logprobs: str = UNSET,
        name: str = UNSET,
        **overrides: Any,
    ) -> None:
        super().__init__()
        explicit = given(max_rethinks=max_rethinks, max_corrections=max_corrections, stream=stream,
                         max_completion_tokens=max_completion_tokens, applies=applies,
                         on_missing_logprobs=on_missing_logprobs, name=name)
        self.config = apply_overrides(config or LecoMiddlewareConfig(), {**overrides, **explicit}, "LecoMiddleware")
        self.tools = []
        self.logprob_model = None if logprob_model is None else chat_model(logprob_model, "logprob_model")
        adapter = getattr(self.logprob_model, "model", None)
        caps = getattr(adapter, "capabilities", None)
        if caps is not None and not caps.logprobs and self.config.on_missing_logprobs == "error":
            raise LogprobsUnavailableError(adapter.name, adapter.logprobs_hint)

    @property
    def name(self) -> str:
        """The instance name (``name=``): private ledger, ``sc_chains`` metadata key, call tags."""
        return self.config.name

    # -- driving the one loop ------------------------------------------------------------------
    def _prepare(self, request: ModelRequest) -> ModelRequest:
        over: dict[str, Any] = {}
        if self.logprob_model is not None:
            over["model"] = self.logprob_model
        if self.config.step_instruction:
            base = request.system_message.text if request.system_message else ""
            step = self.config.leco.system_prompt
            over["system_message"] = SystemMessage(f"{base}\n\n{step}".strip())
        settings = logprob_settings(over.get("model", request.model), request.model_settings or {})
        if settings != (request.model_settings or {}):
            over["model_settings"] = settings
        return request.override(**over) if over else request

    def _start(self, request: ModelRequest, handler: Any) -> tuple[AgentCalls, Any, dict[str, Any]]:
        req = self._prepare(request)
        calls = AgentCalls(self.name, self.config.budget.stream, request=req, handler=handler)
        led = own_ledger(request.state, KEY, self.name)
        loop = leco_loop(self.config.leco, path="chat", allowance=self.config.budget.allowance(led))
        return calls, loop, led

    def _finish(self, request: ModelRequest, calls: AgentCalls, result: LecoResult,
                led: dict[str, Any]) -> ModelResponse | ExtendedModelResponse:
        rethinks = len({a["cut"] for a in result["attempts"] if a["cut"] is not None})  # rounds
        charge_cost(led, result["cost"], corrections=rethinks)
        update = Command(update={KEY: {self.name: led}})
        if result["status"] == "passthrough":
            raw = calls.replies[result["chosen"]]
            if result["stop_reason"] == NO_LOGPROBS:
                raw = self._missing(calls.request.model, raw)
            return ExtendedModelResponse(model_response=raw, command=update)
        first, chosen = first_ai(calls.replies[0]), first_ai(calls.replies[result["chosen"]])
        assert first is not None and chosen is not None  # the loop passed tool calls through
        if result["chosen"]:  # a new message (prefix + continuation), so a new id: the stream shows it whole
            chosen = chosen.model_copy(update={"content": result["response"], "id": f"{chosen.id}-leco"})
        cost = result["cost"]
        extra = {"calls": cost["calls"] - 1, "corrections": rethinks,
                 "input_tokens": cost["prompt_tokens"] - int((first.usage_metadata or {}).get("input_tokens", 0)),
                 "output_tokens": cost["completion_tokens"] - int((first.usage_metadata or {}).get("output_tokens", 0))}
        trace = {
            "status": result["status"], "stop_reason": result["stop_reason"], "answer": result["answer"],
            "votes": result["vote"], "cost": cost,
            "attempts": attempt_summary(result),
            **swap_final(extra, first, chosen),
        }
        if calls.estimated:  # the server sent no usage for these calls: counted locally
            trace[ESTIMATED] = calls.estimated
        final = with_cost(chosen, self.name, trace)
        if self.config.budget.stream == "final":  # the vote's pick streams once chosen (drafts never)
            stream_text(final.text, graph=self.name, message_id=final.id)
        return ExtendedModelResponse(model_response=ModelResponse(result=[final], structured_response=None),
                                     command=update)

    def _missing(self, model: Any, response: ModelResponse) -> ModelResponse:
        if self.config.on_missing_logprobs == "error":
            hint = ChatModelAdapter(model).logprobs_hint if _is_chat(model) else "Use a model that returns logprobs."
            raise LogprobsUnavailableError(_name(model), hint)
        event("leco.passthrough", reason="no token logprobs in the reply", model=_name(model), middleware=self.name)
        msg = with_cost(first_ai(response), self.name, {"status": "passthrough", "reason": "no token logprobs"})  # type: ignore[arg-type]
        return ModelResponse(result=[msg], structured_response=response.structured_response)

    # -- hooks ------------------------------------------------------------------------------
    def _applies(self, request: ModelRequest) -> bool:
        question = next((text_of(m) for m in reversed(request.messages) if m.type == "human" and not is_ours(m)), "")
        verdict = self.config.applies(question)
        if not isinstance(verdict, bool):
            raise InvalidRequestError("applies", verdict, "the predicate must return True or False")
        return verdict

    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Run the LECO loop around the model call (sync)."""
        if not self._applies(request):
            return handler(request)
        calls, loop, led = self._start(request, handler)
        return self._finish(request, calls, drive(loop, calls.call), led)

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Run the LECO loop around the model call (async)."""
        if not self._applies(request):
            return await handler(request)
        calls, loop, led = self._start(request, handler)
        return self._finish(request, calls, await adrive(loop, calls.acall), led)


def logprob_settings(model: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (a request's ``model_settings``) plus what makes ``model`` return token
    logprobs, on the fields it declares (as :class:`~adapters.langchain.ChatModelAdapter`
    does): ``logprobs=True`` and ``top_logprobs >= 1`` for OpenAI-compatible models (llama.cpp
    returns no chat logprobs with ``top_logprobs=0``), ``response_logprobs=True`` for Google."""
    fields = set(getattr(type(model), "model_fields", {}) or {})
    if "response_logprobs" in fields:
        return {**settings, "response_logprobs": True}
    if "logprobs" in fields and "top_logprobs" in fields:
        top = settings.get("top_logprobs") or getattr(model, "top_logprobs", None) or 0
        return {**settings, "logprobs": True, "top_logprobs": max(1, int(top))}
    return settings


def _is_chat(model: Any) -> bool:
    from langchain_core.language_models import BaseChatModel

    return isinstance(model, BaseChatModel)


def _name(model: Any) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
