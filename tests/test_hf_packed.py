"""Pre-packed linear layers: same outputs as nn.Linear, chosen by "auto" on CPU, validated."""

from __future__ import annotations

import copy

import pytest
import torch

from adapters.errors import InvalidRequestError
from adapters.hf.load import load_pretrained
from adapters.hf.model import HFModel
from adapters.hf.packed import PackedLinear, can_prepack, prepack_linears, resolve_prepack
from adapters.hf.tiny import build_tiny_random

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")
CPU = torch.device("cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_packed_layer_equals_nn_linear(dtype) -> None:
    if not can_prepack(CPU, dtype):
        pytest.skip(f"oneDNN has no {dtype} here")
    gen = torch.Generator().manual_seed(3)
    linear = torch.nn.Linear(96, 40).to(dtype)
    x = torch.randn(2, 5, 96, generator=gen).to(dtype)  # batch, tokens, features
    packed = PackedLinear(linear)
    with torch.inference_mode():
        got, want = packed(x), linear(x)
    assert got.shape == want.shape == (2, 5, 40) and got.dtype == dtype
    torch.testing.assert_close(got, want, atol=1e-5 if dtype == torch.float32 else 0, rtol=1e-5 if dtype == torch.float32 else 0)
    assert "packed" in repr(packed)


def test_a_packed_model_generates_what_the_unpacked_one_does() -> None:
    model, tokenizer = build_tiny_random()
    packed_model = copy.deepcopy(model)
    assert prepack_linears(packed_model) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer; lm_head
    assert not any(type(m) is torch.nn.Linear for m in packed_model.modules())
    assert all(type(m) is torch.nn.Linear for m in model.modules() if isinstance(m, (torch.nn.Linear, PackedLinear)))
    ours = HFModel(packed_model, tokenizer, kv_reuse=False, max_batch_size=3)
    ref = HFModel(model, tokenizer, kv_reuse=False, max_batch_size=3)
    reqs = [ours.request(p, max_tokens=t, top_logprobs=2) for p, t in [("Hello", 30), ("What is 2+2?", 12), ("x", 40)]]
    for a, b in zip(ours.generate_batch(reqs), ref.generate_batch(reqs)):
        assert [t.token_id for t in a.tokens] == [t.token_id for t in b.tokens]
        assert [t.logprob for t in a.tokens] == pytest.approx([t.logprob for t in b.tokens], abs=1e-4)


def test_auto_packs_on_cpu_in_float32_and_bfloat16_only() -> None:
    assert resolve_prepack("auto", CPU, torch.float32) is True
    assert resolve_prepack("auto", CPU, torch.float16) is False
    assert resolve_prepack("auto", torch.device("cuda"), torch.bfloat16) is False
    assert resolve_prepack(False, CPU, torch.float32) is False
    assert resolve_prepack(True, CPU, torch.float32) is True
    with pytest.raises(InvalidRequestError, match="prepack_weights") as err:
        resolve_prepack(True, CPU, torch.float16)
    assert "float16" in str(err.value) and "False" in str(err.value)


@pytest.mark.parametrize("bad", ["yes", 1, None, "true"])
def test_a_bad_prepack_value_is_a_typed_error_before_any_model_loads(bad) -> None:
    with pytest.raises(InvalidRequestError, match="prepack_weights") as err:
        load_pretrained("/nonexistent/model", prepack_weights=bad)  # the path is never reached
    assert repr(bad) in str(err.value) and "'auto'" in str(err.value)


def test_tiny_random_stays_unpacked_unless_asked() -> None:
    from adapters.hf import tiny_random_model

    assert not any(isinstance(m, PackedLinear) for m in tiny_random_model(kv_reuse=False).model.modules())
    packed = tiny_random_model(kv_reuse=False, prepack_weights=True)
    assert sum(isinstance(m, PackedLinear) for m in packed.model.modules()) == 15
    assert not any(isinstance(m, PackedLinear) for m in build_tiny_random()[0].modules())  # the shared one
