"""``sc-chains run CHAIN "QUESTION" --model SPEC [--json]``: one correction chain, traced.

The chains come from the one registry, :mod:`sc_chains.eval.chains`; each one's CLI module
(``sc_chains.cli.leco``, ``sc_chains.cli.s2a``, ``sc_chains.cli.critique``) provides
``cli_run(question, model, options) -> dict`` and ``cli_render(result, console)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from sc_chains.cli.options import BASE_URL_HELP, MODEL_HELP, MODEL_OPTION_HELP, TIMEOUT_HELP
from sc_chains.eval.chains import cli_chains

# chain name -> (module, extra options), from the one registry
CHAINS: dict[str, tuple[str, dict[str, Any]]] = cli_chains()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a correction chain on one question and show its trace",
        description="Run a self-correction chain (" + ", ".join(sorted(CHAINS)) + ") on one question. "
                    "Every option is checked before the model loads, and every reply ends as soon as it "
                    "starts repeating a line or sentence it already wrote.",
    )
    p.add_argument("chain", choices=sorted(CHAINS), metavar="CHAIN", help=f"one of {', '.join(sorted(CHAINS))}")
    p.add_argument("question", metavar="QUESTION", help="the question (or the whole user turn)")
    p.add_argument("--model", default="hf:default", metavar="SPEC",
                   help=MODEL_HELP)
    p.add_argument("--base-url", default=None, metavar="URL", help=BASE_URL_HELP)
    p.add_argument("--mode", default=None, choices=["self-refine", "rci", "score"], metavar="MODE",
                   help="critique: self-refine, rci or score (default: self-refine)")
    p.add_argument("--max-tokens", type=int, default=None, metavar="N", help="most tokens per model call")
    p.add_argument("--max-rethinks", type=int, default=None, metavar="N", help="leco, s2a+leco: most rethinks")
    p.add_argument("--max-turns", type=int, default=None, metavar="N", help="critique: most revise turns")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="chain config override, value as JSON (repeatable), e.g. max_rethinks=1; checked "
                        "like eval --set (s2a+leco: S2A fields, and leco={...} for its LECO step)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help=TIMEOUT_HELP)
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE", help=MODEL_OPTION_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def chain_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``args`` give the chain, validated (same code as ``eval --set``)."""
    from sc_chains.cli.options import check_numbers, parse_run_sets, validate_chain_options

    check_numbers(args, {"max_tokens": 1, "max_rethinks": 0, "max_turns": 0})
    options: dict[str, Any] = dict(CHAINS[args.chain][1])
    for key in ("mode", "max_tokens", "max_rethinks", "max_turns"):
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    options.update(parse_run_sets(args.set))
    name, checked = _as_config_options(args.chain, options)
    validate_chain_options(name, checked, mode_default="self-refine", label="")
    return options


def _as_config_options(chain: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``run``'s options as the config keys of the chain they are checked against (``cli_run``
    spreads ``max_tokens`` over S2A's two calls and sends ``max_rethinks`` to the LECO step)."""
    if not chain.startswith("s2a"):  # a registry-fixed critic is no config field
        return chain, {k: v for k, v in options.items() if k != "critic"}
    opts = {k: v for k, v in options.items() if k not in ("answer", "max_tokens", "max_rethinks")}
    if "max_tokens" in options:
        opts.setdefault("rewrite_max_tokens", options["max_tokens"])
        opts.setdefault("answer_max_tokens", options["max_tokens"])
    if options.get("answer") != "leco":
        opts.update({k: options[k] for k in ("max_rethinks",) if k in options})  # unknown to s2a: refused
        return "s2a", opts
    leco = opts.get("leco", {})
    if isinstance(leco, dict):  # a non-object is refused by the validator
        leco = {**leco, **{k: options[k] for k in ("max_rethinks", "max_tokens") if k in options}}
    opts["leco"] = leco
    return "s2a+leco", opts


def run(args: argparse.Namespace) -> int:
    from adapters.specs import resolve_model
    from sc_chains.cli.options import check_spec, parse_model_options, server_options

    check_spec(args.model)
    options = chain_options(args)
    model_options = {**parse_model_options(args.model_option), **server_options(args.model, args.base_url, args.timeout)}
    module = importlib.import_module(CHAINS[args.chain][0])
    from sc_chains.demo_examples import RepetitionStop  # a reply ends when it starts repeating itself

    model = RepetitionStop(resolve_model(args.model, **model_options))
    result = module.cli_run(args.question, model, options)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        module.cli_render(result, Console())
    return 0
