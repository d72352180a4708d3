"""Critique-revise chains (Self-Refine, RCI, SCoRe two-attempt): run one from Python.

(The CLI's run/render hooks live in :mod:`sc_chains.cli.critique`.)

Example::

    from sc_chains.critique import run_critique
    result = run_critique("What is 12 * 7?", model="hf:default", mode="score")
    result["attempt1_answer"], result["attempt2_answer"], result["stop_reason"]
"""

from __future__ import annotations

from typing import Any

from graphs.critique import CritiqueConfig, create_critique_graph

__all__ = ["run_critique"]  # the graph, config and critics: import them from graphs.critique


def run_critique(
    question: str,
    model: Any = "hf:default",
    mode: str = "self-refine",
    *,
    reference: str | None = None,
    critic: Any = None,
    **config: Any,
) -> dict[str, Any]:
    """Run one critique-revise chain on ``question``; returns the final state (a plain dict).

    ``config`` takes any :class:`CritiqueConfig` field (``max_turns``, ``confidence_threshold``,
    ``collapse_threshold``, ``max_completion_tokens``...). ``critic``: see :func:`create_critique_graph`.
    """
    graph = create_critique_graph(model, CritiqueConfig.from_options({"mode": mode, **config}), critic=critic)
    state: dict[str, Any] = {"question": question}
    if reference is not None:
        state["reference"] = reference
    out = dict(graph.invoke(state))
    for key in ("replies", "emitted", "finished"):  # the driver's replay bookkeeping
        out.pop(key, None)
    return out
