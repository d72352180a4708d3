"""``sc-chains generate`` and the rendering helpers behind it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from adapters.fake import FakeLogprobModel, FakeReply
from adapters.types import Generation, TokenLogprob, TopLogprob, Usage
from sc_chains.cli import main
from sc_chains.render import (
    generation_to_json,
    prob_style,
    render_tokens,
    token_segments,
    tokens_text,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "hf:tiny-random"]


# -- pure helpers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "style"),
    [(1.0, "green"), (0.9, "green"), (0.899, "yellow"), (0.5, "yellow"), (0.49, "dark_orange"),
     (0.2, "dark_orange"), (0.19, "red"), (0.0, "red"), (float("nan"), "red"), (-1.0, "red")],
)
def test_prob_style_bands(p: float, style: str) -> None:
    assert prob_style(p) == style


def test_generation_to_json_shape() -> None:
    gen = Generation(
        text="Hi there",
        tokens=(
            TokenLogprob("Hi", -0.01, 0, (TopLogprob("Hi", -0.01), TopLogprob("Hello", -4.6))),
            TokenLogprob(" there", -0.7, 2, (TopLogprob(" there", -0.7), TopLogprob("!", -0.9))),
        ),
        finish_reason="length",
        usage=Usage(4, 2, 1),
        model="m",
    )
    assert generation_to_json(gen) == {
        "text": "Hi there",
        "tokens": [
            {"token": "Hi", "logprob": -0.01, "top_logprobs": [{"token": "Hi", "logprob": -0.01}, {"token": "Hello", "logprob": -4.6}]},
            {"token": " there", "logprob": -0.7, "top_logprobs": [{"token": " there", "logprob": -0.7}, {"token": "!", "logprob": -0.9}]},
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6, "cached_tokens": 1},
        "model": "m",
        "finish_reason": "length",
    }
    assert generation_to_json(Generation("x", None))["tokens"] is None


def test_token_segments_cover_the_text_exactly() -> None:
    gen = Generation("ab€cd", (TokenLogprob("ab", -1, 0), TokenLogprob("", -1, 2), TokenLogprob("€c", -1, 2), TokenLogprob("d", -1, 4)))
    pieces = token_segments(gen)
    assert [p for p, _ in pieces] == ["ab", "", "€c", "d"]
    assert token_segments(Generation("plain", None)) == [("plain", None)]
    assert token_segments(Generation("", ())) == []


def test_render_tokens_colours_each_token_by_probability() -> None:
    gen = FakeLogprobModel([FakeReply("sure maybe no", logprobs=(math.log(0.95), math.log(0.6), math.log(0.1)))]).generate("q")
    console = Console(record=True, width=80, color_system="truecolor", force_terminal=True)
    render_tokens(gen, console)
    text = console.export_text()
    assert text.splitlines()[0] == "sure maybe no"
    assert "p(token)" in text and "≥ 0.9" in text and "< 0.2" in text
    spans = {gen.text[s.start : s.end]: str(s.style) for s in tokens_text(gen).spans}
    assert spans == {"sure": "green", " maybe": "yellow", " no": "red"}


# -- the command --------------------------------------------------------------------------------
def test_generate_json_on_tiny_hf(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "hi", *TINY, "--json", "--max-tokens", "5", "--top-logprobs", "2"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)  # exactly one JSON object, nothing else
    assert set(data) == {"text", "tokens", "usage", "model", "finish_reason"}
    assert len(data["tokens"]) == 5 == data["usage"]["completion_tokens"]
    assert data["finish_reason"] == "length"
    for tok in data["tokens"]:
        assert math.isfinite(tok["logprob"]) and tok["logprob"] <= 0
        assert len(tok["top_logprobs"]) == 2
        assert tok["top_logprobs"][0]["logprob"] >= tok["top_logprobs"][1]["logprob"]
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + 5


def test_generate_plain_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "hi", *TINY, "--max-tokens", "4", "--system", "Be brief.", "--seed", "3"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert "finish: length" in lines[-1] and "4 completion" in lines[-1]
    assert any("p(token)" in line for line in lines)


def test_generate_unknown_spec_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "hi", "--model", "nosuch:model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sc-chains: error:") and "nosuch:model" in err


def test_generate_bad_max_tokens_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "hi", *TINY, "--max-tokens", "0"]) == 2
    assert "max_tokens" in capsys.readouterr().err


def test_base_url_only_for_openai_specs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "hi", *TINY, "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "--base-url" in capsys.readouterr().err


def test_generate_uses_an_adapter_object_through_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI passes every option into the request the adapter receives."""
    fake = FakeLogprobModel(default=FakeReply("forty two"))
    import adapters.specs

    monkeypatch.setattr(adapters.specs, "resolve_model", lambda spec, **kw: fake)
    args = ["generate", "q", "--model", "x:y", "--json", "--max-tokens", "7", "--top-logprobs", "3",
            "--temperature", "0.5", "--seed", "11", "--system", "sys"]
    assert main(args) == 0
    req = fake.calls[-1]
    assert (req.max_tokens, req.top_logprobs, req.temperature, req.seed) == (7, 3, 0.5, 11)
    assert list(req.messages) == [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    assert json.loads(capsys.readouterr().out)["text"] == "forty two"


@pytest.mark.slow  # a subprocess run of several seconds (over 15 s on a busy machine)
def test_console_script_json() -> None:
    script = Path(sys.executable).parent / "sc-chains"
    assert script.exists(), f"console script missing at {script}; pip install -e ."
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [str(script), "generate", "hello", *TINY, "--json", "--max-tokens", "3", "--top-logprobs", "1"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["tokens"]) == 3 and all(len(t["top_logprobs"]) == 1 for t in data["tokens"])


@pytest.mark.slow
def test_generate_on_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "What is 2 + 3? Answer with a number.", "--json", "--max-tokens", "8", "--top-logprobs", "3"])
    assert code == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "hf:default"
    assert data["text"] and data["text"].startswith(data["tokens"][0]["token"])
    assert all(len(t["top_logprobs"]) == 3 for t in data["tokens"])
