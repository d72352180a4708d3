"""Evaluation: run chains over a dataset and measure accuracy, flips and cost (``sc-chains eval``)."""

from __future__ import annotations

__all__ = ["CHAINS", "run_eval"]


def __getattr__(name: str):  # lazy: importing sc_chains.eval stays light
    if name == "run_eval":
        from sc_chains.eval.harness import run_eval

        return run_eval
    if name == "CHAINS":
        from sc_chains.eval.chains import CHAINS

        return CHAINS
    raise AttributeError(f"module 'sc_chains.eval' has no attribute {name!r}")
