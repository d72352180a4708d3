"""The prefix KV cache keeps several sequences: the store on literal caches, then concurrent
conversations on hf:tiny-random (each follow-up starts from its own conversation's cache)."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from adapters.errors import InvalidRequestError
from adapters.hf.kv import PrefixKVCache
from adapters.hf.tiny import tiny_random_model


def cache_of(ids: list[int], layers: int = 2) -> DynamicCache:
    """A one-row cache whose keys at position i hold ids[i] (so copies can be checked)."""
    cache = DynamicCache()
    t = torch.tensor(ids, dtype=torch.float32).view(1, 1, -1, 1)
    for li in range(layers):
        cache.update(t.clone(), -t.clone(), li)
    return cache


def test_take_starts_from_the_longest_match_and_leaves_one_token_to_encode() -> None:
    store = PrefixKVCache()
    store.keep([1, 2, 3, 4], cache_of([1, 2, 3, 4]))
    store.keep([1, 2, 9], cache_of([1, 2, 9]))
    store.keep([7, 7, 7, 7, 7], cache_of([7, 7, 7, 7, 7]))
    cache, n = store.take([1, 2, 3, 5, 6], DynamicCache)
    assert n == 3 and cache.layers[0].keys.flatten().tolist() == [1, 2, 3]
    assert cache.layers[1].values.flatten().tolist() == [-1, -2, -3]
    cache, n = store.take([7, 7, 7, 7, 7], DynamicCache)  # an identical prompt: all but one
    assert n == 4
    assert store.take([5, 5], DynamicCache)[1] == 0  # no match: a new cache


def test_a_taken_copy_leaves_the_kept_entry_intact() -> None:
    store = PrefixKVCache()
    store.keep([1, 2, 3, 4], cache_of([1, 2, 3, 4]))
    cache, n = store.take([1, 2, 3, 4, 5], DynamicCache)
    cache.update(torch.zeros(1, 1, 2, 1), torch.zeros(1, 1, 2, 1), 0)  # the caller decodes on
    again, m = store.take([1, 2, 3, 4, 8], DynamicCache)
    assert n == m == 4 and again.layers[0].keys.flatten().tolist() == [1, 2, 3, 4]


def test_a_sequence_replaces_its_prefixes_and_the_budget_evicts_the_least_recent() -> None:
    store = PrefixKVCache()
    store.keep([1, 2], cache_of([1, 2]))
    store.keep([1, 2, 3], cache_of([1, 2, 3]))  # the conversation grew: one entry
    assert len(store) == 1 and store.ids == [1, 2, 3]
    size = 2 * 2 * 4 * 4  # 2 layers x (keys + values) x 4 positions x 4 bytes
    small = PrefixKVCache(max_bytes=2 * size)
    for k in range(3):
        small.keep([k] * 4, cache_of([k] * 4))
    assert len(small) == 2 and small.take([0, 0, 0, 0], DynamicCache)[1] == 0  # the oldest went
    small.take([1, 1, 1, 1], DynamicCache)  # used: now the most recent
    small.keep([5] * 4, cache_of([5] * 4))
    assert small.take([1, 1, 1, 1], DynamicCache)[1] == 3 and small.take([2, 2, 2, 2], DynamicCache)[1] == 0
    one = PrefixKVCache(max_bytes=0)  # the latest sequence is always kept
    one.keep([1, 2, 3], cache_of([1, 2, 3]))
    assert one.take([1, 2, 3, 4], DynamicCache)[1] == 3


@pytest.mark.parametrize("bad", [-1, 1.5, True, "512"])
def test_the_budget_option_is_validated(bad) -> None:
    with pytest.raises(InvalidRequestError) as err:
        tiny_random_model(prefix_cache_mb=bad)
    assert err.value.param == "prefix_cache_mb"


def test_concurrent_conversations_each_continue_from_their_own_cache() -> None:
    m = tiny_random_model(name="prefix-store", max_batch_size=4)
    plain = tiny_random_model(kv_reuse=False, coalesce=False)
    questions = ["What is 2+2?", "Name a colour.", "Count to three.", "Why is the sky blue?"]
    # one long system message: the follow-ups, admitted together, share a long prefix too; each
    # still starts from its own conversation's cache, not from the shared prefill
    system = {"role": "system", "content": "You are a careful assistant. Think step by step and check every answer twice."}
    drafts = m.generate_batch([m.request([system, {"role": "user", "content": q}], max_tokens=12) for q in questions])
    follow = [m.request([system, {"role": "user", "content": q}, {"role": "assistant", "content": d.text},
                         {"role": "user", "content": "Check your answer."}], max_tokens=12)
              for q, d in zip(questions, drafts)]
    got = m.generate_batch(follow)
    for req, draft, g in zip(follow, drafts, got):
        want = plain.generate(req)
        assert g.text == want.text and g.usage.prompt_tokens == want.usage.prompt_tokens
        # at least the draft's own prompt came from the cache (not one shared, latest entry)
        assert g.usage.cached_tokens >= draft.usage.prompt_tokens - 1
    assert m.coalesce_stats.largest >= 2  # they did decode together
