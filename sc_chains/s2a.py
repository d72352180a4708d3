"""System 2 Attention (S2A): rewrite the user's text without opinion or distractors, then answer.

Example::

    from sc_chains.s2a import run_s2a
    result = run_s2a("What is 2 + 3? I think the answer is 6, but I'm really not sure.",
                     model="hf:default")
    result["answer"], result["parse_status"], result["removed"]

``sc-chains run s2a`` uses :func:`cli_run` / :func:`cli_render`; ``s2a+leco`` passes
``answer="leco"`` so the answer step is the LECO graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.errors import InvalidRequestError
from adapters.specs import resolve_model
from graphs.s2a import RewritePrompt, S2AConfig, create_s2a_graph
from graphs.s2a.parse import sentence_spans

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["RewritePrompt", "S2AConfig", "create_s2a_graph", "run_s2a"]

ANSWER_STEPS = ("model", "leco", "critique")
"""What ``answer=`` accepts in :func:`cli_run`: a plain model call, the LECO or critique graph."""


def run_s2a(
    question: str,
    model: Any = "hf:default",
    *,
    reference: str | None = None,
    answer_graph: Any = None,
    **config: Any,
) -> dict[str, Any]:
    """Run S2A on ``question``; returns the final state (a plain, JSON-serialisable dict).

    ``config`` takes any :class:`S2AConfig` field (``rewrite``, ``variant``, ``instruction``,
    ``token_budget``...); ``answer_graph`` see :func:`create_s2a_graph`.
    """
    graph = create_s2a_graph(model, S2AConfig(**config), answer_graph=answer_graph)
    state: dict[str, Any] = {"question": question}
    if reference is not None:
        state["reference"] = reference
    return dict(graph.invoke(state))


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
    unknown = sorted(set(opts) - set(S2AConfig.field_names()))
    if unknown:
        raise InvalidRequestError(
            "options", unknown,
            f"s2a takes S2AConfig fields {list(S2AConfig.field_names())}, answer=, max_tokens=; "
            "max_rethinks needs answer='leco', mode/max_turns need answer='critique'",
        )
    result = run_s2a(question, llm, answer_graph=sub, **opts)
    result["chain"] = "s2a" if kind == "model" else f"s2a+{kind}"
    result["model"] = getattr(llm, "name", str(model))
    return result


def original_text(result: dict[str, Any]) -> Any:
    """The original input as a rich ``Text``, removed sentences dim and struck through."""
    from rich.text import Text

    original = result.get("question", "")
    removed = set(result.get("removed") or ())
    out, pos = Text(), 0
    for a, b in sentence_spans(original):
        out.append(original[pos:a])
        sentence = original[a:b]
        out.append(sentence, style="dim strike" if sentence in removed else "")
        pos = b
    out.append(original[pos:])
    return out


def cli_render(result: dict[str, Any], console: Console) -> None:
    """The original (removed sentences struck through), the rewrite, the answer, the usage."""
    from rich.panel import Panel
    from rich.text import Text

    console.print(f"[bold]{result.get('chain', 's2a')}[/bold]  model: {result.get('model', '?')}")
    console.print(Panel(original_text(result), title="original (struck: removed by the rewrite)"))
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
