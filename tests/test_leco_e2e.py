"""LECO end to end on real logits: ``hf:tiny-random`` (gibberish, fast) and, marked slow, the
embedded SmolLM2 (``hf:default``) on a GSM8K-style question."""

from __future__ import annotations

import io
import json
import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rich.console import Console  # noqa: E402

from adapters.specs import resolve_model  # noqa: E402
from graphs.leco import create_leco_graph  # noqa: E402
from sc_chains.cli.leco import cli_render, cli_run  # noqa: E402

GSM = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "to her friends in May. How many clips did Natalia sell altogether in April and May?"
)


def check_structure(out: dict) -> None:
    """What every LECO run must satisfy, whatever the model wrote."""
    attempts = out["attempts"]
    assert 1 <= len(attempts) <= 4
    assert out["usage"]["calls"] == len(attempts)
    assert out["usage"]["completion_tokens"] == sum(a["usage"]["completion_tokens"] for a in attempts)
    assert out["candidates"] == [a["answer"] for a in attempts]
    assert out["stop_reason"] in {"agreement", "max_rethinks", "max_completion_tokens", "no_candidate_step"}
    assert len(out["cuts"]) == len(attempts) - 1
    for a, cut in zip(attempts[1:], out["cuts"]):
        assert a["prefix"] == cut["prefix"]  # each rethink continued from the chosen prefix
        assert a["response"].startswith(a["prefix"])
    for a in attempts:
        for s in a["steps"]:
            assert a["response"][s["start"] : s["end"]] == s["text"]
            for key in ("avg", "trans", "div", "score"):
                assert s[key] is None or math.isfinite(s[key])
            if s["avg"] is not None:
                assert 0.0 <= s["avg"] <= 1.0 and s["div"] >= 0.0
                # the step's tokens are exactly its text (no newline token inside)
                assert "\n" not in "".join(t for t, _ in s["tokens"])
    json.dumps(out)


@pytest.fixture(scope="module")
def tiny():
    return resolve_model("hf:tiny-random")


@pytest.mark.parametrize("prob_mode", ["topk", "true"])
def test_tiny_random_runs_with_prefill_and_reuses_the_kv_cache(tiny, prob_mode: str) -> None:
    out = create_leco_graph(tiny, max_tokens=48, prob_mode=prob_mode, max_rethinks=2).invoke({"question": "2+3?"})
    check_structure(out)
    assert out["regeneration_path"] == "prefill"
    assert len(out["attempts"]) >= 2  # the first attempt always has a candidate (gibberish has no skip phrase)
    # the tiny tokenizer is one character per token: each step's tokens spell the step
    for s in out["attempts"][0]["steps"]:
        assert "".join(t for t, _ in s["tokens"]) == s["text"]
    # the rethink shares the prompt (and any prefix) with the first call: served from the cache
    assert out["attempts"][1]["usage"]["cached_tokens"] > 0


def test_tiny_random_chat_fallback_and_cli(tiny) -> None:
    result = cli_run("2+3?", tiny, {"max_tokens": 40, "max_rethinks": 1, "regeneration": "chat"})
    check_structure(result)
    assert result["regeneration_path"] == "chat" and result["model"] == tiny.name
    console = Console(file=io.StringIO(), width=120, color_system=None)
    cli_render(result, console)
    shown = console.file.getvalue()
    assert "Attempt 0" in shown and "final answer" in shown


@pytest.mark.slow
def test_smollm2_on_a_gsm8k_question() -> None:
    model = resolve_model("hf:default")
    out = create_leco_graph(model, max_tokens=200, max_rethinks=2).invoke({"question": GSM})
    check_structure(out)
    first = out["attempts"][0]
    assert first["text"].strip() and len(first["steps"]) >= 2
    assert any(s["candidate"] for s in first["steps"])
    # the BPE tokens of a step lie inside the step's text, in order
    for s in first["steps"]:
        joined = "".join(t for t, _ in s["tokens"])
        assert joined == "" or joined in s["text"] or s["text"].endswith(joined.strip())
    if len(out["attempts"]) > 1:
        assert out["attempts"][1]["usage"]["cached_tokens"] > 0
