"""Critique-revise chains (Self-Refine, RCI, SCoRe two-attempt): public API and CLI hooks.

Example::

    from sc_chains.critique import run_critique, answer_match_verifier
    result = run_critique("What is 12 * 7?", model="hf:default", mode="score")
    result["attempt1_answer"], result["attempt2_answer"], result["stop_reason"]
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from adapters.errors import InvalidRequestError
from graphs.critique import CritiqueConfig, answer_match_verifier, create_critique_graph

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = [
    "CritiqueConfig",
    "answer_match_verifier",
    "create_critique_graph",
    "run_critique",
]

_CONFIG_FIELDS = {f.name for f in fields(CritiqueConfig)}


def _config(mode: str, options: dict[str, Any]) -> CritiqueConfig:
    unknown = sorted(set(options) - _CONFIG_FIELDS)
    if unknown:
        raise InvalidRequestError(
            "options", unknown, f"critique options are CritiqueConfig fields: {sorted(_CONFIG_FIELDS)}"
        )
    return CritiqueConfig(mode=mode, **options)  # type: ignore[arg-type]


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
    ``collapse_threshold``, ``token_budget``...). ``critic``: see :func:`create_critique_graph`.
    """
    graph = create_critique_graph(model, _config(mode, config), critic=critic)
    state: dict[str, Any] = {"question": question}
    if reference is not None:
        state["reference"] = reference
    return dict(graph.invoke(state))


def cli_run(question: str, model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``sc-chains run critique``: ``options`` may hold ``mode`` and CritiqueConfig fields."""
    opts = dict(options)
    mode = opts.pop("mode", None) or "self-refine"
    if "max_tokens" in opts:  # the CLI's --max-tokens is per model call: critiques too
        opts.setdefault("critique_max_tokens", opts["max_tokens"])
    result = run_critique(question, model, mode, **opts)
    result["model"] = getattr(model, "name", str(model))
    return result


def cli_render(result: dict[str, Any], console: Console) -> None:
    """Each turn's draft, critique and confidence, then the stop reason and the answer."""
    from rich.panel import Panel
    from rich.table import Table

    mode = result.get("mode", "?")
    console.print(f"[bold]critique ({mode})[/bold]  model: {result.get('model', '?')}")
    for t in result.get("turns", []):
        conf = t.get("confidence")
        dist = t.get("edit_distance")
        title = (
            f"turn {t['index'] + 1}  answer={t.get('answer')}  "
            f"confidence={'n/a' if conf is None else f'{conf:.3f}'}"
            + ("" if dist is None else f"  edit distance={dist:.2f}")
        )
        console.print(Panel(t.get("text") or "", title=title, title_align="left", border_style="cyan"))
        if t.get("critique"):
            verdict = {True: "approved", False: "not approved", None: "no verdict"}[t.get("approved")]
            if mode == "score":
                verdict = "correction instruction"
            extra = f"  review={t['review']}" if t.get("review") else ""
            console.print(
                Panel(t["critique"], title=f"critique: {verdict}{extra}", title_align="left", border_style="magenta")
            )
    table = Table(show_header=False, box=None)
    table.add_row("stop reason", str(result.get("stop_reason")))
    table.add_row("answer", str(result.get("answer")))
    table.add_row("attempt 1 -> final", f"{result.get('attempt1_answer')} -> {result.get('attempt2_answer')}")
    usage = result.get("usage") or {}
    table.add_row(
        "usage",
        f"{usage.get('calls', 0)} calls, {usage.get('prompt_tokens', 0)} prompt + "
        f"{usage.get('completion_tokens', 0)} completion tokens",
    )
    console.print(table)
