"""``LecoMiddleware``: LECO (learning from correctness) around each model call of an agent.

Inside ``wrap_model_call``: the agent's model answers (the *draft*); a tool-calling turn, or a
structured-output turn, passes through untouched. A text answer's steps are scored from its
token logprobs (``graphs.leco.policy``: average, transition and divergence scores), the earlier
of the two least-confident steps is the cut point, and the model regenerates from the trusted
prefix (the chat fallback of ``graphs.leco.prompts``, with the agent's tools still bound). It
stops when two consecutive answers agree, at ``max_rethinks``, or when the request's budget is
spent; the final answer is the weighted vote. Only that answer leaves the model node.

Logprobs come from the reply's ``response_metadata`` (``adapters.langchain.parse_logprobs``:
OpenAI, Google, Ollama shapes), from the agent's model, or from ``logprob_model=`` (a chat model,
a ``LogprobModel`` or a spec) used for these turns instead. A model that gives none raises
:class:`~adapters.errors.LogprobsUnavailableError` on the first call, unless
``on_missing_logprobs="passthrough"``: then the draft goes out unchanged, marked so in
``response_metadata["sc_chains"]["leco"]`` and in a ``leco.passthrough`` stream event.
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
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.types import Command
from typing_extensions import NotRequired

from adapters.errors import InvalidRequestError, LogprobsUnavailableError
from adapters.langchain import LangChainModel, parse_logprobs
from graphs.answers import answers_equal, extract_answer
from graphs.leco.config import LecoConfig
from graphs.leco.policy import (
    Tok,
    cut_point,
    next_step_number,
    score_steps,
    should_stop,
    starts_with_label,
    to_tokens,
    weighted_vote,
)
from graphs.leco.prompts import CONTINUE_TEMPLATE
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

__all__ = ["LecoMiddleware", "LecoMiddlewareConfig"]

KEY = "sc_chains_leco"


class LecoState(AgentState):
    """The agent state plus LECO's private per-request ledger."""

    sc_chains_leco: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


@dataclass(frozen=True)
class LecoMiddlewareConfig:
    """How LECO scores, cuts and stops inside an agent."""

    leco: LecoConfig = LecoConfig(prob_mode="true")
    """Scoring and stopping (``k``, ``prob_mode``, ``transition_k``, ``tau``, ``weights``,
    ``skip_phrases``, ``max_rethinks`` per model call, ``first_weight``, ``system_prompt``).
    ``prob_mode="true"`` by default: chat APIs often return no alternatives."""
    budget: Budget = Budget(max_corrections=3, token_budget=4000)
    """Rethinks and extra tokens per request, and the stream policy."""
    on_missing_logprobs: Literal["error", "passthrough"] = "error"
    """A reply without logprobs: raise :class:`LogprobsUnavailableError`, or pass it through
    unchanged (visibly: ``response_metadata["sc_chains"]["leco"]["status"] == "passthrough"``)."""
    step_instruction: bool = True
    """Append LECO's step format (``leco.system_prompt``: ``Step N:`` lines, ``The answer is X``)
    to the agent's system message for the turns LECO manages."""

    def __post_init__(self) -> None:
        if not isinstance(self.leco, LecoConfig):
            raise InvalidRequestError("leco", self.leco, "pass a graphs.leco.LecoConfig(...)")
        if not isinstance(self.budget, Budget):
            raise InvalidRequestError("budget", self.budget, "pass a Budget(...)")
        check_choice("on_missing_logprobs", self.on_missing_logprobs, ("error", "passthrough"))
        if not isinstance(self.step_instruction, bool):
            raise InvalidRequestError("step_instruction", self.step_instruction, "pass True or False")


class LecoMiddleware(AgentMiddleware):
    """Rethink the least confident step of each final answer, from token logprobs.

    Example::

        agent = create_agent(model, tools=[add], middleware=[LecoMiddleware(max_corrections=2)])

    Args:
        config: a :class:`LecoMiddlewareConfig`; keyword ``overrides`` replace its fields
            (``max_corrections=``, ``token_budget=``, ``stream=`` go to its budget).
        logprob_model: run LECO's turns on this model instead of the agent's (a chat model, a
            ``LogprobModel`` or a spec such as ``"hf:default"``); ``None``: the agent's model.
    """

    state_schema = LecoState

    def __init__(
        self, config: LecoMiddlewareConfig | None = None, *, logprob_model: Any = None, **overrides: Any
    ) -> None:
        super().__init__()
        self.config = apply_overrides(config or LecoMiddlewareConfig(), overrides, "LecoMiddleware")
        self.tools = []
        self.logprob_model = None if logprob_model is None else chat_model(logprob_model, "logprob_model")
        adapter = getattr(self.logprob_model, "model", None)
        caps = getattr(adapter, "capabilities", None)
        if caps is not None and not caps.logprobs and self.config.on_missing_logprobs == "error":
            raise LogprobsUnavailableError(adapter.name, adapter.logprobs_hint)

    # -- the loop, once ---------------------------------------------------------------------
    def _prepare(self, request: ModelRequest) -> ModelRequest:
        over: dict[str, Any] = {}
        if self.logprob_model is not None:
            over["model"] = self.logprob_model
        if self.config.step_instruction:
            base = request.system_message.text if request.system_message else ""
            step = self.config.leco.system_prompt
            over["system_message"] = SystemMessage(f"{base}\n\n{step}".strip())
        return request.override(**over) if over else request

    def _missing(self, request: ModelRequest, response: ModelResponse) -> ModelResponse:
        model = request.model
        if self.config.on_missing_logprobs == "error":
            hint = LangChainModel(model).logprobs_hint if _is_chat(model) else "Use a model that returns logprobs."
            raise LogprobsUnavailableError(_name(model), hint)
        event("leco.passthrough", reason="no token logprobs in the reply", model=_name(model))
        msg = with_cost(_ai(response), "leco", {"status": "passthrough", "reason": "no token logprobs"})
        return ModelResponse(result=[msg], structured_response=response.structured_response)

    def _loop(self, request: ModelRequest) -> Loop[tuple[ModelResponse, dict[str, Any] | None]]:
        cfg, lc = self.config, self.config.leco
        req = self._prepare(request)
        draft = yield Call("draft", request=req)
        msg = _ai(draft)
        if msg is None or msg.tool_calls or draft.structured_response is not None or len(draft.result) != 1:
            return draft, None  # tool calls and structured output pass through untouched
        tokens = parse_logprobs(msg.response_metadata)
        text = text_of(msg)
        if tokens is None or (text and not tokens):
            return self._missing(req, draft), None
        led = ledger(request.state, KEY)
        before = dict(led)
        question = next((text_of(m) for m in reversed(request.messages) if m.type == "human" and not is_ours(m)), "")
        toks: list[Tok] = to_tokens(tokens)
        attempts = [{"answer": extract_answer(text), "cut_step": None, "text": text}]
        finals: list[AIMessage] = [msg]
        event("leco.draft", text=text, answer=attempts[0]["answer"])
        min_offset, stop = 0, None
        while True:
            answers = [a["answer"] for a in attempts]
            stop = should_stop(answers, len(attempts) - 1, lc.max_rethinks) or budget_stop(led, cfg.budget)
            if stop:
                break
            rows = score_steps(
                text, toks, prob_mode=lc.prob_mode, k=lc.k, transition_k=lc.transition_k, tau=lc.tau,
                weights=lc.weights, skip_phrases=lc.skip_phrases, min_offset=min_offset,
            )
            cut = cut_point([r["score"] if r["candidate"] else None for r in rows])
            if cut is None:
                stop = "no_candidate"
                break
            prefix = text[: rows[cut]["start"]]
            step = next_step_number(prefix)
            event("leco.cut", step_index=cut, step_text=rows[cut]["text"], prefix=prefix,
                  scores=[r["score"] for r in rows])
            ask = mark(HumanMessage(CONTINUE_TEMPLATE.format(question=question, prefix=prefix, step=step)), "leco")
            reply = yield Call("rethink", request=req.override(messages=[*req.messages, ask]))
            rmsg = _ai(reply)
            charge(led, rmsg, corrections=1)
            if rmsg is None or rmsg.tool_calls:
                return reply, led  # the model chose a tool instead: let the agent run it
            cont = text_of(rmsg)
            glue = "" if starts_with_label(cont) else f"Step {step}:" + ("" if cont[:1].isspace() else " ")
            ctoks = parse_logprobs(rmsg.response_metadata)
            if ctoks is None or (cont and not ctoks):
                stop = "no_logprobs"
                break
            text = prefix + glue + cont
            toks = [t for t in toks if t.offset + len(t.text) <= len(prefix)] + to_tokens(ctoks, len(prefix) + len(glue))
            min_offset = len(prefix)
            attempts.append({"answer": extract_answer(text), "cut_step": cut, "text": text})
            # a new message (prefix + continuation), so a new id: the stream shows it whole
            finals.append(rmsg.model_copy(update={"content": text, "id": f"{rmsg.id}-leco"}))
            event("leco.rethink", attempt=len(attempts) - 1, text=text, answer=attempts[-1]["answer"])
        winner, votes = weighted_vote([a["answer"] for a in attempts], lc.first_weight)
        chosen = max((i for i, a in enumerate(attempts) if answers_equal(a["answer"], winner)), default=len(attempts) - 1)
        trace = {
            "status": "kept" if answers_equal(attempts[0]["answer"], winner) else "corrected",
            "stop_reason": stop,
            "answer": winner,
            "votes": votes,
            "attempts": [{"answer": a["answer"], "cut_step": a["cut_step"]} for a in attempts],
            **swap_final(cost_delta(before, led), finals[0], finals[chosen]),
        }
        event("leco.done", **trace)
        final = with_cost(finals[chosen], "leco", trace)
        return ModelResponse(result=[final], structured_response=None), led

    @staticmethod
    def _finish(outcome: tuple[ModelResponse, dict[str, Any] | None]) -> ModelResponse | ExtendedModelResponse:
        response, led = outcome
        if led is None:
            return response
        return ExtendedModelResponse(model_response=response, command=Command(update={KEY: led}))

    # -- hooks ------------------------------------------------------------------------------
    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Run the LECO loop around the model call (sync)."""
        call, _ = callers(self.config.budget.stream, "leco", handler)
        return self._finish(drive(self._loop(request), call))

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse | ExtendedModelResponse:
        """Run the LECO loop around the model call (async)."""
        _, acall = callers(self.config.budget.stream, "leco", handler)
        return self._finish(await adrive(self._loop(request), acall))


def _ai(response: ModelResponse | None) -> AIMessage | None:
    for m in (response.result if response is not None else ()):
        if isinstance(m, AIMessage):
            return m
    return None


def _is_chat(model: Any) -> bool:
    from langchain_core.language_models import BaseChatModel

    return isinstance(model, BaseChatModel)


def _name(model: Any) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)
