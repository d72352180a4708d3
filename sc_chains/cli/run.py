"""``sc-chains run CHAIN "QUESTION" --model SPEC [--json]``: one correction chain, traced.

Each chain module (``sc_chains.leco``, ``sc_chains.s2a``, ``sc_chains.critique``) provides
``cli_run(question, model, options) -> dict`` and ``cli_render(result, console)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

# chain name -> (module, extra options)
CHAINS: dict[str, tuple[str, dict[str, Any]]] = {
    "leco": ("sc_chains.leco", {}),
    "s2a": ("sc_chains.s2a", {}),
    "s2a+leco": ("sc_chains.s2a", {"answer": "leco"}),
    "critique": ("sc_chains.critique", {}),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a correction chain on one question and show its trace",
        description="Run a self-correction chain (leco, s2a, s2a+leco, critique) on one question. "
                    "Every reply ends as soon as it starts repeating a line or sentence it already wrote.",
    )
    p.add_argument("chain", choices=sorted(CHAINS), help="which chain")
    p.add_argument("question", help="the question (or the whole user turn)")
    p.add_argument("--model", default="hf:default", help="model spec (default: hf:default)")
    p.add_argument("--base-url", default=None, help="server URL for openai: specs")
    p.add_argument("--mode", default=None, choices=["self-refine", "rci", "score"], help="critique mode")
    p.add_argument("--max-tokens", type=int, default=None, help="tokens per model call")
    p.add_argument("--max-rethinks", type=int, default=None, help="LECO: most rethinks")
    p.add_argument("--max-turns", type=int, default=None, help="critique: most revise turns")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from adapters.specs import resolve_model

    module_name, extra = CHAINS[args.chain]
    module = importlib.import_module(module_name)
    opts = {"base_url": args.base_url} if args.base_url else {}
    from sc_chains.demo_examples import RepetitionStop  # a reply ends when it starts repeating itself

    model = RepetitionStop(resolve_model(args.model, **opts))
    options: dict[str, Any] = dict(extra)
    for key in ("mode", "max_tokens", "max_rethinks", "max_turns"):
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    result = module.cli_run(args.question, model, options)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        module.cli_render(result, Console())
    return 0
