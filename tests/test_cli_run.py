"""`sc-chains run CHAIN` and `sc-chains demo`, end to end on hf:tiny-random."""

from __future__ import annotations

import json

import pytest

from sc_chains.cli import main


@pytest.mark.parametrize(
    ("chain", "extra", "keys"),
    [
        ("leco", ["--max-rethinks", "1"], {"answer", "attempts", "cuts", "vote", "usage"}),
        ("s2a", [], {"answer", "rewrite", "parse_status", "removed", "usage"}),
        ("s2a+leco", [], {"answer", "rewrite", "usage"}),
        ("critique", ["--mode", "score"], {"answer", "turns", "stop_reason", "usage"}),
        ("critique-self", ["--mode", "score"], {"answer", "turns", "stop_reason", "usage"}),
        ("critique-program", [], {"answer", "turns", "stop_reason", "usage"}),
        ("critique-program", ["--set", "program_samples=2", "--set", "seed=0"], {"answer", "turns", "stop_reason", "usage"}),
        ("sc", ["--set", "k=3"], {"answer", "candidates", "votes", "usage"}),
        ("leco-vote", [], {"answer", "attempts", "cuts", "vote", "usage"}),
    ],
)
def test_run_json(chain: str, extra: list[str], keys: set[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", chain, "What is 2 + 3?", "--model", "hf:tiny-random", "--max-tokens", "16", "--json", *extra])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert keys <= set(result), sorted(result)
    assert result["usage"]["calls"] >= 1


def test_run_renders_for_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "leco", "What is 2 + 3?", "--model", "hf:tiny-random", "--max-tokens", "16"]) == 0
    assert "Attempt" in capsys.readouterr().out


def test_run_sc_and_leco_vote_render_for_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "sc", "What is 2 + 3?", "--model", "hf:tiny-random", "--max-tokens", "8",
                 "--set", "k=2"]) == 0
    out = capsys.readouterr().out
    assert "self-consistency" in out and "vote" in out
    assert main(["run", "leco-vote", "What is 2 + 3?", "--model", "hf:tiny-random", "--max-tokens", "16",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["rethink_samples"] == 4  # the registry's leco-vote settings
    assert len(result["attempts"]) == 1 + 4 * len(result["cuts"])


def test_run_rejects_an_option_the_chain_does_not_take(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "leco", "q", "--model", "hf:tiny-random", "--max-turns", "2"])
    assert code == 2
    assert "max_turns" in capsys.readouterr().err
    code = main(["run", "critique-program", "q", "--model", "hf:tiny-random", "--set", "program_samples=0"])
    assert code == 2
    assert "program_samples" in capsys.readouterr().err


def test_demo_runs_each_method_against_its_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", "hf:tiny-random", "--max-tokens", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["methods"]) == {"s2a", "leco", "critique"}
    for method, entry in result["methods"].items():
        record = entry["record"]
        assert {"gold", "baseline", "method", "flip", "baseline_cost", "method_cost"} <= set(record), method
        assert record["method_cost"]["calls"] >= 2
    assert result["methods"]["s2a"]["record"]["suggested"]


def test_demo_refuses_a_bad_cap_before_loading(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--max-tokens", "0"]) == 2
    assert "--max-tokens" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_on_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    """The main job, as the README's first command runs it: at least one correction fixes a wrong
    answer, the correct answers are shown, and the committed counts are printed."""
    assert main(["demo", "--only", "s2a"]) == 0  # the whole demo: tests/test_readme_shell.py::test_demo_sh_runs
    out = capsys.readouterr().out
    assert "S2A" in out and "LECO" not in out
    assert out.count("correct answer:") == 1 and "on the demo set" in out
    assert "wrong->right" in out, out
    assert "Warning" not in out
