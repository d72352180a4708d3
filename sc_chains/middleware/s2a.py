"""``S2AMiddleware``: System 2 Attention before the model, as a drop-in ``create_agent`` middleware.

Before each model call, every user turn not yet rewritten (the latest only, by default) is
rewritten with the S2A prompt (``graphs.s2a.prompts``) and parsed (``graphs.s2a.parse``, with its
explicit fallbacks); the message keeps its id, so the conversation now holds the rewrite and the
model sees it. The original, the raw rewrite, the parse status and the sentences removed stay in
private state (``sc_chains_s2a``), go out as a ``s2a.rewrite`` custom stream event, and the cost
of the rewrite calls is added to the final answer's ``usage_metadata`` after the agent finishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langchain.agents.middleware.types import AgentMiddleware, AgentState, PrivateStateAttr
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.runtime import Runtime
from typing_extensions import NotRequired

from adapters.errors import InvalidRequestError
from graphs.s2a.parse import parse_rewrite, removed_sentences
from graphs.s2a.prompts import DEFAULT_INSTRUCTION, RewritePrompt, build_answer_prompt, builtin_rewrite
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
    drive,
    event,
    is_ours,
    ledger,
    text_of,
    with_cost,
)

__all__ = ["S2AMiddleware", "S2AMiddlewareConfig"]

KEY = "sc_chains_s2a"


class S2AState(AgentState):
    """The agent state plus S2A's private ledger (never in the agent's input or output)."""

    sc_chains_s2a: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


@dataclass(frozen=True)
class S2AMiddlewareConfig:
    """What S2A rewrites and how."""

    rewrite: str | RewritePrompt = "opinion"
    """``"opinion"``, ``"irrelevant"`` or a custom :class:`~graphs.s2a.prompts.RewritePrompt`."""
    variant: Literal["split", "single", "keep_original"] = "split"
    """``split``: context and question; ``single``: one section; ``keep_original``: the model
    also sees the original, marked as possibly biased."""
    messages: Literal["latest", "all"] = "latest"
    """Rewrite only the latest user turn, or every user turn not rewritten yet."""
    tool_results: bool = False
    """Also rewrite tool results that follow the latest user turn."""
    instruction: str = DEFAULT_INSTRUCTION
    """Appended to each rewritten turn ("" for the paper's no-instruction variant)."""
    answer_format: str = ""
    """Appended after the instruction (e.g. 'End with "The answer is X."'); "" for none."""
    budget: Budget = Budget(max_corrections=1_000_000, token_budget=None)
    """Token budget of the rewrite calls and the stream policy (rewrites are not counted as
    corrections); once spent, further turns go to the model unrewritten."""

    def __post_init__(self) -> None:
        check_choice("variant", self.variant, ("split", "single", "keep_original"))
        check_choice("messages", self.messages, ("latest", "all"))
        if not isinstance(self.tool_results, bool):
            raise InvalidRequestError("tool_results", self.tool_results, "pass True or False")
        if isinstance(self.rewrite, RewritePrompt):
            if self.rewrite.single != (self.variant == "single"):
                raise InvalidRequestError(
                    "rewrite", self.rewrite.name, f"variant {self.variant!r} needs a prompt with "
                    + ("one label" if self.variant == "single" else "two labels")
                )
        else:
            builtin_rewrite(self.rewrite, single=self.variant == "single")  # validates the name
        for name in ("instruction", "answer_format"):
            if not isinstance(getattr(self, name), str):
                raise InvalidRequestError(name, getattr(self, name), "pass a string ('' for none)")
        if not isinstance(self.budget, Budget):
            raise InvalidRequestError("budget", self.budget, "pass a Budget(...)")

    @property
    def prompt(self) -> RewritePrompt:
        """The rewrite prompt in use."""
        if isinstance(self.rewrite, RewritePrompt):
            return self.rewrite
        return builtin_rewrite(self.rewrite, single=self.variant == "single")


class S2AMiddleware(AgentMiddleware):
    """Rewrite user turns with System 2 Attention before the model sees them.

    Example::

        agent = create_agent(model, tools=[add], middleware=[S2AMiddleware(rewriter)])

    Args:
        model: the rewriting model: a LangChain chat model (the agent's own model works), a
            ``LogprobModel`` or a spec like ``"hf:default"``.
        config: an :class:`S2AMiddlewareConfig`; keyword ``overrides`` replace its fields
            (``stream=``, ``token_budget=`` go to its budget).
    """

    state_schema = S2AState

    def __init__(self, model: Any, config: S2AMiddlewareConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.model = chat_model(model, "model")
        self.config = apply_overrides(config or S2AMiddlewareConfig(), overrides, "S2AMiddleware")
        self.tools = []

    # -- the logic, once --------------------------------------------------------------------
    def _targets(self, state: dict[str, Any], done: set[str]) -> list[BaseMessage]:
        msgs = state.get("messages") or []
        humans = [i for i, m in enumerate(msgs) if isinstance(m, HumanMessage) and not is_ours(m)]
        if not humans:
            return []
        picked = humans if self.config.messages == "all" else humans[-1:]
        out = [msgs[i] for i in picked]
        if self.config.tool_results:
            out += [m for m in msgs[humans[-1] + 1 :] if isinstance(m, ToolMessage)]
        return [m for m in out if m.id not in done and text_of(m).strip()]

    def _rewrite(self, state: dict[str, Any]) -> Loop[dict[str, Any] | None]:
        cfg = self.config
        led = ledger(state, KEY)
        rewrites = dict((state.get(KEY) or {}).get("rewrites") or {})
        targets = self._targets(state, set(rewrites))
        updated: list[BaseMessage] = []
        for msg in targets:
            if budget_stop({**led, "corrections": 0}, cfg.budget):
                event("s2a.skipped", message_id=msg.id, reason="token_budget")
                break
            original = text_of(msg)
            reply = yield Call("rewrite", model=self.model, messages=[HumanMessage(cfg.prompt.render(original))])
            charge(led, reply)
            raw = text_of(reply)
            parsed = parse_rewrite(
                raw, original, context_label=cfg.prompt.context_label, question_label=cfg.prompt.question_label
            )
            content = build_answer_prompt(
                context=parsed.context,
                query=parsed.query,
                original=original if cfg.variant == "keep_original" else None,
                instruction=cfg.instruction,
                answer_format=cfg.answer_format,
            )
            record = {
                "original": original,
                "rewrite": content,
                "raw": raw,
                "status": parsed.status,
                "reason": parsed.reason,
                "removed": removed_sentences(original, f"{parsed.context}\n{parsed.query}"),
                "kind": "tool" if isinstance(msg, ToolMessage) else "user",
            }
            rewrites[msg.id] = record
            updated.append(msg.model_copy(update={"content": content}))
            event("s2a.rewrite", message_id=msg.id, **record)
        if not targets:
            return None
        return {"messages": updated, KEY: {**led, "rewrites": rewrites, "reported": False}}

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
    def before_model(self, state: S2AState, runtime: Runtime) -> dict[str, Any] | None:
        """Rewrite the user turns not yet rewritten (sync)."""
        call, _ = callers(self.config.budget.stream, "s2a")
        return drive(self._rewrite(dict(state)), call)

    async def abefore_model(self, state: S2AState, runtime: Runtime) -> dict[str, Any] | None:
        """Rewrite the user turns not yet rewritten (async)."""
        _, acall = callers(self.config.budget.stream, "s2a")
        return await adrive(self._rewrite(dict(state)), acall)

    def after_agent(self, state: S2AState, runtime: Runtime) -> dict[str, Any] | None:
        """Add the rewrite calls' cost to the final answer's usage."""
        return self._report(dict(state))

    async def aafter_agent(self, state: S2AState, runtime: Runtime) -> dict[str, Any] | None:
        """Async :meth:`after_agent` (no I/O)."""
        return self._report(dict(state))
