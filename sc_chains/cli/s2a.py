"""``sc-chains run s2a`` / ``s2a+leco`` and the demo's S2A step: run the chain, render its trace.

``s2a+leco`` passes ``answer="leco"`` so the answer step is the LECO graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from graphs.s2a import S2AConfig, create_s2a_graph
from graphs.s2a.parse import sentence_spans

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["ANSWER_STEPS", "cli_render", "cli_run", "original_text"]

ANSWER_STEPS = ("model", "leco", "critique")
"""What ``answer=`` accepts in :func:`cli_run`: a plain model call, the LECO or critique graph."""


def _answer_graph(kind: str, model: Any, opts: dict[str, Any]) -> Any:
    if kind == "leco":
        try:
            from graphs.leco import create_leco_graph
        except ImportError as exc:
            raise InvalidRequestError(
                "answer", "leco", f"the LECO graph is not available ({exc}); use answer='model'"
            ) from None
        leco = dict(opts.pop("leco", None) or {})  # LecoConfig fields (``run s2a+leco --set leco={...}``)
        leco.update({k: opts.pop(k) for k in ("max_rethinks",) if k in opts})
        if "max_tokens" in opts:
            leco["max_tokens"] = opts["max_tokens"]
        return create_leco_graph(model, **leco)
    from graphs.critique import create_critique_graph

    crit = {k: opts.pop(k) for k in ("mode", "max_turns") if k in opts}
    if "max_tokens" in opts:
        crit["max_tokens"] = opts["max_tokens"]
    return create_critique_graph(model, **crit)


def cli_run(question: str, model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``sc-chains run s2a`` (and ``s2a+leco``): run and return the JSON-ready result.

    ``options``: :class:`S2AConfig` fields; ``answer`` (one of :data:`ANSWER_STEPS`);
    ``max_tokens`` (both S2A calls, and the answer graph's); ``max_rethinks`` (LECO answer);
    ``mode`` / ``max_turns`` (critique answer).
    """
    opts = dict(options)
    kind = opts.pop("answer", None) or "model"
    if kind not in ANSWER_STEPS:
        raise InvalidRequestError("answer", kind, f"use one of {list(ANSWER_STEPS)}")
    llm = resolve_model(model)
    sub = None if kind == "model" else _answer_graph(kind, llm, opts)
    max_tokens = opts.pop("max_tokens", None)
    if max_tokens is not None:
        opts.setdefault("rewrite_max_tokens", max_tokens)
        opts.setdefault("answer_max_tokens", max_tokens)
    unknown = sorted(set(opts) - set(S2AConfig.option_names()))
    if unknown:
        raise InvalidRequestError(
            "options", unknown,
            f"s2a takes S2AConfig fields {list(S2AConfig.option_names())}, answer=, max_tokens=; "
            "max_rethinks needs answer='leco', mode/max_turns need answer='critique'",
        )
    result = dict(create_s2a_graph(llm, S2AConfig(**opts), answer_graph=sub).invoke({"question": question}))
    result.pop("replies", None)  # the driver's replay log: not part of the trace shown
    base = "s2a-fewshot" if opts.get("few_shot") else "s2a"
    if opts.get("mode") == "filter":
        base = "s2a-filter-question" if opts.get("filter_signal") == "question" else "s2a-filter"
    result["chain"] = base if kind == "model" else f"{base}+{kind}"
    result["model"] = getattr(llm, "name", str(model))
    return result


def original_text(result: dict[str, Any], *, marks: bool = False) -> Any:
    """The original input as a rich ``Text``, removed sentences dim and struck through; with
    ``marks`` (output without styles: a file, a pipe, ``NO_COLOR``) also between ``~~`` marks,
    so the removal still shows."""
    from rich.text import Text

    original = result.get("question", "")
    removed = set(result.get("removed") or ())
    out, pos = Text(), 0
    for a, b in sentence_spans(original):
        out.append(original[pos:a])
        sentence = original[a:b]
        if sentence in removed:
            out.append(f"~~{sentence}~~" if marks else sentence, style="dim strike")
        else:
            out.append(sentence)
        pos = b
    out.append(original[pos:])
    return out


def _score_lines(scores: list[dict[str, Any]]) -> Any:
    from rich.text import Text

    out = Text()
    for row in scores:
        score = "  ?  " if row.get("score") is None else f"{row['score']:.3f}"
        out.append(f"{score}  {'kept   ' if row.get('kept') else 'DROPPED'}  ", style="" if row.get("kept") else "bold red")
        out.append(str(row.get("text", "")) + "\n", style="" if row.get("kept") else "dim strike")
    return out


def _plain(console: Console) -> bool:
    """Whether ``console`` drops styles (not a terminal, or NO_COLOR): strike-through would not show."""
    return not console.is_terminal or console.no_color or console.color_system is None


def cli_render(result: dict[str, Any], console: Console) -> None:
    """The original (removed sentences struck through), the rewrite, the answer, the usage."""
    from rich.panel import Panel
    from rich.text import Text

    console.print(f"[bold]{result.get('chain', 's2a')}[/bold]  model: {result.get('model', '?')}")
    plain = _plain(console)
    title = ("original (~~struck~~: removed by the rewrite or filter)" if plain
             else "original (struck: removed by the rewrite or filter)")
    console.print(Panel(original_text(result, marks=plain), title=title))
    status = result.get("parse_status", "?")
    rewrite = Text()
    if result.get("context"):
        rewrite.append("context: ", style="bold")
        rewrite.append(result["context"] + "\n")
    if result.get("query"):
        rewrite.append("question: ", style="bold")
        rewrite.append(result["query"])
    style = "green" if status == "ok" else "yellow"
    title = f"rewrite (parse: [{style}]{status}[/{style}])"
    console.print(Panel(rewrite, title=title))
    scores = result.get("sentence_scores") or []
    if scores:
        by_question = scores[0].get("p_yes") is None and scores[0].get("score") is not None
        what = ("the question's log-probability gain from each context sentence, left out one at a time (nats)"
                if by_question else "relevance per context sentence (P(yes) / (P(yes) + P(no)))")
        console.print(Panel(_score_lines(scores), title=f"filter: {what}"))
    if status != "ok":
        console.print(Text(f"fallback: {result.get('parse_reason', '')}", style="yellow"))
    trace = result.get("answer_trace") or {}
    if trace:
        console.print(Text(f"answer step trace keys: {', '.join(sorted(trace))}", style="dim"))
    console.print(Panel(Text(result.get("response") or "(no response)"), title="response"))
    stop = result.get("stop_reason", "")
    console.print(f"[bold]answer:[/bold] {result.get('answer')}" + (f"  (stop: {stop})" if stop != "done" else ""))
    usage = result.get("usage") or {}
    console.print(
        f"[dim]calls {usage.get('calls', 0)}, prompt tokens {usage.get('prompt_tokens', 0)}, "
        f"completion tokens {usage.get('completion_tokens', 0)}[/dim]"
    )
