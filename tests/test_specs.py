from __future__ import annotations

import pytest

from adapters.errors import UnknownModelSpecError
from adapters.specs import resolve_model
from sc_chains.testing import FakeLogprobModel


@pytest.mark.parametrize("spec", ["", "gpt-4o", "hf:", "anthropic:claude", 42, None])
def test_unknown_specs_name_the_value_and_the_valid_forms(spec) -> None:
    with pytest.raises(UnknownModelSpecError) as info:
        resolve_model(spec)
    assert info.value.spec == spec
    assert repr(spec) in str(info.value) and "hf:default" in str(info.value)


def test_a_logprob_model_passes_through() -> None:
    fake = FakeLogprobModel(["x"])
    assert resolve_model(fake) is fake


def test_an_option_the_adapter_does_not_take_is_named_with_the_valid_ones() -> None:
    from adapters.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as info:
        resolve_model("openai:some-model", base_url="http://127.0.0.1:9/v1", dtype="bfloat16")
    assert info.value.value == "dtype" and "base_url" in str(info.value)
    pytest.importorskip("torch")
    with pytest.raises(InvalidRequestError, match="'dtyp'.*hf: specs take device, dtype"):
        resolve_model("hf:tiny-random", dtyp="bfloat16")
