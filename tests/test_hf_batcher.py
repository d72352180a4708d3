"""Coalescing concurrent calls into batches: the pure RequestBatcher, then HFModel on tiny-random."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.errors import InvalidRequestError
from adapters.hf.batcher import BatcherStats, RequestBatcher


class Recorder:
    """A batch function that records its groups; the first group blocks until released."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items):
        self.groups.append(list(items))
        if len(self.groups) == 1:
            self.started.set()
            assert self.release.wait(10)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {list(items)}")
        return [i * 10 for i in items]


def test_requests_that_queue_while_the_model_is_busy_run_as_one_batch() -> None:
    rec = Recorder()
    b = RequestBatcher(rec, max_batch=8, wait_s=0.0)
    first = b.submit(1)
    assert rec.started.wait(10)  # the worker is busy with [1]
    later = [b.submit(i) for i in range(2, 7)]
    rec.release.set()
    assert first.result(10) == 10 and [f.result(10) for f in later] == [20, 30, 40, 50, 60]
    assert rec.groups == [[1], [2, 3, 4, 5, 6]]
    assert b.stats == BatcherStats(requests=6, batches=2, largest=5) and b.stats.mean_batch == 3.0


def test_groups_never_exceed_max_batch() -> None:
    rec = Recorder()
    b = RequestBatcher(rec, max_batch=4, wait_s=0.0)
    futures = [b.submit(0)]
    assert rec.started.wait(10)
    futures += [b.submit(i) for i in range(1, 10)]
    rec.release.set()
    assert [f.result(10) for f in futures] == [i * 10 for i in range(10)]
    assert [len(g) for g in rec.groups] == [1, 4, 4, 1]
    assert b.stats.largest == 4


def test_an_error_reaches_every_caller_of_its_group_and_the_worker_survives() -> None:
    rec = Recorder()
    b = RequestBatcher(rec, max_batch=8, wait_s=0.0)
    blocker = b.submit(1)
    assert rec.started.wait(10)
    bad = [b.submit(2), b.submit(-1)]
    rec.release.set()
    assert blocker.result(10) == 10
    for f in bad:
        with pytest.raises(ValueError, match="negative item"):
            f.result(10)
    assert b.submit(7).result(10) == 70  # the next group runs normally


def test_a_batch_function_returning_the_wrong_count_is_an_error() -> None:
    b = RequestBatcher(lambda items: [], max_batch=2, wait_s=0.0)
    with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
        b.submit(1).result(10)


def test_wait_window_gathers_calls_that_arrive_close_together() -> None:
    groups = []
    b = RequestBatcher(lambda items: groups.append(list(items)) or list(items), max_batch=16, wait_s=0.5)
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda i: b.submit(i).result(10), range(4))) == [0, 1, 2, 3]
    assert sorted(x for g in groups for x in g) == [0, 1, 2, 3] and len(groups) < 4


# -- HFModel -----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from adapters.hf import tiny_random_model  # noqa: E402

QUESTIONS = ["Hello", "What is 2+2? Answer briefly.", "x", "Tell me a story about a robot.",
             "Count to five.", "Why is the sky blue?"]


def _same(a, b) -> None:
    assert a.text == b.text and a.finish_reason == b.finish_reason
    assert [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
    assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens], abs=1e-4)


@pytest.mark.parametrize("batching", ["continuous", "static"])
def test_concurrent_async_calls_are_batched_and_equal_one_by_one_results(batching) -> None:
    direct = tiny_random_model(coalesce=False, kv_reuse=False)
    expected = [direct.generate(q, max_tokens=12, top_logprobs=2) for q in QUESTIONS]
    m = tiny_random_model(kv_reuse=False, coalesce_wait_s=0.05, batching=batching)

    async def all_at_once():
        # Holding the model's lock keeps the worker's first batch waiting until every call is
        # queued, so the grouping does not depend on how fast this thread is scheduled.
        with m._lock:
            tasks = [asyncio.ensure_future(m.agenerate(q, max_tokens=12, top_logprobs=2)) for q in QUESTIONS]
            await asyncio.sleep(0)  # each task runs up to its submit
        return await asyncio.gather(*tasks)

    got = asyncio.run(all_at_once())
    for a, b in zip(got, expected):
        _same(a, b)
    stats = m.coalesce_stats  # counted before the results were handed out (no race with the worker)
    assert stats.requests == len(QUESTIONS) and stats.batches <= 2 and stats.largest >= len(QUESTIONS) // 2


@pytest.mark.parametrize("batching", ["continuous", "static"])
def test_calls_from_threads_are_batched_too(batching) -> None:
    direct = tiny_random_model(coalesce=False, kv_reuse=False)
    m = tiny_random_model(kv_reuse=False, coalesce_wait_s=0.05, max_batch_size=3, batching=batching)
    submitted = []
    real_submit = m._batcher.submit
    m._batcher.submit = lambda item: (submitted.append(item), real_submit(item))[1]
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        with m._lock:  # the worker's first batch waits until every thread has queued its call
            futures = [pool.submit(m.generate, q, max_tokens=10) for q in QUESTIONS]
            assert _wait_until(lambda: len(submitted) == len(QUESTIONS), 60)
        got = [f.result(60) for f in futures]
    for q, g in zip(QUESTIONS, got):
        _same(g, direct.generate(q, max_tokens=10))
    assert m.coalesce_stats.largest == 3  # bounded by max_batch_size
    assert m.coalesce_stats.batches < len(QUESTIONS)


def test_static_batching_shares_one_prompt_between_its_rows() -> None:
    m = tiny_random_model(batching="static")
    reqs = [m.request("2+3?", max_tokens=12, temperature=1.0, seed=s, prefill="Step 1:") for s in (3, 4, 5)]
    shared = m.generate_batch(reqs)
    fresh = tiny_random_model(kv_reuse=False, coalesce=False)
    for r, g in zip(reqs, shared):
        _same(g, fresh.generate(r))
    assert [g.usage.cached_tokens for g in shared[1:]] == [len(m.encode(reqs[0])) - 1] * 2


def test_a_lone_call_keeps_prefix_kv_reuse() -> None:
    m = tiny_random_model(kv_reuse=True)
    first = m.generate("What is 2+2? Answer briefly.", max_tokens=12)
    again = m.generate("What is 2+2? Answer briefly.", max_tokens=8, prefill=first.text[:5])
    assert again.usage.cached_tokens > 0
    # continuous batching: a reply's first token comes from its prefill, each later one from a step
    steps = first.usage.completion_tokens - 1 + again.usage.completion_tokens - 1
    assert m.coalesce_stats == BatcherStats(requests=2, batches=2, largest=1, steps=steps, joined=0)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"coalesce": "yes"}, "coalesce"),
    ({"coalesce_wait_s": -0.1}, "coalesce_wait_s"),
    ({"coalesce_wait_s": True}, "coalesce_wait_s"),
    ({"max_batch_size": 0}, "max_batch_size"),
    ({"batching": "iteration"}, "batching"),
])
def test_bad_coalescing_options_name_the_value(kwargs, name) -> None:
    with pytest.raises(InvalidRequestError, match=name):
        tiny_random_model(**kwargs)


def test_max_batch_size_setter_validates_and_bounds_coalescing() -> None:
    m = tiny_random_model()
    m.max_batch_size = 5
    assert m.max_batch_size == 5
    with pytest.raises(InvalidRequestError, match="max_batch_size"):
        m.max_batch_size = 0


def _wait_until(cond, timeout: float = 5.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_an_idle_worker_exits_and_the_next_request_restarts_it() -> None:
    b = RequestBatcher(lambda items: [i + 1 for i in items], max_batch=4, wait_s=0.0, idle_s=0.05)
    assert not b.running
    assert b.submit(1).result(10) == 2 and b.running
    assert _wait_until(lambda: not b.running)
    assert b.submit(2).result(10) == 3  # restarted
    with ThreadPoolExecutor(8) as pool:  # requests racing the worker's exit are never stranded
        for _ in range(20):
            assert list(pool.map(lambda i: b.submit(i).result(10), range(8))) == list(range(1, 9))
            _wait_until(lambda: not b.running, 0.06)


def test_an_unused_model_can_be_garbage_collected() -> None:
    import gc
    import weakref

    m = tiny_random_model(kv_reuse=False, name="collectable")
    m._batcher.idle_s = 0.05
    m.generate("Hello", max_tokens=4)
    ref = weakref.ref(m)
    del m  # the worker thread holds the model until it retires

    def retired() -> bool:
        return not any(t.name == "sc-chains-batcher[collectable]" for t in threading.enumerate())

    assert _wait_until(retired)
    gc.collect()
    assert ref() is None
