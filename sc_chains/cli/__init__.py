"""The ``sc-chains`` command line. Each subcommand lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from adapters.errors import SCChainsError

# subcommand modules, in help order; each defines register(subparsers)
_COMMANDS = ["generate", "run", "demo", "eval", "datagen", "llama_server"]

# transformers' notice about its own KV-cache argument name: nothing a user of the CLI can act on
warnings.filterwarnings("ignore", message=r".*past_key_values.* is deprecated", category=FutureWarning)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sc-chains",
        description="Self-correcting LLM chains: S2A, LECO, critique-revise; logprob adapters.",
    )
    from sc_chains import __version__

    parser.add_argument("--version", action="version", version=f"sc-chains {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"sc_chains.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SCChainsError as exc:
        print(f"sc-chains: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
