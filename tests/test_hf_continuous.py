"""Continuous batching: the pure ContinuousBatcher with a pure-Python engine, then HFModel on tiny-random."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import adapters.hf.batcher as batcher_mod
from adapters.errors import InvalidRequestError
from adapters.hf.batcher import BatcherStats, ContinuousBatcher, Progress


class Countdown:
    """An engine whose item ``k`` decodes for ``k`` steps; its result is ``(k, step admitted,
    step finished)``. A negative item fails at admission; ``99`` makes ``advance`` raise.
    ``pause_at``: the step at which the engine waits for ``gate`` (after setting ``paused``)."""

    def __init__(self, pause_at: int = 0) -> None:
        self.rows: list[list] = []
        self.step_no = 0
        self.widest = 0
        self.pause_at = pause_at
        self.paused = threading.Event()
        self.gate = threading.Event()

    @property
    def active(self) -> int:
        return len(self.rows)

    def advance(self, jobs):
        done = []
        for items, futs in jobs:
            for item, fut in zip(items, futs):
                if item == 99:
                    raise RuntimeError("engine bug")
                if item < 0:
                    done.append((fut, ValueError(f"bad item {item}")))
                else:
                    self.rows.append([item, fut, item, self.step_no])
        if not self.rows:
            return Progress(done, False)
        self.widest = max(self.widest, len(self.rows))
        self.step_no += 1
        if self.step_no == self.pause_at:
            self.paused.set()
            assert self.gate.wait(30)
        for row in self.rows:
            row[2] -= 1
        done += [(fut, (k, start, self.step_no)) for k, fut, left, start in self.rows if left <= 0]
        self.rows = [row for row in self.rows if row[2] > 0]
        return Progress(done, True)

    def abort(self):
        futs = [row[1] for row in self.rows]
        self.rows = []
        return futs


def test_a_request_arriving_while_a_batch_decodes_joins_it_at_the_next_step() -> None:
    engine = Countdown(pause_at=2)
    b = ContinuousBatcher(engine, max_batch=4, wait_s=0.0)
    long = b.submit(10)
    assert engine.paused.wait(30)  # the engine is inside its second step
    short = b.submit(3)
    engine.gate.set()
    assert short.result(30) == (3, 2, 5)  # joined after step 2, left after step 5
    assert long.result(30) == (10, 0, 10)  # the long row never waited for it
    assert b.stats == BatcherStats(requests=2, batches=1, largest=2, steps=10, joined=1)


def test_rows_never_exceed_max_batch_and_waiting_jobs_take_freed_rows() -> None:
    engine = Countdown(pause_at=1)
    b = ContinuousBatcher(engine, max_batch=2, wait_s=0.0)
    first = b.submit(5)
    assert engine.paused.wait(30)
    futs = [f for job in b.submit_jobs([[1], [1], [1]]) for f in job]
    engine.gate.set()
    assert first.result(30) == (5, 0, 5)
    # one short row at a time joins the long one, as soon as the previous short row left
    assert [f.result(30) for f in futs] == [(1, 1, 2), (1, 2, 3), (1, 3, 4)]
    assert engine.widest == 2 and b.stats.largest == 2 and b.stats.steps == 5 and b.stats.joined == 3


def test_a_job_is_admitted_whole_when_it_fits() -> None:
    engine = Countdown(pause_at=1)
    b = ContinuousBatcher(engine, max_batch=3, wait_s=0.0)
    first = b.submit(3)
    assert engine.paused.wait(30)
    (samples,) = b.submit_jobs([[2, 2, 2]])  # three rows of one prompt: they need 3 free rows
    engine.gate.set()
    assert first.result(30) == (3, 0, 3)
    assert [f.result(30) for f in samples] == [(2, 3, 5)] * 3
    assert engine.widest == 3


def test_a_failing_request_fails_alone_and_an_engine_error_fails_its_rows_only() -> None:
    engine = Countdown()
    b = ContinuousBatcher(engine, max_batch=8, wait_s=0.2)
    good, bad = (f for job in b.submit_jobs([[4], [-1]]) for f in job)
    with pytest.raises(ValueError, match="bad item -1"):
        bad.result(30)
    assert good.result(30)[0] == 4
    with pytest.raises(RuntimeError, match="engine bug"):
        b.submit(99).result(30)
    assert b.submit(2).result(30)[0] == 2  # the worker survived


def test_an_idle_continuous_worker_exits_and_restarts() -> None:
    b = ContinuousBatcher(Countdown(), max_batch=4, wait_s=0.0, idle_s=0.05)
    assert b.submit(1).result(30)[0] == 1 and b.running
    assert _wait_until(lambda: not b.running)
    assert b.submit(2).result(30)[0] == 2


def test_at_exit_running_rows_finish_and_queued_requests_fail(monkeypatch) -> None:
    monkeypatch.setattr(batcher_mod, "_exiting", threading.Event())
    engine = Countdown(pause_at=2)
    b = ContinuousBatcher(engine, max_batch=1, wait_s=0.0)
    running = b.submit(4)
    assert engine.paused.wait(30)
    queued = b.submit(1)  # no free row: it waits in the queue
    batcher_mod._exiting.set()
    engine.gate.set()
    assert running.result(30) == (4, 0, 4)
    with pytest.raises(RuntimeError, match="interpreter is exiting"):
        queued.result(30)
    assert _wait_until(lambda: not b.running)


def _wait_until(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


# -- HFModel -----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from adapters.hf import tiny_random_model  # noqa: E402

LONG = "Why is the sky blue?"  # tiny-random's greedy reply runs past 200 tokens (no end-of-turn)


def _same(a, b) -> None:
    assert a.text == b.text and a.finish_reason == b.finish_reason
    assert [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
    assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens], abs=1e-4)
    assert [t.entropy for t in a.tokens] == pytest.approx([t.entropy for t in b.tokens], abs=1e-4)
    assert [[x.token for x in t.top_logprobs] for t in a.tokens] == [[x.token for x in t.top_logprobs] for t in b.tokens]
    assert a.usage.prompt_tokens == b.usage.prompt_tokens and a.usage.completion_tokens == b.usage.completion_tokens


def test_the_default_is_continuous_and_the_option_is_validated() -> None:
    assert tiny_random_model().batching == "continuous"
    assert tiny_random_model(batching="static").batching == "static"
    with pytest.raises(InvalidRequestError, match="batching") as err:
        tiny_random_model(batching="dynamic")
    assert "continuous" in str(err.value) and "static" in str(err.value)


def test_a_cache_that_cannot_be_repadded_means_static_batching(monkeypatch) -> None:
    from transformers.cache_utils import DynamicSlidingWindowLayer

    from adapters.hf.continuous import supports_continuous
    from adapters.hf.model import HFModel

    real = HFModel._new_cache

    def sliding(self):  # a sliding-window layer, as Mistral or Gemma models have
        cache = real(self)
        cache.layers[0] = DynamicSlidingWindowLayer(sliding_window=8)
        return cache

    assert supports_continuous(real(tiny_random_model()))
    monkeypatch.setattr(HFModel, "_new_cache", sliding)
    assert tiny_random_model(name="sliding").batching == "static"
    with pytest.raises(InvalidRequestError, match="sliding window"):
        tiny_random_model(name="sliding", batching="continuous")


def test_a_request_joins_a_decoding_batch_and_leaves_before_it_ends() -> None:
    m = tiny_random_model(kv_reuse=False, max_batch_size=2)
    reqs = [m.request(LONG, max_tokens=200), m.request("Count to five.", max_tokens=3),
            m.request("Hello", max_tokens=6, top_logprobs=2)]
    # the long row and a 3-token row fill the batch; the third request takes the freed row
    [long], [short] = m._batcher.submit_jobs([[reqs[0]], [reqs[1]]])
    [late] = m._batcher.submit_jobs([[reqs[2]]])[0]
    got = [long.result(60), short.result(60), late.result(60)]
    assert got[0].finish_reason == "length" and got[0].usage.completion_tokens == 200
    stats = m.coalesce_stats
    # one busy period as long as the long row (its first token comes from its prefill): the
    # late request joined it and finished inside it
    assert stats == BatcherStats(requests=3, batches=1, largest=2, steps=199, joined=1)
    direct = tiny_random_model(kv_reuse=False, coalesce=False)
    for r, g in zip(reqs, got):
        _same(g, direct.generate(r))


def test_continuous_equals_one_at_a_time_for_mixed_lengths_and_budgets() -> None:
    m = tiny_random_model(kv_reuse=False, max_batch_size=3)
    prompts = ["Hello", "What is 2+2? Answer briefly.", "x", "Tell me a story about a robot.",
               "A much longer question, to force plenty of left padding in its batch? " * 3, "Count to five.",
               LONG, "Why?"]  # fmt: skip
    budgets = [40, 7, 120, 16, 64, 3, 90, 1]
    reqs = [m.request(p, max_tokens=t, top_logprobs=(i % 3)) for i, (p, t) in enumerate(zip(prompts, budgets))]
    got = m.generate_batch(reqs)
    direct = tiny_random_model(kv_reuse=False, coalesce=False)
    for r, g in zip(reqs, got):
        _same(g, direct.generate(r))
    assert m.coalesce_stats.joined >= 5 and m.coalesce_stats.largest == 3


def test_stop_sequences_and_n_samples_inside_a_continuous_batch() -> None:
    m = tiny_random_model(kv_reuse=True, max_batch_size=8)
    m.clear_cache()
    sampled = [m.request("2+3?", max_tokens=12, temperature=1.0, seed=s, prefill="Step 1:") for s in (3, 4, 5)]
    others = [m.request("Hello", max_tokens=40, stop=["e"]), m.request(LONG, max_tokens=30, stop=["Zz", "j5"]),
              m.request("Count to five.", max_tokens=20, stop=["ii"])]
    greedy = [m.request("x", max_tokens=15)] * 2
    reqs = [others[0], *sampled, others[1], *greedy, others[2]]
    got = m.generate_batch(reqs)
    fresh = tiny_random_model(kv_reuse=False, coalesce=False)
    for r, g in zip(reqs, got):
        _same(g, fresh.generate(r))
    assert all(g.finish_reason == "stop" for g in (got[0], got[4], got[7]))
    assert "e" not in got[0].text and "j5" not in got[4].text
    assert len({g.text for g in got[1:4]}) > 1  # the seeds give different samples
    prompt = len(m.encode(sampled[0]))
    assert [g.usage.cached_tokens for g in got[2:4]] == [prompt - 1] * 2  # one shared prefill
    assert got[5].text == got[6].text and got[6].usage.cached_tokens == len(m.encode(greedy[0])) - 1


def test_a_failing_row_does_not_break_the_others(monkeypatch) -> None:
    m = tiny_random_model(kv_reuse=False, max_batch_size=4)
    real_row, real_encode = m._row, m.encode

    class Broken(Exception):
        pass

    def row(request, ids):  # the detokenizer of one row fails at its 3rd token (a fault we cannot cause)
        r = real_row(request, ids)
        if request.messages[-1]["content"] == "boom":
            step, calls = r.detok.step, []

            def failing(token_id):
                calls.append(token_id)
                if len(calls) == 3:
                    raise Broken("detokenizer failed")
                return step(token_id)

            r.detok.step = failing
        return r

    def encode(request):
        if request.messages[-1]["content"] == "no prompt":
            raise Broken("encoding failed")
        return real_encode(request)

    monkeypatch.setattr(m, "_row", row)
    monkeypatch.setattr(m, "encode", encode)
    reqs = [m.request(q, max_tokens=20) for q in ("Hello", "boom", "no prompt", "Count to five.")]
    futs = [f for job in m._batcher.submit_jobs([[r] for r in reqs]) for f in job]
    for i in (1, 2):
        with pytest.raises(Broken):
            futs[i].result(60)
    direct = tiny_random_model(kv_reuse=False, coalesce=False)
    for i in (0, 3):
        _same(futs[i].result(60), direct.generate(reqs[i]))
    assert m.generate("x", max_tokens=5).text == direct.generate("x", max_tokens=5).text


def test_concurrent_async_calls_and_abatch_share_the_running_batch() -> None:
    m = tiny_random_model(kv_reuse=False, max_batch_size=4)
    direct = tiny_random_model(kv_reuse=False, coalesce=False)

    async def together():
        calls = [m.agenerate(q, max_tokens=t) for q, t in (("Hello", 30), ("x", 5), ("Why?", 12))]
        return await asyncio.gather(*calls, m.abatch(["Count to five."] * 2, max_tokens=9))

    *singles, pair = asyncio.run(together())
    for (q, t), g in zip((("Hello", 30), ("x", 5), ("Why?", 12)), singles):
        _same(g, direct.generate(q, max_tokens=t))
    for g in pair:
        _same(g, direct.generate("Count to five.", max_tokens=9))
    assert m.coalesce_stats.requests == 5


def test_a_stream_runs_while_continuous_calls_are_queued() -> None:
    from adapters.streaming import join_chunks

    m = tiny_random_model(kv_reuse=False, max_batch_size=4)
    direct = tiny_random_model(kv_reuse=False, coalesce=False)
    futs = [f for job in m._batcher.submit_jobs([[m.request(LONG, max_tokens=60)], [m.request("x", max_tokens=9)]])
            for f in job]
    streamed = join_chunks(list(m.stream("Hello", max_tokens=15, stop=["e"])))
    _same(streamed, direct.generate("Hello", max_tokens=15, stop=["e"]))
    _same(futs[0].result(60), direct.generate(LONG, max_tokens=60))
    _same(futs[1].result(60), direct.generate("x", max_tokens=9))


@pytest.mark.slow  # loads SmolLM2-135M (~20 s on a busy 2-core machine)
def test_smollm2_continuous_batches_equal_static_batches_and_lone_calls() -> None:
    from adapters.specs import resolve_model

    cont = resolve_model("hf:default", kv_reuse=False, max_batch_size=3)
    static = resolve_model("hf:default", kv_reuse=False, max_batch_size=3, batching="static")
    assert cont.batching == "continuous"
    work = [("What is 2+2?", 8), ("Write a short poem about the sea.", 40),
            ("Explain what a prime number is, in detail, for a child.", 24), ("Hi", 12), ("Why is the sky blue?", 32)]
    reqs = [cont.request(q, max_tokens=t, top_logprobs=2) for q, t in work]
    got = cont.generate_batch(reqs)
    for r, a, b in zip(reqs, got, static.generate_batch(reqs)):
        assert a.text == b.text
        assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens], abs=1e-3)
    assert cont.coalesce_stats.joined >= 2
    lone = resolve_model("hf:default", kv_reuse=False, coalesce=False)
    assert [g.text for g in got] == [lone.generate(r).text for r in reqs]


# -- rows of different prompts with a common prefix: one prefill of the prefix -----------------------
def _relevance_requests(m, max_tokens):
    from graphs.s2a.filter import relevance_messages, split_problem

    problem = ("Tom has 3 apples. His sister Ann is 12 years old and likes to paint. He buys 4 more apples. "
               "How many apples does he have now?")
    context, question = split_problem(problem)
    return [m.request(relevance_messages(problem, question, s), max_tokens=t, top_logprobs=3)
            for s, t in zip(context, max_tokens)]


def test_rows_with_a_common_prefix_prefill_it_once_and_equal_one_at_a_time() -> None:
    from adapters.hf.continuous import MIN_SHARED_PREFIX
    from adapters.hf.kv import common_prefix_len

    m = tiny_random_model(kv_reuse=False, max_batch_size=8)
    reqs = _relevance_requests(m, (1, 12, 30))  # suffixes of different lengths: padding inside the rows
    got = m.generate_batch(reqs)
    ids = [m.encode(r) for r in reqs]
    shared = min(common_prefix_len(ids[0], e) for e in ids[1:])
    assert shared >= MIN_SHARED_PREFIX
    # the prefix was encoded once: every row but the first reports it as cached
    assert [g.usage.cached_tokens for g in got] == [0, shared, shared]
    assert m.coalesce_stats.largest == 3 and m.coalesce_stats.batches == 1
    direct = tiny_random_model(kv_reuse=False, coalesce=False)
    for r, g in zip(reqs, got):
        _same(g, direct.generate(r))


def test_a_shared_prefix_group_joins_a_decoding_row() -> None:
    from adapters.hf.continuous import MIN_SHARED_PREFIX

    m = tiny_random_model(kv_reuse=True, max_batch_size=5)
    m.clear_cache()
    long_req = m.request(LONG, max_tokens=60)
    longs = m._batcher.submit_jobs([[long_req, long_req]])[0]  # a 2-row job: never grouped with the others
    reqs = _relevance_requests(m, (9, 20, 5))
    group = [f for job in m._batcher.submit_jobs([[r] for r in reqs]) for f in job]
    got = [f.result(60) for f in group]
    assert got[1].usage.cached_tokens == got[2].usage.cached_tokens >= MIN_SHARED_PREFIX  # one shared prefill
    direct = tiny_random_model(kv_reuse=False, coalesce=False)
    for f in longs:
        _same(f.result(60), direct.generate(long_req))
    for r, g in zip(reqs, got):
        _same(g, direct.generate(r))
    for r in reqs:  # each row's kept cache (its real columns, not the padding inside) starts the next call
        again = m.generate(r)
        assert again.usage.cached_tokens > MIN_SHARED_PREFIX
        _same(again, direct.generate(r))


def test_prompts_without_a_long_common_prefix_are_prefilled_one_by_one() -> None:
    m = tiny_random_model(kv_reuse=False, max_batch_size=4)
    reqs = [m.request(p, max_tokens=4) for p in ("Hello", "Count to five.", "Why?")]
    got = m.generate_batch(reqs)
    assert all(g.usage.cached_tokens == 0 for g in got)
    direct = tiny_random_model(kv_reuse=False, coalesce=False)
    for r, g in zip(reqs, got):
        _same(g, direct.generate(r))
