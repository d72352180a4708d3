"""``sc-chains run sc``: self-consistency (k sampled solutions, majority vote), traced."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["cli_render", "cli_run"]

_RESULT_KEYS = ("answer", "response", "candidates", "votes", "usage", "stop_reason")


def cli_run(question: str, model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Run self-consistency once; ``options``: :class:`graphs.sc.ScConfig` fields."""
    from adapters.specs import resolve_model
    from graphs.sc import ScConfig, create_sc_graph

    llm = resolve_model(model)
    cfg = ScConfig.from_options(dict(options))
    start = time.perf_counter()
    state = create_sc_graph(llm, cfg).invoke({"question": question})
    result: dict[str, Any] = {"chain": "sc", "model": llm.name, "question": question}
    result.update({k: state.get(k) for k in _RESULT_KEYS})
    result["seconds"] = round(time.perf_counter() - start, 3)
    result["config"] = {k: v for k, v in asdict(cfg).items() if k != "system_prompt"}
    return result


def cli_render(result: dict[str, Any], console: Console) -> None:
    """Each sample's answer, the vote table, the answer and the cost."""
    from rich.table import Table

    console.print(f"[bold]self-consistency[/bold]  model: {result.get('model', '?')}")
    samples = Table(title="samples", show_lines=False)
    for col in ("#", "answer", "finish", "tokens"):
        samples.add_column(col)
    for c in result.get("candidates") or []:
        samples.add_row(str(c["index"]), str(c["answer"]), c["finish_reason"], str(c["usage"]["completion_tokens"]))
    console.print(samples)
    votes = Table(title="vote")
    for col in ("answer", "votes", "samples"):
        votes.add_column(col)
    for g in result.get("votes") or []:
        votes.add_row(g["answer"], f"{g['weight']:g}", ", ".join(map(str, g["members"])))
    console.print(votes)
    usage = result.get("usage") or {}
    console.print(f"answer: [bold]{result.get('answer')}[/bold]   "
                  f"({usage.get('calls', 0)} calls, {usage.get('completion_tokens', 0)} completion tokens)")
