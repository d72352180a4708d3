"""``sc-chains demo``: the main job. Runs the three correction loops on the embedded model.

It shows S2A removing an opinion, LECO scoring steps and cutting at the least-confident one,
and a critique-revise turn, each with its trace rendered for a person.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Any

S2A_QUESTION = (
    "Mary has 3 boxes with 4 pencils in each box. She gives away 5 pencils. "
    "I think the answer is 12, but I'm really not sure. How many pencils does Mary have left?"
)
LECO_QUESTION = (
    "A baker makes 24 muffins. He sells 9 in the morning and 7 in the afternoon. "
    "How many muffins are left?"
)
CRITIQUE_QUESTION = "Tom has 5 apples and buys 3 bags with 4 apples each. How many apples does he have?"

# (title, chain in the registry sc_chains.eval.chains, question, options)
STEPS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("S2A: rewrite the context, drop the opinion, then answer", "s2a", S2A_QUESTION, {}),
    ("LECO: score each step, cut at the least confident, rethink", "leco", LECO_QUESTION, {}),
    ("Critique-revise: draft, critique, revise", "critique", CRITIQUE_QUESTION, {"mode": "self-refine", "max_turns": 1}),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    from sc_chains.cli.options import MODEL_HELP

    p = subparsers.add_parser(
        "demo",
        help="the three correction loops on the embedded model, traced",
        description="Run S2A, LECO and critique-revise on the embedded default model and show their traces.",
    )
    p.add_argument("--model", default="hf:default", metavar="SPEC", help=MODEL_HELP + "; hf:default is the embedded SmolLM2")
    p.add_argument("--only", choices=["s2a", "leco", "critique"], default=None, metavar="CHAIN",
                   help="run one loop only: s2a, leco or critique")
    p.add_argument("--max-tokens", type=int, default=160, metavar="N", help="most tokens per model call (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the traces as JSON instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.rule import Rule

    from adapters.specs import resolve_model
    from sc_chains.cli.options import check_numbers, check_spec

    check_numbers(args, {"max_tokens": 1})
    check_spec(args.model)
    console = Console(stderr=args.json)
    with console.status(f"loading {args.model} ..."):
        model = resolve_model(args.model)
    results = {}
    from sc_chains.eval.chains import cli_chains

    registry = cli_chains()
    for title, key, question, options in STEPS:
        if args.only and key != args.only:
            continue
        module_name, extra = registry[key]
        module = importlib.import_module(module_name)
        options = {**extra, **options}
        console.print(Rule(f"[bold]{title}"))
        start = time.perf_counter()
        with console.status("thinking ..."):
            result = module.cli_run(question, model, {"max_tokens": args.max_tokens, **options})
        results[key] = result
        if not args.json:
            module.cli_render(result, console)
            console.print(f"[dim]{time.perf_counter() - start:.1f}s[/dim]")
    if args.json:
        json.dump(results, sys.stdout, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    return 0
