"""The sans-I/O loop protocol: each correction method is written once, as a generator.

A method's loop (``graphs/<method>/loop.py``) is a generator that *yields requests* and
*receives replies*, like httpx's auth flows; it never touches a model, LangGraph or an agent::

    def my_loop(cfg) -> Loop[MyResult]:
        draft = yield ModelCall("draft", extra=(), max_tokens=cfg.max_tokens, final=True)
        yield Emit("critique.draft", {"text": draft.text})          # -> receives None
        decision = yield Review({"draft": draft.text})               # -> the person's decision
        return {"answer": draft.text, ...}                           # the typed result record

Request kinds:

- :class:`ModelCall` -> receives an :class:`adapters.types.Generation` (``n > 1``: a list).
  ``extra`` messages are appended to the *host conversation* (the graph's ``[system, user]``
  built from the question; the agent's own messages in the middleware); ``messages`` instead
  makes a side call on exactly those messages (e.g. S2A's rewrite, an external critic).
  A reply whose ``finish_reason`` is ``"tool_calls"`` means the model chose a tool (middleware
  only): loops return at once and the driver hands that reply to the agent.
- :class:`Batch` -> many independent side calls at once (``calls``, at most :data:`MAX_BATCH`,
  one ``target`` and ``role``, each ``n == 1``, none ``final``); receives a *list* of
  :class:`~adapters.types.Generation`, one per call, in the calls' order. Drivers may run the
  calls concurrently or as one batched forward pass (that is the point: S2A's filter asks one
  relevance question per sentence), or one after another (:func:`one_by_one`); a loop cannot
  tell the difference, so its record is the same either way (a local model's batched rows: up
  to floating-point noise, and its usage may count other tokens as read from a KV cache).
- :class:`Score` -> the model scores given texts instead of generating (``pairs`` of prefix and
  continuation, raw text); receives a *list* of :class:`~adapters.types.Generation`, one per
  pair, whose ``tokens`` carry the continuation's logprobs (:meth:`adapters.base.LogprobModel.score_texts`;
  S2A's question-likelihood filter). Models that cannot score raise
  :class:`~adapters.errors.ScoringUnavailableError` (chat models in the middleware always do).
- :class:`Emit` -> a custom stream event ``{"event": name, **payload}`` (``stream_mode="custom"``);
  receives ``None``.
- :class:`Review` -> a human-review pause (LangGraph ``interrupt(payload)``); receives the
  person's decision (the loop validates it).

Drivers (all thin):

- :func:`drive` / :func:`adrive`: run a loop to the end, sending each :class:`ModelCall` and
  :class:`Batch` to an executor (sync / async; a batch's reply is checked to be one list entry per
  call), each :class:`Emit` to :func:`graphs.common.emit`, each
  :class:`Review` to ``langgraph.types.interrupt``. The middleware uses these (its executor calls
  the agent's ``handler`` with ``request.override(messages=[*request.messages, *extra])``; a
  :class:`Batch` goes to its chat model's ``batch``/``abatch``); :func:`graphs.driver.execute`
  is the executor of one ``LogprobModel`` outside a graph.
- :func:`build_loop_graph`: a LangGraph graph ``START -> start -> step* -> END``: ``start``
  validates the input and resets the run (a new question on a thread starts a fresh run); each
  ``step`` *replays* the loop with the replies recorded in state (``replies``; events already
  sent are not sent again) and executes the next request: one model call, one batch (through
  the target model's ``batch``/``abatch``: real batched rows on the local adapter, bounded
  concurrent requests on servers) or one review per super-step, so every call is checkpointed
  and a review resumes without re-running the draft.
  When the loop returns, ``finish(state, result)`` writes the output keys.

Replies are stored as JSON (:func:`reply_to_json` / :func:`reply_from_json`), so any
checkpointer works. A loop must be deterministic given its replies (no clocks, no randomness
outside the model): that is what makes replay and the cross-driver equivalence tests hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, Union

from adapters.errors import InvalidRequestError
from adapters.types import Generation, Message, TokenLogprob, TopLogprob, Usage
from graphs.common import emit

__all__ = [
    "Batch",
    "Emit",
    "MAX_BATCH",
    "Loop",
    "ModelCall",
    "Request",
    "Review",
    "Score",
    "TOOL_CALLS",
    "adrive",
    "drive",
    "one_by_one",
    "reply_from_json",
    "reply_to_json",
]

T = TypeVar("T")

TOOL_CALLS = "tool_calls"
"""``Generation.finish_reason`` of a reply that called a tool instead of answering."""


@dataclass(frozen=True)
class ModelCall:
    """Ask the model for a reply (see the module docstring for ``extra`` vs ``messages``)."""

    role: str
    """What the call is for: ``"draft"``, ``"rethink"``, ``"rewrite"``, ``"answer"``,
    ``"critique"``, ``"revise"``... (tags the call: ``sc_chains:<method>:<role>``)."""
    extra: tuple[Message, ...] = ()
    """Messages appended to the host conversation for this call."""
    messages: tuple[Message, ...] | None = None
    """A side conversation to send instead of the host's (then ``extra`` is ignored)."""
    max_tokens: int | None = None
    """Most tokens to generate (graph drivers; the middleware leaves it to the agent's model)."""
    temperature: float | None = None
    """Sampling temperature (``None``: the driver's default, 0 in graphs)."""
    seed: int | None = None
    top_logprobs: int = 0
    """Alternatives per token the loop needs (0: chosen tokens' logprobs only)."""
    logprobs: bool = True
    """Whether the loop reads the reply's token logprobs (``False``: a driver may skip reading
    them; the middleware then parses none)."""
    prefill: str | None = None
    """Assistant text to continue exactly (only when the model can; the loop decides)."""
    final: bool = False
    """This reply may be the answer the user sees: it streams token by token under the
    ``"final"`` stream policy (other calls only as custom events)."""
    target: str = "model"
    """Which model answers: ``"model"`` (the method's own / the agent's), or a name the driver
    maps to another model (``build_loop_graph(models={name: model})``; e.g. ``"critic"``)."""
    n: int = 1
    """Replies wanted (``n > 1``: a batch of the same request, seeds ``seed + i``; the loop
    receives a list)."""
    sampled: bool = False
    """The call's ``temperature`` and ``seed`` are part of the method (a sampled rethink round,
    the critique gate's second solution): the middleware sets them on the agent's request too.
    Otherwise the middleware leaves sampling to the agent's model (graphs always apply them)."""


MAX_BATCH = 64
"""The most calls one :class:`Batch` holds (a longer batch is refused at construction)."""


@dataclass(frozen=True)
class Batch:
    """Many independent side calls of one kind, answered together (a list, in ``calls`` order)."""

    calls: tuple[ModelCall, ...]
    """1 to :data:`MAX_BATCH` side calls (``messages`` set), ``n == 1``, not ``final``, all with
    one ``target`` and one ``role`` (the driver sends them to one model, tagged once)."""

    def __post_init__(self) -> None:
        calls = self.calls
        if not isinstance(calls, tuple) or not 1 <= len(calls) <= MAX_BATCH:
            size = len(calls) if isinstance(calls, (tuple, list)) else calls
            raise InvalidRequestError("Batch.calls", size, f"pass a tuple of 1 to {MAX_BATCH} ModelCalls")
        for c in calls:
            if not isinstance(c, ModelCall) or c.messages is None or c.n != 1 or c.final:
                raise InvalidRequestError("Batch.calls", c, "pass side calls only: ModelCall(messages=..., n=1, final=False)")
            if (c.target, c.role) != (calls[0].target, calls[0].role):
                raise InvalidRequestError("Batch.calls", (c.target, c.role),
                                          f"give every call of a batch the target and role of the first, "
                                          f"{(calls[0].target, calls[0].role)}; split other kinds into another batch")

    @property
    def role(self) -> str:
        """The calls' role (tags the batch: ``sc_chains:<method>:<role>``)."""
        return self.calls[0].role

    @property
    def target(self) -> str:
        """The calls' target model."""
        return self.calls[0].target


@dataclass(frozen=True)
class Score:
    """Score texts without generating: the logprob of each continuation after its prefix."""

    role: str
    """What the scores are for (tags the call: ``sc_chains:<method>:<role>``)."""
    pairs: tuple[tuple[str, str], ...]
    """1 to :data:`MAX_BATCH` ``(prefix, continuation)`` pairs of raw text."""
    target: str = "model"
    """Which model scores (as :attr:`ModelCall.target`)."""

    def __post_init__(self) -> None:
        from adapters.base import check_score_pairs

        if not isinstance(self.pairs, tuple):
            raise InvalidRequestError("Score.pairs", type(self.pairs).__name__,
                                      f"pass a tuple of 1 to {MAX_BATCH} (prefix, continuation) pairs")
        check_score_pairs(self.pairs)  # 1 to MAX_SCORE_PAIRS (== MAX_BATCH) pairs of strings


@dataclass(frozen=True)
class Emit:
    """Send a custom stream event ``{"event": name, **payload}``."""

    name: str
    """``<method>.<event>`` (see :data:`graphs.vocab.EVENTS`)."""
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Review:
    """Pause for a person (``interrupt(payload)``); the loop receives their decision."""

    payload: Mapping[str, Any]


Request = Union[ModelCall, Batch, Score, Emit, Review]
Loop = Generator[Request, Any, T]
"""A method's loop: yields requests, receives replies, returns its result record."""


def _interrupt(review: Review) -> Any:
    from langgraph.types import interrupt

    return interrupt(dict(review.payload))


class _Pump(Generic[T]):
    """A loop with its events and reviews handled here; ``req`` is the model call it waits for."""

    def __init__(self, loop: Loop[T], on_emit: Callable[[Emit], None] | None,
                 on_review: Callable[[Review], Any]) -> None:
        self.loop, self.on_emit, self.on_review = loop, on_emit or _emit, on_review
        self.done, self.result = False, None
        self.req: Any = None
        self._advance(lambda: next(loop))

    def send(self, reply: Any) -> None:
        """Give the pending model call (or batch) its reply; run on to the next one or the end."""
        if isinstance(self.req, (Batch, Score)):
            check_batch_reply(self.req, reply)
        self._advance(lambda: self.loop.send(reply))

    def _advance(self, first: Callable[[], Any]) -> None:
        try:
            req = first()
            while isinstance(req, (Emit, Review)):
                if isinstance(req, Emit):
                    self.on_emit(req)
                    req = self.loop.send(None)
                else:
                    req = self.loop.send(self.on_review(req))
            self.req = req
        except StopIteration as stop:
            self.done, self.result = True, stop.value


def check_batch_reply(batch: Batch | Score, reply: Any) -> None:
    """Raise unless ``reply`` is a list with one entry per call of ``batch`` (per pair of a :class:`Score`)."""
    size = len(batch.calls) if isinstance(batch, Batch) else len(batch.pairs)
    if not isinstance(reply, list) or len(reply) != size:
        got = f"{len(reply)} replies" if isinstance(reply, list) else type(reply).__name__
        raise InvalidRequestError(f"{type(batch).__name__} reply", got,
                                  f"the executor must return a list of {size} replies, in order")


def one_by_one(call: Callable[[ModelCall], Any]) -> Callable[[ModelCall | Batch], Any]:
    """A sync executor of single calls that also runs a :class:`Batch`: its calls one after
    another, in order (the sequential baseline; a scripted model's replies stay in order). A
    :class:`Score` goes to ``call`` as it is."""

    def run(req: ModelCall | Batch | Score) -> Any:
        return [call(c) for c in req.calls] if isinstance(req, Batch) else call(req)

    return run


def drive(
    loop: Loop[T],
    call: Callable[[ModelCall | Batch], Any],
    *,
    on_emit: Callable[[Emit], None] | None = None,
    on_review: Callable[[Review], Any] = _interrupt,
) -> T:
    """Run ``loop`` to its end, synchronously; returns its result. ``call`` executes a
    :class:`ModelCall` (a reply) or a :class:`Batch` (a list of replies, in order)."""
    pump = _Pump(loop, on_emit, on_review)
    while not pump.done:
        pump.send(call(pump.req))
    return pump.result  # type: ignore[return-value]


async def adrive(
    loop: Loop[T],
    call: Callable[[ModelCall | Batch], Awaitable[Any]],
    *,
    on_emit: Callable[[Emit], None] | None = None,
    on_review: Callable[[Review], Any] = _interrupt,
) -> T:
    """Run ``loop`` to its end; model calls are awaited (emits and reviews are sync)."""
    pump = _Pump(loop, on_emit, on_review)
    while not pump.done:
        pump.send(await call(pump.req))
    return pump.result  # type: ignore[return-value]


def _emit(req: Emit) -> None:
    emit(req.name, **dict(req.payload))


# -- replies as JSON (for checkpointed state) -------------------------------------------------------
def reply_to_json(reply: Any) -> Any:
    """A reply as JSON: a Generation (or a list of them) becomes a tagged dict; other values
    (review decisions) pass as they are."""
    if isinstance(reply, list):
        return [reply_to_json(r) for r in reply]
    if not isinstance(reply, Generation):
        return {"__review__": reply}
    tokens = None if reply.tokens is None else [
        [t.token, t.logprob, t.offset, [[a.token, a.logprob] for a in t.top_logprobs], t.entropy, t.token_id]
        for t in reply.tokens
    ]
    u = reply.usage
    return {
        "__generation__": True, "text": reply.text, "tokens": tokens, "finish_reason": reply.finish_reason,
        "usage": [u.prompt_tokens, u.completion_tokens, u.cached_tokens], "model": reply.model,
        "prefill": reply.prefill,
    }


def reply_from_json(data: Any) -> Any:
    """Inverse of :func:`reply_to_json`."""
    if isinstance(data, list):
        return [reply_from_json(d) for d in data]
    if not (isinstance(data, Mapping) and data.get("__generation__")):
        return data["__review__"] if isinstance(data, Mapping) and "__review__" in data else data
    tokens = None if data["tokens"] is None else tuple(
        TokenLogprob(tok, lp, off, tuple(TopLogprob(a, alp) for a, alp in alts), ent, tid)
        for tok, lp, off, alts, ent, tid in data["tokens"]
    )
    p, c, cached = data["usage"]
    return Generation(
        text=data["text"], tokens=tokens, finish_reason=data["finish_reason"],
        usage=Usage(p, c, cached), model=data["model"], prefill=data["prefill"],
    )
