"""``sc-chains run critique`` / the demo's critique step: run the chain, render its trace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["cli_render", "cli_run"]


def cli_run(question: str, model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Run critique-revise once: ``options`` may hold ``mode`` and CritiqueConfig fields; the
    CLI's ``max_tokens`` (per model call) applies to critiques too."""
    from sc_chains.critique import run_critique

    opts = dict(options)
    mode = opts.pop("mode", None) or "self-refine"
    if "max_tokens" in opts:
        opts.setdefault("critique_max_tokens", opts["max_tokens"])
    result = run_critique(question, model, mode, **opts)
    result["model"] = getattr(model, "name", str(model))
    return result


def _turn_title(t: dict[str, Any]) -> str:
    conf, dist = t.get("confidence"), t.get("edit_distance")
    title = (
        f"turn {t['index'] + 1}  answer={t.get('answer')}  "
        f"confidence={'n/a' if conf is None else f'{conf:.3f}'}"
        + ("" if dist is None else f"  edit distance={dist:.2f}")
    )
    return title + (f"  echo ({t['echo']}): not an answer, kept the previous draft" if t.get("echo") else "")


def cli_render(result: dict[str, Any], console: Console) -> None:
    """Each turn's draft, critique and confidence, then the stop reason and the answer."""
    from rich.panel import Panel
    from rich.table import Table

    mode = result.get("mode", "?")
    console.print(f"[bold]critique ({mode})[/bold]  model: {result.get('model', '?')}")
    for t in result.get("turns") or []:
        console.print(Panel(t.get("text") or "", title=_turn_title(t), title_align="left", border_style="cyan"))
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
