"""``sc-chains eval``: run chains over a dataset; results.jsonl, summary.json, a table, plots."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from adapters.errors import InvalidRequestError
from sc_chains.cli.options import BASE_URL_HELP, MODEL_HELP, MODEL_OPTION_HELP, parse_model_options, parse_sets  # parse_sets: re-exported

__all__ = ["parse_fields", "parse_sets", "register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to the ``sc-chains`` parser."""
    from sc_chains.datasets import DATASETS
    from sc_chains.eval.chains import CHAINS

    parser = subparsers.add_parser(
        "eval",
        help="evaluate chains on a dataset (accuracy with 95%% CI, flips, cost)",
        description=(
            "Run each chain on each problem of a dataset and write OUT/results.jsonl (one line "
            "per problem and chain, with the trace; an interrupted run resumes where it stopped), "
            "OUT/summary.json, OUT/report.md and PNG plots. Chains: "
            + "; ".join(f"{c.name}: {c.description}" for c in CHAINS.values())
        ),
    )
    parser.add_argument("--dataset", required=True, metavar="NAME",
                        help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--chains", default="baseline", metavar="LIST",
                        help="comma-separated chain names (default: %(default)s)")
    parser.add_argument("--model", default="hf:default", metavar="SPEC",
                        help=MODEL_HELP)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="first N problems only (N >= 1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of constructed variants (distractors, wrong suggestions)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: eval-runs/DATASET--MODEL)")
    parser.add_argument("--concurrency", type=int, default=4, metavar="C",
                        help="problems in flight at once (default: %(default)s)")
    parser.add_argument("--retries", type=int, default=1, metavar="R",
                        help="retries of a failing problem before it is recorded as failed")
    parser.add_argument("--data", default=None, metavar="PATH", help="data file or folder")
    parser.add_argument("--fields", default=None, metavar="MAP",
                        help="for jsonl:PATH, e.g. question=q,answer=a[,id=uid]")
    parser.add_argument("--set", action="append", default=[], metavar="CHAIN.KEY=VALUE",
                        help="chain config override, value as JSON (repeatable), e.g. leco.max_rethinks=1")
    parser.add_argument("--base-url", default=None, metavar="URL", help=BASE_URL_HELP)
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE", help=MODEL_OPTION_HELP)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    parser.set_defaults(func=run)
    return parser


def parse_fields(text: str | None) -> dict[str, str] | None:
    """``"question=q,answer=a"`` -> ``{"question": "q", "answer": "a"}``."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise InvalidRequestError("--fields", text, "write ROLE=KEY pairs, e.g. question=q,answer=a")
        out[k.strip()] = v.strip()
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``eval``; bad names and arguments fail before any model is loaded; a run in which
    every item failed raises :class:`~sc_chains.runner.NothingSucceededError` (exit 1)."""
    from sc_chains.eval.harness import run_eval
    from sc_chains.eval.report import markdown_table

    chains, options, model_options = _checked(args)
    slug = re.sub(r"[^\w.\-]+", "_", f"{args.dataset}--{args.model}")
    out = args.out or f"eval-runs/{slug}"
    summary = run_eval(
        args.dataset, chains, args.model, model_options=model_options, out_dir=out, limit=args.limit, seed=args.seed,
        concurrency=args.concurrency, retries=args.retries, data_path=args.data,
        fields=parse_fields(args.fields), options=options, progress=not args.no_progress,
        plots=not args.no_plots,
    )
    _raise_if_nothing_succeeded(summary, out)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(markdown_table(summary))  # plain print: a markdown table must not be wrapped
    files = ["results.jsonl", "summary.json", "report.md"] + [p.rsplit("/", 1)[-1] for p in summary["plots"]]
    print(f"\nwrote {out}/{{{','.join(files)}}}")
    return 0


def _checked(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]], dict[str, Any]]:
    """Chains, their validated ``--set`` options and the model options; raises on a bad argument."""
    from sc_chains.cli.options import check_numbers, check_spec
    from sc_chains.eval.chains import get_chain

    check_numbers(args, {"limit": 1, "concurrency": 1, "retries": 0, "seed": 0})
    check_spec(args.model)
    chains = [c.strip() for c in args.chains.split(",") if c.strip()]
    if not chains:
        raise InvalidRequestError("--chains", args.chains, "name at least one chain, e.g. baseline,leco")
    for c in chains:
        get_chain(c)
    options = parse_sets(args.set, chains)
    model_options = parse_model_options(args.model_option)
    if args.base_url:
        if not str(args.model).startswith("openai:"):
            raise InvalidRequestError("--base-url", args.base_url, "only openai: specs take a base URL")
        model_options["base_url"] = args.base_url
    return chains, options, model_options


def _raise_if_nothing_succeeded(summary: dict[str, Any], out: str) -> None:
    from sc_chains.runner import NothingSucceededError

    n = sum(e.get("n", 0) for e in summary["chains"].values())
    failed = sum(e.get("failed", 0) for e in summary["chains"].values())
    if n and failed == n:
        raise NothingSucceededError("eval", failed, summary.get("first_failure"), f"{out}/results.jsonl")
