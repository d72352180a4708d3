"""The LangGraph driver of a method's loop (see :mod:`graphs.loop` for the protocol).

:func:`build_loop_graph` compiles ``START -> start -> step -> step ... -> END``:

- ``start`` validates the input (``start(state)`` returns the run's initial keys or raises) and
  resets the run: ``replies`` empty, ``emitted`` 0, and every output key the caller lists reset.
  So a new question on a thread that answered one starts a fresh run (full budget, no stale
  candidates) while the checkpointer's history keeps the earlier run inspectable.
- each ``step`` replays the loop with the recorded replies (skipping the ``emitted`` events already
  sent), executes the pending request (one model call, or a review via ``interrupt``), then lets
  the live loop run on to its next request (sending new events) and commits. When the loop
  returns, ``finish(state, result)`` writes the output keys. One model call per super-step:
  each call is checkpointed, and a review resumes without re-running the draft. A
  :class:`~graphs.loop.Batch` is one super-step too: all its calls go to the target model's
  ``batch``/``abatch`` at once (as the ``n`` replies of one ``ModelCall`` do), and the list of
  replies is recorded as one entry of ``replies``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from adapters.base import LogprobModel
from adapters.types import GenerationRequest, Message
from graphs.common import emit
from graphs.loop import Batch, Emit, Loop, ModelCall, Review, Score, reply_from_json, reply_to_json
from graphs.streaming import astream_call, stream_call, visible
from graphs.validate import check_choice

__all__ = ["build_loop_graph", "execute", "model_requests", "record_replies"]


def record_replies(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer of the ``replies`` key: appends; ``None`` resets (a new run)."""
    return [] if right is None else [*(left or []), *right]


def model_requests(model: LogprobModel, call: ModelCall, host: Sequence[Message]) -> list[GenerationRequest]:
    """The adapter requests for ``call`` (``n`` of them; seeds ``seed + i``)."""
    messages = list(call.messages) if call.messages is not None else [*host, *call.extra]
    return [
        model.request(
            messages,
            max_tokens=call.max_tokens or 256,
            temperature=0.0 if call.temperature is None else call.temperature,
            seed=None if call.seed is None else call.seed + i,
            top_logprobs=call.top_logprobs,
            prefill=call.prefill,
        )
        for i in range(call.n)
    ]


class _Run:
    """One step's view of the loop: replayed to the frontier, then driven live."""

    def __init__(self, loop: Loop[Any], state: Mapping[str, Any]) -> None:
        self.loop = loop
        self.replies = [reply_from_json(r) for r in state.get("replies") or []]
        self.skip = int(state.get("emitted") or 0)
        self.emitted = 0
        self.new: list[Any] = []
        self.pending: ModelCall | Batch | Review | None = None
        self.result: Any = None
        self._advance(lambda: next(self.loop))

    def _advance(self, first: Callable[[], Any]) -> None:
        """Run the loop until a request without a recorded reply, or its end."""
        fed = 0
        try:
            req = first()
            while True:
                if isinstance(req, Emit):
                    self.emitted += 1
                    if self.emitted > self.skip:
                        emit(req.name, **dict(req.payload))
                    req = self.loop.send(None)
                elif fed < len(self.replies):
                    req = self.loop.send(self.replies[fed])
                    fed += 1
                else:
                    self.pending = req
                    return
        except StopIteration as done:
            self.pending, self.result = None, done.value

    def answer(self, reply: Any) -> None:
        """Send the pending request's reply and run on to the next request."""
        self.new.append(reply_to_json(reply))
        self.replies = []
        self._advance(lambda: self.loop.send(reply))

    def update(self, finish: Callable[[Mapping[str, Any], Any], dict[str, Any]], state: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"replies": self.new, "emitted": max(self.emitted, self.skip)}
        if self.pending is None:
            out.update(finish(state, self.result), finished=True)
        return out


class _Executor:
    """Runs a :class:`ModelCall` or a :class:`Batch` on its model: visible single calls through
    :mod:`graphs.streaming`, ``n > 1`` and batches through the model's ``batch``/``abatch``."""

    def __init__(self, name: str, models: Mapping[str, LogprobModel], stream: str) -> None:
        check_choice("stream", stream, ("final", "all", "none"))
        self.name, self.models, self.stream = name, dict(models), stream

    def _plan(self, req: ModelCall | Batch, host: Sequence[Message]) -> tuple[LogprobModel, list[GenerationRequest], bool, bool]:
        """The model, its requests, whether they go as a batch (a list reply), whether streamed."""
        if req.target not in self.models:
            raise KeyError(f"{self.name}: ModelCall.target {req.target!r} has no model; pass models={{...}}")
        model = self.models[req.target]
        calls = req.calls if isinstance(req, Batch) else (req,)
        reqs = [r for c in calls for r in model_requests(model, c, host)]
        many = isinstance(req, Batch) or len(reqs) > 1
        return model, reqs, many, not many and visible(self.stream, req.final)  # type: ignore[union-attr]

    def _scorer(self, req: Score) -> LogprobModel:
        if req.target not in self.models:
            raise KeyError(f"{self.name}: Score.target {req.target!r} has no model; pass models={{...}}")
        return self.models[req.target]

    def run(self, req: ModelCall | Batch | Score, host: Sequence[Message]) -> Any:
        if isinstance(req, Score):
            return self._scorer(req).score_texts(req.pairs)
        model, reqs, many, shown = self._plan(req, host)
        if many:
            return model.batch(reqs)
        return stream_call(model, reqs[0], graph=self.name, role=req.role) if shown else model.generate(reqs[0])

    async def arun(self, req: ModelCall | Batch | Score, host: Sequence[Message]) -> Any:
        if isinstance(req, Score):
            return await self._scorer(req).ascore_texts(req.pairs)
        model, reqs, many, shown = self._plan(req, host)
        if many:
            return await model.abatch(reqs)
        if shown:
            return await astream_call(model, reqs[0], graph=self.name, role=req.role)
        return await model.agenerate(reqs[0])


def execute(model: LogprobModel, req: ModelCall | Batch | Score, host: Sequence[Message] = ()) -> Any:
    """Run one loop request on ``model`` outside a graph, as the graph's step does (whatever its
    ``target``; nothing streamed): a :class:`ModelCall` through ``generate`` (``n > 1``:
    ``batch``), a :class:`Batch` through ``batch``, a :class:`Score` through ``score_texts``. ``drive(loop, lambda r: execute(model, r))``
    drives a loop on one model (with :func:`graphs.loop.one_by_one`: a batch call by call)."""
    return _Executor("execute", {req.target: model}, "none").run(req, host)


class _Nodes:
    """The driver graph's nodes: ``start`` (a fresh run) and ``step`` (one request)."""

    def __init__(self, ex: _Executor, start: Callable[[Mapping[str, Any]], dict[str, Any]],
                 make_loop: Callable[[Mapping[str, Any]], Loop[Any]], host: Callable[[Mapping[str, Any]], Sequence[Message]],
                 finish: Callable[[Mapping[str, Any], Any], dict[str, Any]], reset: Sequence[str]) -> None:
        self.ex, self.start, self.make_loop, self.host, self.finish, self.reset = ex, start, make_loop, host, finish, reset

    def begin(self, state: Mapping[str, Any]) -> dict[str, Any]:
        fresh = {k: None for k in self.reset}
        return {**fresh, **self.start(state), "replies": None, "emitted": 0, "finished": False}

    def prepare(self, state: Mapping[str, Any]) -> _Run:
        run = _Run(self.make_loop(state), state)
        if isinstance(run.pending, Review):
            from langgraph.types import interrupt

            run.answer(interrupt(dict(run.pending.payload)))
        return run

    def step(self, state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        run = self.prepare(state)
        if isinstance(run.pending, (ModelCall, Batch, Score)):
            run.answer(self.ex.run(run.pending, self.host(state)))
        return run.update(self.finish, state)

    async def astep(self, state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        run = self.prepare(state)
        if isinstance(run.pending, (ModelCall, Batch, Score)):
            run.answer(await self.ex.arun(run.pending, self.host(state)))
        return run.update(self.finish, state)


def build_loop_graph(
    *,
    name: str,
    state_schema: type,
    input_schema: type,
    model: LogprobModel,
    start: Callable[[Mapping[str, Any]], dict[str, Any]],
    make_loop: Callable[[Mapping[str, Any]], Loop[Any]],
    host: Callable[[Mapping[str, Any]], Sequence[Message]],
    finish: Callable[[Mapping[str, Any], Any], dict[str, Any]],
    reset: Sequence[str] = (),
    checkpointer: Any = None,
    models: Mapping[str, LogprobModel] | None = None,
    after: Any = None,
    stream: str = "final",
) -> CompiledStateGraph:
    """Compile the driver graph of a loop. ``state_schema`` must have ``replies`` (reduced by
    :func:`record_replies`), ``emitted: int`` and ``finished: bool``; ``reset`` lists the output
    keys a new run clears; ``models`` maps :attr:`ModelCall.target` names other than
    ``"model"`` to their models; ``after``: a node (a Runnable) run once the loop finished;
    ``stream``: which calls reach ``stream_mode="messages"`` (:data:`graphs.streaming.STREAM_POLICIES`)."""
    ex = _Executor(name, {**(models or {}), "model": model}, stream)
    nodes = _Nodes(ex, start, make_loop, host, finish, reset)
    builder = StateGraph(state_schema, input_schema=input_schema)
    builder.add_node("start", nodes.begin)
    builder.add_node("step", RunnableLambda(nodes.step, afunc=nodes.astep, name="step"))
    builder.add_edge(START, "start")
    builder.add_edge("start", "step")
    done = END
    if after is not None:
        builder.add_node("after", after)
        builder.add_edge("after", END)
        done = "after"
    builder.add_conditional_edges("step", lambda s: done if s.get("finished") else "step", ["step", done])
    return builder.compile(checkpointer=checkpointer, name=name)
