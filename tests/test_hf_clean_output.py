"""Normal output of the local adapter is clean: no library warnings, no special tokens in text."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from adapters.hf.decode import cache_kwarg
from adapters.hf.tiny import SPECIAL_TOKENS, tiny_random_model
from adapters.streaming import join_chunks

PROMPTS = ["abc", "Hello", "x", "What is 2+2?", "Hi"]


def test_generation_paths_raise_no_warning_at_all():
    model = tiny_random_model(coalesce=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.generate("Hello", max_tokens=8)
        model.generate("Hello", max_tokens=8, prefill="Sure")  # prefix KV reuse path
        model.batch(["a", "bb", "ccc"], max_tokens=6)  # left-padded batch with a mask
        list(model.stream("Hello", max_tokens=8))

        async def run():
            return [d async for d in model.astream("Hello", max_tokens=4)]

        asyncio.run(run())
    assert [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught] == []


def test_the_cache_goes_by_the_current_keyword():
    model = tiny_random_model()
    assert cache_kwarg(type(model.model)) == "cache"  # transformers >= 5.24 (past_key_values is deprecated)

    class Legacy:
        def forward(self, input_ids=None, past_key_values=None):  # an older or custom model
            return None

    assert cache_kwarg(Legacy) == "past_key_values"


@pytest.mark.parametrize("prompt", PROMPTS)
def test_special_tokens_never_reach_the_text(prompt):
    model = tiny_random_model()
    special_ids = {model.tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    gen = model.generate(prompt, max_tokens=200)
    assert not any(t in gen.text for t in SPECIAL_TOKENS), gen.text
    assert "".join(t.token for t in gen.tokens) == gen.text
    offset = 0
    for tok in gen.tokens:
        assert tok.offset == offset
        offset += len(tok.token)
        if tok.token_id in special_ids:
            assert tok.token == ""
    streamed = join_chunks(model.stream(prompt, max_tokens=200))
    assert streamed.text == gen.text


def test_a_reply_that_samples_special_tokens_still_counts_them():
    model = tiny_random_model()
    special_ids = {model.tokenizer.convert_tokens_to_ids(t) for t in ("<pad>", "<unk>", "<|im_start|>")}
    gen = model.generate("abc", max_tokens=200)  # known to sample <|im_start|> and <pad> mid-reply
    sampled = [t for t in gen.tokens if t.token_id in special_ids]
    assert sampled, "the fixture prompt no longer samples a special token; pick another"
    assert gen.usage.completion_tokens >= len(gen.tokens)
