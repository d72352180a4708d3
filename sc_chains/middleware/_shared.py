"""What the three middleware share: budgets, the streaming policy, cost accounting, one driver.

- **Budgets** live in each middleware's private state as a *ledger* keyed by the id of the
  latest user message, so they count per request, survive a checkpoint and an interrupt, and
  reset when the user sends a new message.
- **Streaming**: every extra model call runs inside :func:`call_scope`, which tags it
  ``sc_chains`` / ``sc_chains:<middleware>:<role>`` and, under ``stream="final"``, ``nostream``
  (LangGraph's ``stream_mode="messages"`` then drops its tokens).
- **Cost**: the extra calls and tokens are added to the final ``AIMessage``'s
  ``usage_metadata`` and itemised in ``response_metadata["sc_chains"][<middleware>]``.
- **One loop per method**: each middleware drives its method's loop (``graphs/<method>/loop.py``,
  the code the graphs drive too); :mod:`sc_chains.middleware._calls` executes its requests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables.config import var_child_runnable_config

from adapters.errors import InvalidRequestError
from graphs.common import emit
from graphs.validate import Options, check_choice, check_int
from graphs.vocab import MAX_COMPLETION_TOKENS, MAX_CORRECTIONS, Allowance, Cost

__all__: list[str] = []  # internal helpers; the public names live in the middleware modules

StreamPolicy = Literal["final", "all"]
STREAM_POLICIES: tuple[str, ...] = ("final", "all")
NOSTREAM = "nostream"  # langgraph.constants.TAG_NOSTREAM

T = TypeVar("T")


@dataclass(frozen=True)
class Budget(Options):
    """How much correction one request (one user message) may buy, and how it streams."""

    max_corrections: int = 2
    """Most corrections (rethinks, revisions, critique turns) per request; 0 disables them."""
    max_completion_tokens: int | None = 4000
    """Most generated tokens (completion tokens only, as everywhere in sc-chains) of the
    middleware's runs per request; None: no limit."""
    stream: StreamPolicy = "final"
    """``"final"``: only the final answer reaches ``stream_mode="messages"`` (extra calls are
    tagged ``nostream``); ``"all"``: every call streams. Custom events go out either way."""

    def __post_init__(self) -> None:
        check_int("max_corrections", self.max_corrections, minimum=0)
        check_int("max_completion_tokens", self.max_completion_tokens, minimum=1, allow_none=True)
        check_choice("stream", self.stream, STREAM_POLICIES)

    def allowance(self, led: Mapping[str, Any]) -> Allowance:
        """What is left of this request's budget after ``led`` (a ledger)."""
        tokens = None
        if self.max_completion_tokens is not None:
            tokens = max(0, self.max_completion_tokens - int(led.get("output_tokens", 0)))
        return {"corrections": max(0, self.max_corrections - int(led.get("corrections", 0))),
                "completion_tokens": tokens}


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


def by_name(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    """Reducer of a middleware's private key: one entry per instance ``name`` (two instances of
    one middleware coexist in an agent, each with its own ledger)."""
    return {**(left or {}), **(right or {})}


def own_ledger(state: Mapping[str, Any], key: str, name: str) -> dict[str, Any]:
    """This request's ledger of the instance ``name`` (``state[key][name]``, see :func:`by_name`)."""
    mine = (state.get(key) or {}).get(name)
    return ledger({"messages": state.get("messages") or [], "led": mine}, "led")


def budget_stop(led: Mapping[str, Any], budget: Budget) -> str | None:
    """Why no further correction is allowed (``"max_corrections"`` /
    ``"max_completion_tokens"``), or None."""
    if led.get("corrections", 0) >= budget.max_corrections:
        return MAX_CORRECTIONS
    if budget.max_completion_tokens is not None and int(led.get("output_tokens", 0)) >= budget.max_completion_tokens:
        return MAX_COMPLETION_TOKENS
    return None


def charge_cost(led: dict[str, Any], cost: Cost, *, corrections: int = 0) -> None:
    """Add a loop's :class:`~graphs.vocab.Cost` to the ledger, in place."""
    led["calls"] = led.get("calls", 0) + cost["calls"]
    led["input_tokens"] = led.get("input_tokens", 0) + cost["prompt_tokens"]
    led["output_tokens"] = led.get("output_tokens", 0) + cost["completion_tokens"]
    led["corrections"] = led.get("corrections", 0) + corrections


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
    under ``stream="final"`` unless the call is the final answer (``final=True``); a call that is
    not the final answer also carries LangChain's internal-call metadata (``lc_source``, as
    ``SummarizationMiddleware`` does), so stream transformers keep it out of the conversation.

    Works for sync and async code alike (a context variable, reset on exit).
    """
    cfg = var_child_runnable_config.get() or {}
    tags = [*(cfg.get("tags") or []), "sc_chains", f"sc_chains:{middleware}:{role}"]
    metadata = dict(cfg.get("metadata") or {})
    if stream == "final" and not final:
        tags.append(NOSTREAM)
    if not final:
        metadata.update(lc_source=f"sc_chains:{middleware}", **_internal_call_metadata())
    token = var_child_runnable_config.set({**cfg, "tags": tags, "metadata": metadata})
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


@functools.lru_cache(maxsize=1)
def _internal_call_metadata() -> dict[str, Any]:
    try:
        from langchain.agents.middleware.internal_call_transformer import internal_call_metadata
    except ImportError:  # an older langchain: the lc_source key alone
        return {}
    return dict(internal_call_metadata())


def event(name: str, **payload: Any) -> None:
    """A custom stream event (``stream_mode="custom"``); a no-op outside a graph run."""
    emit(name, **payload)


OWN_SCHEMES = ("hf", "openai")
"""Spec schemes sc-chains resolves itself (``adapters.specs``); other strings go to LangChain's
``init_chat_model`` (``"anthropic:claude-..."``, ``"ollama:llama3"``...)."""


def chat_model(model: Any, param: str) -> Any:
    """A LangChain chat model from ``model``: a chat model, a logprob adapter, an sc-chains spec
    (``"hf:default"``, ``"openai:NAME"``) or any string ``init_chat_model`` accepts."""
    from langchain_core.language_models import BaseChatModel

    if isinstance(model, BaseChatModel):
        return model
    if isinstance(model, str) and ":" in model and model.partition(":")[0] not in OWN_SCHEMES:
        return _init_chat_model(model, param)
    if isinstance(model, str) or hasattr(model, "generate"):
        from sc_chains.chat_model import ChatLogprobModel

        return ChatLogprobModel(model)
    raise InvalidRequestError(
        param, model, "pass a LangChain chat model, a LogprobModel, or a spec like 'hf:default'"
    )


def _init_chat_model(spec: str, param: str) -> Any:
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(spec)
    except ImportError as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidRequestError(param, spec, f"install the provider's LangChain package ({why})") from None
    except ValueError as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidRequestError(
            param, spec, f"use 'hf:default', 'openai:NAME' or a 'provider:model' string init_chat_model knows ({why})"
        ) from None


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


UNSET: Any = type("Unset", (), {"__repr__": lambda self: "<default>", "__bool__": lambda self: False})()
"""Default of a middleware's explicit keyword options: not given (the config's value stays)."""


def given(**options: Any) -> dict[str, Any]:
    """The explicit keyword options actually passed (those not :data:`UNSET`)."""
    return {k: v for k, v in options.items() if v is not UNSET}


def apply_overrides(config: T, overrides: dict[str, Any], owner: str) -> T:
    """``config`` with keyword ``overrides`` (fields of the config or of its nested ``budget``
    and other configs; see :meth:`graphs.validate.Options.from_options`)."""
    try:
        return type(config).from_options(overrides, base=config)  # type: ignore[attr-defined,no-any-return]
    except InvalidRequestError as err:
        if err.fix.startswith(f"{type(config).__name__} accepts"):
            raise InvalidRequestError(err.param, err.value, f"{owner} accepts{err.fix.split('accepts', 1)[1]}") from None
        raise
