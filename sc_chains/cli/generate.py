"""``sc-chains generate PROMPT``: one reply with per-token logprobs, coloured or as JSON."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from adapters.types import GenerationRequest
from sc_chains.cli.options import BASE_URL_HELP, MODEL_HELP, TIMEOUT_HELP

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``generate`` subcommand to the ``sc-chains`` parser."""
    parser = subparsers.add_parser(
        "generate",
        help="generate one reply and show each token's probability",
        description=(
            "Generate one reply and show each token coloured by its probability "
            "(green >= 0.9, yellow >= 0.5, orange >= 0.2, red below), or print it as JSON."
        ),
    )
    parser.add_argument("prompt", help="the user message")
    parser.add_argument(
        "--model",
        default="hf:default",
        metavar="SPEC",
        help=MODEL_HELP,
    )
    parser.add_argument("--max-tokens", type=int, default=128, metavar="N", help="most tokens to generate (default: %(default)s)")
    parser.add_argument("--top-logprobs", type=int, default=0, metavar="K", help="alternatives shown per token (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 is greedy (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="sampling seed")
    parser.add_argument("--system", default=None, metavar="TEXT", help="a system message")
    parser.add_argument("--base-url", default=None, metavar="URL", help=BASE_URL_HELP)
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help=TIMEOUT_HELP)
    parser.add_argument("--json", action="store_true", help="print one JSON object (text, tokens, usage, model, finish_reason)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``generate``; raises typed :class:`SCChainsError` subclasses for bad input."""
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.prompt}
    ]
    # validate the arguments before loading a model, so a typo fails in milliseconds
    from sc_chains.cli.options import check_numbers, server_options

    check_numbers(args, {"seed": 0})
    request = GenerationRequest.build(
        messages,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        seed=args.seed,
        top_logprobs=args.top_logprobs,
    )
    options = server_options(args.model, args.base_url, args.timeout)

    from adapters.specs import resolve_model

    model = resolve_model(args.model, **options)
    start = time.perf_counter()
    gen = model.generate(request)
    seconds = time.perf_counter() - start

    from sc_chains.render import generation_to_json

    if args.json:
        print(json.dumps(generation_to_json(gen), ensure_ascii=False))
        return 0

    from rich.console import Console

    from sc_chains.render import render_tokens

    console = Console()
    render_tokens(gen, console)
    if args.top_logprobs and gen.tokens:
        from sc_chains.render import alternatives_table

        console.print(alternatives_table(gen))
    u = gen.usage
    console.print(
        f"{gen.model or model.name} · finish: {gen.finish_reason} · tokens: {u.prompt_tokens} prompt "
        f"+ {u.completion_tokens} completion = {u.total_tokens} · {seconds:.2f}s",
        style="dim",
        soft_wrap=True,
        highlight=False,
    )
    return 0
