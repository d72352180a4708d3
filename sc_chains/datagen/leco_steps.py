"""``leco-steps``: stepwise supervision from LECO traces (TRL's stepwise format).

LECO cuts a solution at its least-confident step and regenerates from there. When the final
solution is correct (vs the gold answer), its steps are labelled ``True``; an earlier attempt
that was cut, whose kept prefix the final solution continues and whose own answer was wrong,
gives a second sequence: the steps before the cut ``True``, the cut step and everything after
it ``False`` (the process-reward convention: nothing after the first error counts as right).
Every step carries its LECO confidence (``score``) and mean token probability (``avg``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from graphs.answers import answers_equal
from sc_chains.datagen.common import ModelRef, PerProblem
from sc_chains.datasets import Problem

__all__ = ["LecoStepsGenerator", "step_sequences"]


def _sequence(attempt: Mapping[str, Any], labels: list[bool]) -> dict[str, Any]:
    steps = attempt["steps"]
    return {
        "attempt": attempt["index"],
        "steps": [s["text"] for s in steps],
        "confidences": [s["score"] for s in steps],
        "avg": [s["avg"] for s in steps],
        "labels": labels,
    }


def step_sequences(
    attempts: Sequence[Mapping[str, Any]],
    cuts: Sequence[Mapping[str, Any]],
    final_response: str,
    reference: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Labelled step sequences of one LECO trace, and a drop reason when there are none.

    ``attempts``/``cuts`` as in :class:`graphs.leco.LecoState`. Drops: ``"no_reference"``,
    ``"final_incorrect"`` (the final answer is not the gold one, so no step is known good).
    """
    if not reference:
        return [], "no_reference"
    final = next((a for a in reversed(attempts) if a["response"] == final_response), None)
    if final is None or not answers_equal(final["answer"], reference):
        return [], "final_incorrect"
    out = [_sequence(final, [True] * len(final["steps"]))]
    for cut in cuts:
        a = attempts[cut["attempt"]]
        leads_to_final = a["index"] < final["index"] and final["response"].startswith(cut["prefix"])
        if leads_to_final and not answers_equal(a["answer"], reference):
            out.append(_sequence(a, [i < cut["step"] for i in range(len(a["steps"]))]))
    return out, None


class LecoStepsGenerator(PerProblem):
    """One LECO run per problem, turned into labelled step sequences; see the module docstring."""

    kind = "leco-steps"
    formats = ("stepwise",)
    default_format = "stepwise"

    def __init__(self, model: Any, options: Mapping[str, Any] | None = None) -> None:
        from graphs.leco import LecoConfig

        self.model = ModelRef(model)
        self.config = LecoConfig.from_options(dict(options or {}))

    def __call__(self, problem: Problem) -> dict[str, Any]:
        from graphs.leco import create_leco_graph

        state = create_leco_graph(self.model.get(), self.config).invoke({"question": problem.question})
        attempts = [{k: v for k, v in a.items() if k != "steps"}
                    | {"steps": [{k: v for k, v in s.items() if k != "tokens"} for s in a["steps"]]}
                    for a in state["attempts"]]
        sequences, drop = step_sequences(attempts, state.get("cuts", []), state["response"], problem.answer)
        return {
            "kind": self.kind, "problem_id": problem.id, "question": problem.question,
            "reference": problem.answer, "answer": state["answer"], "response": state["response"],
            "correct": answers_equal(state["answer"], problem.answer), "stop_reason": state.get("stop_reason"),
            "attempts": attempts, "cuts": state.get("cuts", []), "sequences": sequences, "drop": drop,
            "usage": dict(state["usage"]),
        }

    def describe(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()}
