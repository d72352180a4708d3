"""``sc-chains demo``: the main job. Each correction method on a problem where it works, honestly.

For S2A, LECO and critique-revise it runs one problem of the demo's seeded sets
(:mod:`sc_chains.demo_examples`) live, greedy, and shows the correct answer next to the plain
answer and the corrected one, what the correction changed and why (the sentence S2A dropped;
the step LECO cut and its scores; the critique and the revision), and what it cost. The problem
shown is the first one the method fixed in the committed run of ``benchmarks/demo_set.py``
(``benchmarks/results/demo_set.json``), and the demo prints how often the method helped and
hurt on that whole set, so no failure is hidden.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from graphs.s2a.parse import sentence_spans
from sc_chains.demo_examples import DEMO_SEED, METHODS, Problem, RepetitionStop, compare, problems_for

DEMO_SET = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "demo_set.json"
"""The committed run the demo reads its counts and its examples from."""

TITLES = {
    "s2a": "S2A: rewrite the prompt without the opinion, then answer the rewrite",
    "leco": "LECO: score each step, cut at the least confident, regenerate from there",
    "critique": "Critique-revise (Self-Refine): draft, critique, revise",
}
BASELINES = {
    "s2a": "plain answer to the prompt as written",
    "leco": "LECO's first attempt (one chain-of-thought call)",
    "critique": "the first draft",
}
RENDERERS = {m: (f"sc_chains.cli.{m}",) for m in METHODS}
"""Where each method's trace renderer (``cli_render(result, console)``) lives."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from sc_chains.cli.options import MODEL_HELP

    p = subparsers.add_parser(
        "demo",
        help="each correction method on a problem where it works, with its record on a small set",
        description="Run S2A, LECO and critique-revise live on problems from the demo's seeded sets; "
                    "show the correct answer, the plain and corrected answers, what changed and why, the "
                    "cost, and how often each method helped and hurt in the committed run "
                    "(benchmarks/results/demo_set.json).",
    )
    p.add_argument("--model", default="hf:default", metavar="SPEC",
                   help=MODEL_HELP + "; hf:default is the embedded SmolLM2-135M-Instruct")
    p.add_argument("--only", choices=list(METHODS), default=None, metavar="METHOD",
                   help="run one method only: s2a, leco or critique")
    p.add_argument("--max-tokens", type=int, default=None, metavar="N",
                   help="cap every model call at N tokens (default: the committed run's settings; a cap "
                        "makes the committed counts no longer describe the run)")
    p.add_argument("--json", action="store_true", help="print the records and traces as JSON instead")
    p.set_defaults(func=run)


def load_demo_set(path: Path = DEMO_SET) -> dict[str, Any]:
    """The committed run (``{}`` when absent, e.g. in an installed wheel)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def pick_example(method: str, demo_set: dict[str, Any]) -> tuple[Problem, dict[str, Any] | None, str]:
    """The problem to show: the first one ``method`` fixed (i->c) in the committed run, else the
    first of its set; with its committed record and a sentence saying why it was picked."""
    records = sorted(demo_set.get("methods", {}).get(method, {}).get("records", []), key=lambda r: r["id"])
    fixed = [r for r in records if r["flip"] == "i->c"]
    record = fixed[0] if fixed else (records[0] if records else None)
    pid = record["id"] if record else 0
    problem = problems_for(method, pid + 1, demo_set.get("seed", DEMO_SEED))[pid]
    if fixed:
        why = f"problem #{pid}: the first of the set that {method} fixed in the committed run"
    elif records:
        why = f"problem #{pid}: {method} fixed no problem of the set in the committed run; this is the first"
    else:
        why = f"problem #{pid} (no committed run found at {DEMO_SET})"
    return problem, record, why


def _render_trace(method: str, record: dict[str, Any], state: dict[str, Any], model: str, console: Any) -> None:
    result = {**state, "chain": method, "model": model, "question": record["question"]}
    for name in RENDERERS[method]:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "cli_render"):
            module.cli_render(result, console)
            return


def suggestion_kept(suggested: str | None, rewrite: str) -> str | None:
    """The rewrite's sentence that still carries the suggested number, if any (pure)."""
    if not suggested:
        return None
    for a, b in sentence_spans(rewrite):
        if re.search(rf"(?<![\d.]){re.escape(str(suggested))}(?![\d]|\.\d)", rewrite[a:b]):
            return rewrite[a:b].strip()
    return None


def _mark(ok: bool) -> str:
    return "[green]right[/green]" if ok else "[red]wrong[/red]"


def what_changed(method: str, state: dict[str, Any], suggested: str | None = None) -> list[str]:
    """One or two sentences: what the correction changed and why (``suggested``: the wrong answer
    the prompt suggested, for S2A)."""
    if method == "s2a":
        removed = state.get("removed") or []
        dropped = "; ".join(repr(s) for s in removed) if removed else "nothing"
        seen = " ".join(f"{state.get('context') or ''} {state.get('query') or ''}".split())
        lines = [f"the rewrite left out {dropped} (parse: {state.get('parse_status')}); the answer step saw "
                 f"only the rewrite: {seen[:240]!r}"]
        kept = suggestion_kept(suggested, seen)
        if kept:
            lines.append(f"the rewrite still states the suggested answer ({kept!r}): the opinion was reworded, "
                         "not removed, and the answer step did not follow it this time")
        return lines
    if method == "leco":
        cuts = state.get("cuts") or []
        lines = []
        for c in cuts:
            lows = ", ".join(f"step {i + 1}: {s:.3f}" for i, s in zip(c["lowest"], c["lowest_scores"]))
            lines.append(f"attempt {c['attempt']}: cut at step {c['step'] + 1}, the earlier of the two least "
                         f"confident steps ({lows}); kept {c['step']} step(s), regenerated the rest.")
        lines.append(f"answers per attempt {state.get('candidates')}, stop: {state.get('stop_reason')}, "
                     f"vote: {state.get('vote')}")
        return lines
    turns = state.get("turns") or []
    crit = next((t for t in turns if t.get("critique")), None)
    if crit is None:
        return [f"no critique was made (stop: {state.get('stop_reason')})"]
    verdict = {True: "correct", False: "incorrect", None: "no verdict"}[crit.get("approved")]
    first = " ".join(str(crit["critique"]).split())[:240]
    return [f"the critique (verdict: {verdict}) said: {first!r}",
            f"the revision answered {state.get('answer')!r} (stop: {state.get('stop_reason')})."]


def _cost(c: dict[str, Any]) -> str:
    tokens = c.get("completion_tokens", c.get("total_tokens"))
    kind = "generated" if "completion_tokens" in c else "total"
    out = f"{c.get('calls', 0)} call(s), {tokens} tokens {kind}"
    return out + (f", {c['seconds']:.1f}s" if "seconds" in c else "")


def set_summary(method: str, demo_set: dict[str, Any]) -> str:
    """How often ``method`` helped and hurt in the committed run, in one sentence."""
    s = demo_set.get("methods", {}).get(method, {}).get("summary")
    if not s:
        return f"no committed run of {method} (run benchmarks/demo_set.py to make one)"
    line = (f"on the demo set ({s['n']} problems, {demo_set.get('model')}, seed {demo_set.get('seed')}, greedy): "
            f"plain answers right {s['baseline_correct']}/{s['n']}, after {method} {s['method_correct']}/{s['n']}; "
            f"fixed (wrong->right) {s['i->c']}, broken (right->wrong) {s['c->i']}")
    if "baseline_says_suggested" in s:
        line += (f"; answers equal to the suggested wrong answer: {s['baseline_says_suggested']} -> "
                 f"{s['method_says_suggested']}")
    return line + f"; {s['method_seconds']}s of {method} in all."


def show(method: str, record: dict[str, Any], state: dict[str, Any], committed: dict[str, Any] | None,
         why: str, demo_set: dict[str, Any], console: Any) -> None:
    """The trace, then the verdict panel: answers, what changed, cost, the set's record."""
    from rich.panel import Panel

    _render_trace(method, record, state, state.get("_model", ""), console)
    lines = [
        f"[bold]correct answer: {record['gold']}[/bold]",
        f"{BASELINES[method]}: {record['baseline']} ({_mark(record['baseline_correct'])})",
        f"after {method}: {record['method']} ({_mark(record['method_correct'])})",
    ]
    if "suggested" in record:
        lines.append(f"the prompt suggested the wrong answer {record['suggested']}")
    lines += [f"why: {x}" for x in what_changed(method, state, record.get("suggested"))]
    lines.append(f"cost: {method} {_cost(record['method_cost'])}; plain {_cost(record['baseline_cost'])}")
    if committed is not None and committed["flip"] != record["flip"]:
        lines.append(f"[yellow]this live run went {record['flip']}; the committed run went {committed['flip']}[/yellow]")
    lines.append(f"[dim]{why}[/dim]")
    lines.append(set_summary(method, demo_set))
    console.print(Panel("\n".join(lines), title=f"{method}: {record['flip']}", title_align="left"))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.rule import Rule

    from adapters.specs import resolve_model

    from sc_chains.cli.options import check_numbers, check_spec

    check_numbers(args, {"max_tokens": 1})
    check_spec(args.model)
    console = Console(stderr=args.json)
    demo_set = load_demo_set()
    total = time.perf_counter()
    with console.status(f"loading {args.model} ..."):
        model = RepetitionStop(resolve_model(args.model))
    if demo_set and demo_set.get("model") != args.model:
        console.print(f"[yellow]The committed counts are for {demo_set.get('model')}; the examples run on "
                      f"{args.model}. `python benchmarks/demo_set.py --model {args.model} --out FILE` "
                      "measures this model.[/yellow]")
    out: dict[str, Any] = {"model": args.model, "seed": demo_set.get("seed", DEMO_SEED), "methods": {}}
    for method in METHODS:
        if args.only and method != args.only:
            continue
        problem, committed, why = pick_example(method, demo_set)
        console.print(Rule(f"[bold]{TITLES[method]}"))
        console.print(f"[bold]question:[/bold] {problem.question}")
        with console.status(f"{method}: thinking ..."):
            record, state = compare(method, model, problem, args.max_tokens)
        state["_model"] = model.name
        out["methods"][method] = {"record": record, "why": why, "committed": committed}
        if not args.json:
            show(method, record, state, committed, why, demo_set, console)
    out["seconds"] = round(time.perf_counter() - total, 1)
    if args.json:
        json.dump(out, sys.stdout, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        console.print(f"[dim]demo: {out['seconds']}s in all, model load included[/dim]")
    return 0
