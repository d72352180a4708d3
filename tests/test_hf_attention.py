"""The CPU decode attention: equal to sdpa on literals and in real generation, chosen by "auto"."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from adapters.errors import InvalidRequestError
from adapters.hf import tiny_random_model
from adapters.hf.attention import DECODE_ATTENTION, decode_attention, resolve_attention
from adapters.hf.load import load_pretrained


class _Module(torch.nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.num_key_value_groups = groups
        self.is_causal = True


def _qkv(batch: int, heads: int, kv_heads: int, q_len: int, keys: int, dim: int = 16):
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(batch, heads, q_len, dim, generator=gen)
    k = torch.randn(batch, kv_heads, keys, dim, generator=gen)
    v = torch.randn(batch, kv_heads, keys, dim, generator=gen)
    return q, k, v


def _left_padded(batch: int, q_len: int, keys: int, pads: list[int]) -> torch.Tensor:
    mask = torch.ones(batch, 1, q_len, keys, dtype=torch.bool)
    for row, pad in enumerate(pads):
        mask[row, :, :, :pad] = False
    return mask


@pytest.mark.parametrize("heads,kv_heads", [(4, 2), (14, 2), (3, 3)])
def test_one_query_token_equals_sdpa_with_left_padding(heads: int, kv_heads: int) -> None:
    q, k, v = _qkv(3, heads, kv_heads, 1, 9)
    mask = _left_padded(3, 1, 9, [0, 4, 8])  # the last row sees one key only
    module = _Module(heads // kv_heads)
    ours, _ = decode_attention(module, q, k, v, mask, scaling=0.3)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)
    assert ours.shape == (3, 1, heads, 16)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    # an additive float mask (0 / -inf) means the same thing
    additive = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(decode_attention(module, q, k, v, additive, scaling=0.3)[0], ref, atol=1e-5, rtol=1e-5)


def test_bf16_inputs_score_in_float32_and_return_bf16() -> None:
    q, k, v = (t.to(torch.bfloat16) for t in _qkv(2, 4, 2, 1, 40))
    ours, _ = decode_attention(_Module(2), q, k, v, None)
    exact, _ = sdpa_attention_forward(_Module(2), q.float(), k.float(), v.float(), None)
    assert ours.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), exact, atol=1e-2, rtol=1e-2)  # one bf16 rounding of the output


def test_several_query_tokens_go_to_sdpa_unchanged() -> None:
    q, k, v = _qkv(2, 4, 2, 5, 5)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()[None, None].expand(2, 1, 5, 5)
    ours, _ = decode_attention(_Module(2), q, k, v, mask)
    ref, _ = sdpa_attention_forward(_Module(2), q, k, v, mask)
    assert torch.equal(ours, ref)


def test_generation_with_decode_attention_equals_sdpa_token_for_token() -> None:
    ours = tiny_random_model(kv_reuse=False, max_batch_size=4)
    assert ours.model.config._attn_implementation == DECODE_ATTENTION
    ref = tiny_random_model(kv_reuse=False, max_batch_size=4, attn_implementation="sdpa")
    assert ref.model.config._attn_implementation == "sdpa"
    prompts = ["Hello", "What is 2+2? Answer briefly.", "A much longer question, to force left padding? " * 3, "x"]
    reqs = [ours.request(p, max_tokens=t, top_logprobs=3) for p, t in zip(prompts, [30, 12, 25, 40])]
    for a, b in zip(ours.generate_batch(reqs), ref.generate_batch(reqs)):
        assert a.text == b.text and [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
        assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens], abs=1e-4)


def test_auto_is_decode_attention_on_cpu_and_transformers_default_elsewhere() -> None:
    assert resolve_attention("auto", torch.device("cpu")) == DECODE_ATTENTION
    assert resolve_attention(None, torch.device("cpu")) == DECODE_ATTENTION
    assert resolve_attention("auto", torch.device("cuda")) is None
    assert resolve_attention("eager", torch.device("cpu")) == "eager"
    assert resolve_attention("sdpa", torch.device("cuda")) == "sdpa"


@pytest.mark.parametrize("bad", ["flash", "", 3, True])
def test_a_bad_attention_name_is_a_typed_error_before_any_model_loads(bad) -> None:
    with pytest.raises(InvalidRequestError, match="attn_implementation") as err:
        load_pretrained("/nonexistent/model", attn_implementation=bad)  # the path is never reached
    assert repr(bad) in str(err.value) and "sdpa" in str(err.value)
    with pytest.raises(InvalidRequestError, match="attn_implementation"):
        tiny_random_model(attn_implementation=bad)
