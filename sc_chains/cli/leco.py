"""``sc-chains run leco`` / the demo's LECO step: run the chain, render its trace."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from graphs.leco import LecoConfig, create_leco_graph

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["cli_render", "cli_run"]

_RESULT_KEYS = (
    "answer", "response", "usage", "attempts", "cuts", "candidates", "vote", "status", "stop_reason",
    "regeneration_path", "tokens_generated",
)


def cli_run(question: str, model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``sc-chains run leco``: run and return a JSON-serialisable result."""
    from adapters.specs import resolve_model

    llm = resolve_model(model)
    cfg = LecoConfig.from_options(options)
    graph = create_leco_graph(llm, cfg)
    start = time.perf_counter()
    state = graph.invoke({"question": question})
    result: dict[str, Any] = {"chain": "leco", "model": llm.name, "question": question}
    result.update({k: state.get(k) for k in _RESULT_KEYS})
    result["seconds"] = round(time.perf_counter() - start, 3)
    result["config"] = {k: v for k, v in asdict(cfg).items() if k != "system_prompt"}
    return result


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def cli_render(result: dict[str, Any], console: Console) -> None:
    """Each attempt's steps with their three scores (tokens coloured by probability), the cut
    step and why, then the answers, the vote and the final answer."""
    from rich.table import Table
    from rich.text import Text

    from sc_chains.render import legend, prob_style

    cuts = {c["attempt"]: c for c in result.get("cuts") or []}
    for att in result.get("attempts") or []:
        how = "first attempt" if att["path"] == "initial" else f"rethink {att['index']} ({att['path']})"
        table = Table(title=Text(f"Attempt {att['index']}: {how}, answer {att['answer']!r}", style="bold"),
                      title_justify="left", show_lines=False, expand=True)
        table.add_column("#", justify="right", width=3)
        table.add_column("step", ratio=1, overflow="fold")
        for name in ("avg", "trans", "div", "score"):
            table.add_column(name, justify="right", width=6)
        table.add_column("", width=6)
        cut = cuts.get(att["index"])
        for s in att["steps"]:
            if s["start"] < len(att["prefix"]):
                table.add_row(str(s["index"] + 1), Text(s["text"], style="dim"), "", "", "", "", Text("kept", style="dim"))
                continue
            text = Text()
            for tok, p in s["tokens"]:
                text.append(tok, style=prob_style(p))
            if not s["tokens"]:
                text.append(s["text"], style="dim")
            mark = Text("")
            if cut and cut["step"] == s["index"]:
                mark = Text("◀ cut", style="bold red")
            elif cut and s["index"] in cut["lowest"]:
                mark = Text("low", style="yellow")
            elif not s["candidate"] and s["tokens"]:
                mark = Text("skip", style="dim")
            style = "on grey23" if cut and cut["step"] == s["index"] else ""
            table.add_row(str(s["index"] + 1), text,
                          Text(_fmt(s["avg"]), style=prob_style(s["avg"]) if s["avg"] is not None else ""),
                          _fmt(s["trans"]), _fmt(s["div"]), _fmt(s["score"]), mark, style=style)
        console.print(table)
        if cut:
            lows = ", ".join(f"step {i + 1}: {_fmt(v)}" for i, v in zip(cut["lowest"], cut["lowest_scores"]))
            n = cut["step"]
            kept = "nothing kept" if n == 0 else "step 1 kept" if n == 1 else f"steps 1-{n} kept"
            console.print(Text(
                f"  cut at step {n + 1}: the earlier of the two lowest-scoring steps ({lows}); "
                f"{kept}, regenerated from there.", style="red"))
    answers = result.get("candidates") or []
    console.print(Text(f"answers per attempt: {answers}   stop: {result.get('stop_reason')}"))
    vote = result.get("vote") or {}
    if vote:
        console.print(Text("vote (first answer 1.5, others 1.0): "
                           + ", ".join(f"{a}={w:g}" for a, w in sorted(vote.items(), key=lambda kv: -kv[1]))))
    usage = result.get("usage") or {}
    final = Text(f"final answer: {result.get('answer')}", style="bold")
    final.append(f"   (tokens: {usage.get('prompt_tokens', 0)} prompt, {usage.get('cached_tokens', 0)} cached, "
                 f"{usage.get('completion_tokens', 0)} generated over {usage.get('calls', 0)} calls)", style="")
    console.print(final)
    console.print(legend())
