"""What the three middleware share: budgets, the streaming policy, cost accounting, one driver.

- **Budgets** live in each middleware's private state as a *ledger* keyed by the id of the
  latest user message, so they count per request, survive a checkpoint and an interrupt, and
  reset when the user sends a new message.
- **Streaming**: every extra model call runs inside :func:`call_scope`, which tags it
  ``sc_chains`` / ``sc_chains:<middleware>:<role>`` and, under ``stream="final"``, ``nostream``
  (LangGraph's ``stream_mode="messages"`` then drops its tokens).
- **Cost**: the extra calls and tokens are added to the final ``AIMessage``'s
  ``usage_metadata`` and itemised in ``response_metadata["sc_chains"][<middleware>]``.
- **One logic, two drivers**: each middleware writes its loop once as a generator that yields
  the model calls it needs; :func:`drive` (sync) and :func:`adrive` (async) run it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables.config import var_child_runnable_config

from adapters.errors import InvalidRequestError
from graphs.common import emit
from graphs.loop import adrive, drive  # noqa: F401  (the one driver, shared with the graphs)

__all__: list[str] = []  # internal helpers; the public names live in the middleware modules

StreamPolicy = Literal["final", "all"]
STREAM_POLICIES: tuple[str, ...] = ("final", "all")
NOSTREAM = "nostream"  # langgraph.constants.TAG_NOSTREAM

T = TypeVar("T")
R = TypeVar("R")
Loop = Generator[Any, Any, T]
"""A middleware loop: yields call specs, receives their results, returns its outcome."""


# -- validation ----------------------------------------------------------------------------------
def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """Raise :class:`InvalidRequestError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InvalidRequestError(name, value, f"use one of {', '.join(repr(c) for c in choices)}")


def check_int(name: str, value: Any, *, minimum: int, allow_none: bool = False) -> None:
    """Raise :class:`InvalidRequestError` unless ``value`` is an int >= ``minimum`` (or None)."""
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        extra = " or None (no limit)" if allow_none else ""
        raise InvalidRequestError(name, value, f"pass an integer >= {minimum}{extra}")


@dataclass(frozen=True)
class Budget:
    """How much correction one request (one user message) may buy, and how it streams."""

    max_corrections: int = 2
    """Most corrections (rethinks, revisions, critique turns) per request; 0 disables them."""
    token_budget: int | None = 4000
    """Most extra tokens (input + output of the middleware's own calls) per request; None: no limit."""
    stream: StreamPolicy = "final"
    """``"final"``: only the final answer reaches ``stream_mode="messages"`` (extra calls are
    tagged ``nostream``); ``"all"``: every call streams. Custom events go out either way."""

    def __post_init__(self) -> None:
        check_int("max_corrections", self.max_corrections, minimum=0)
        check_int("token_budget", self.token_budget, minimum=1, allow_none=True)
        check_choice("stream", self.stream, STREAM_POLICIES)


# -- the per-request ledger (private state) -------------------------------------------------------
def request_id(messages: Sequence[BaseMessage]) -> str:
    """The id of the latest user message (the current request); ``""`` when there is none."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, HumanMessage) and not is_ours(m):
            return m.id or f"human-{i}"
    return ""


def ledger(state: Mapping[str, Any], key: str) -> dict[str, Any]:
    """This request's ledger under ``state[key]`` (a fresh one when the request changed)."""
    rid = request_id(state.get("messages") or [])
    old = state.get(key) or {}
    if old.get("request") == rid:
        return dict(old)
    return {"request": rid, "corrections": 0, "calls": 0, "input_tokens": 0, "output_tokens": 0}


def spent_tokens(led: Mapping[str, Any]) -> int:
    return int(led.get("input_tokens", 0)) + int(led.get("output_tokens", 0))


def budget_stop(led: Mapping[str, Any], budget: Budget) -> str | None:
    """Why no further correction is allowed (``"max_corrections"`` / ``"token_budget"``), or None."""
    if led.get("corrections", 0) >= budget.max_corrections:
        return "max_corrections"
    if budget.token_budget is not None and spent_tokens(led) >= budget.token_budget:
        return "token_budget"
    return None


def usage(result: Any) -> tuple[int, int]:
    """``(input_tokens, output_tokens)`` of a message's ``usage_metadata``, a ``Generation``'s
    usage, or a list of either (0, 0 when absent)."""
    if isinstance(result, (list, tuple)):
        pairs = [usage(r) for r in result]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    u = getattr(result, "usage", None)
    if u is not None and hasattr(u, "prompt_tokens"):
        return int(u.prompt_tokens), int(u.completion_tokens)
    um = getattr(result, "usage_metadata", None) or {}
    return int(um.get("input_tokens", 0)), int(um.get("output_tokens", 0))


def charge(led: dict[str, Any], result: Any, *, corrections: int = 0) -> None:
    """Add the extra call(s) of ``result`` (and their tokens) to the ledger, in place."""
    i, o = usage(result)
    led["calls"] = led.get("calls", 0) + (len(result) if isinstance(result, (list, tuple)) else 1)
    led["input_tokens"] = led.get("input_tokens", 0) + i
    led["output_tokens"] = led.get("output_tokens", 0) + o
    led["corrections"] = led.get("corrections", 0) + corrections


def cost_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """What was spent between two ledger snapshots of the same request."""
    same = before.get("request") == after.get("request")
    return {
        k: int(after.get(k, 0)) - (int(before.get(k, 0)) if same else 0)
        for k in ("calls", "corrections", "input_tokens", "output_tokens")
    }


def swap_final(cost: dict[str, Any], draft: BaseMessage, final: BaseMessage) -> dict[str, Any]:
    """``cost`` (the extra calls' spend) corrected for a final answer that is not the draft: the
    draft becomes extra and the final's own tokens are not, so the final message's usage plus
    ``cost`` is exactly what the whole turn spent."""
    if final is draft:
        return cost
    (di, do), (fi, fo) = usage(draft), usage(final)
    return {**cost, "input_tokens": cost["input_tokens"] + di - fi, "output_tokens": cost["output_tokens"] + do - fo}


def with_cost(message: AIMessage, name: str, cost: Mapping[str, Any]) -> AIMessage:
    """``message`` with ``cost`` added to its usage and itemised under ``sc_chains[name]``."""
    meta = dict(message.response_metadata)
    sc = dict(meta.get("sc_chains") or {})
    sc[name] = {**(sc.get(name) or {}), **cost}
    meta["sc_chains"] = sc
    um = dict(message.usage_metadata or {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})
    um["input_tokens"] = int(um.get("input_tokens", 0)) + int(cost.get("input_tokens", 0))
    um["output_tokens"] = int(um.get("output_tokens", 0)) + int(cost.get("output_tokens", 0))
    um["total_tokens"] = um["input_tokens"] + um["output_tokens"]
    return message.model_copy(update={"response_metadata": meta, "usage_metadata": um})


# -- streaming -----------------------------------------------------------------------------------
@contextmanager
def call_scope(stream: str, middleware: str, role: str, *, final: bool = False) -> Iterator[None]:
    """Tag the model calls made inside: ``sc_chains:<middleware>:<role>``, plus ``nostream``
    under ``stream="final"`` unless the call is the final answer (``final=True``).

    Works for sync and async code alike (a context variable, reset on exit).
    """
    cfg = var_child_runnable_config.get() or {}
    tags = [*(cfg.get("tags") or []), "sc_chains", f"sc_chains:{middleware}:{role}"]
    if stream == "final" and not final:
        tags.append(NOSTREAM)
    token = var_child_runnable_config.set({**cfg, "tags": tags})
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


def event(name: str, **payload: Any) -> None:
    """A custom stream event (``stream_mode="custom"``); a no-op outside a graph run."""
    emit(name, **payload)


# -- driving a loop written once ---------------------------------------------------------------
@dataclass
class Call:
    """One model call a loop asks for: the agent's ``handler`` with ``request``, or ``model``
    (a chat model) with ``messages``. ``final``: its reply may be the answer the user sees."""

    role: str
    request: Any = None
    model: Any = None
    messages: Any = None
    final: bool = False
    adapter: Any = None
    """A ``LogprobModel``: ``messages`` is then one ``GenerationRequest`` or a list of them."""


def callers(
    stream: str, name: str, handler: Callable[[Any], Any] | None = None
) -> tuple[Callable[[Call], Any], Callable[[Call], Awaitable[Any]]]:
    """The sync and async executors of :class:`Call` specs (tagged by :func:`call_scope`)."""

    def call(spec: Call) -> Any:
        with call_scope(stream, name, spec.role, final=spec.final):
            if spec.request is not None:
                return handler(spec.request)  # type: ignore[misc]
            if spec.adapter is not None:
                if isinstance(spec.messages, list):
                    return spec.adapter.batch(spec.messages)
                return spec.adapter.generate(spec.messages)
            return spec.model.invoke(spec.messages)

    async def acall(spec: Call) -> Any:
        with call_scope(stream, name, spec.role, final=spec.final):
            if spec.request is not None:
                return await handler(spec.request)  # type: ignore[misc]
            if spec.adapter is not None:
                if isinstance(spec.messages, list):
                    return await spec.adapter.abatch(spec.messages)
                return await spec.adapter.agenerate(spec.messages)
            return await spec.model.ainvoke(spec.messages)

    return call, acall


def chat_model(model: Any, param: str) -> Any:
    """A LangChain chat model from ``model`` (a chat model, a logprob adapter, or a spec)."""
    from langchain_core.language_models import BaseChatModel

    if isinstance(model, BaseChatModel):
        return model
    if isinstance(model, str) or hasattr(model, "generate"):
        from sc_chains.chat_model import ChatLogprobModel

        return ChatLogprobModel(model)
    raise InvalidRequestError(
        param, model, "pass a LangChain chat model, a LogprobModel, or a spec like 'hf:default'"
    )


def text_of(message: BaseMessage) -> str:
    """A message's text (text parts joined)."""
    return message.text


OURS = "sc_chains"


def is_ours(message: BaseMessage) -> bool:
    """Whether a message was added by an sc-chains middleware (a critique turn...)."""
    return OURS in (message.additional_kwargs or {})


def mark(message: BaseMessage, role: str) -> BaseMessage:
    """``message`` marked as added by sc-chains (``additional_kwargs["sc_chains"] = role``)."""
    message.additional_kwargs = {**(message.additional_kwargs or {}), OURS: role}
    return message


BUDGET_KEYS = ("max_corrections", "token_budget", "stream")


def apply_overrides(config: T, overrides: dict[str, Any], owner: str) -> T:
    """``config`` with keyword ``overrides``; budget keys (``max_corrections``, ``token_budget``,
    ``stream``) go to ``config.budget``. Unknown names raise :class:`InvalidRequestError`."""
    names = {f.name for f in fields(config)}  # type: ignore[arg-type]
    known = names | set(BUDGET_KEYS)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidRequestError(unknown[0], overrides[unknown[0]], f"{owner} accepts {sorted(known)}")
    opts = dict(overrides)
    b = {k: opts.pop(k) for k in list(opts) if k in BUDGET_KEYS and k not in names}
    if b:
        opts["budget"] = replace(opts.get("budget", config.budget), **b)  # type: ignore[attr-defined]
    return replace(config, **opts) if opts else config  # type: ignore[type-var]
