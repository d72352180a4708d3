"""The ``sc-chains`` command line. Each subcommand lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Sequence

from adapters.errors import SCChainsError

# subcommand modules, in help order; each defines register(subparsers)
_COMMANDS = ["generate", "run", "demo", "eval", "datagen", "serve"]


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


def _check_argv(argv: Sequence[str]) -> None:
    """Refuse arguments that are not valid UTF-8 (Python keeps their bytes as lone surrogates,
    which fail later inside a tokenizer or an HTTP body)."""
    from adapters.errors import InvalidRequestError

    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("latin-1")
            raise InvalidRequestError("argument", shown, "the command line holds bytes that are not "
                                      "UTF-8; pass UTF-8 text (check the terminal's or the file's encoding)") from None


def exit_code(exc: BaseException) -> int:
    """2 for a usage error (a bad argument, spec, dataset or folder), 1 for a run that failed."""
    return 2 if isinstance(exc, (ValueError, LookupError, FileNotFoundError, FileExistsError)) else 1


def _interrupted(argv: Sequence[str]) -> None:
    words = list(argv)
    if words[:1] in (["eval"], ["datagen"]):
        command = "sc-chains " + " ".join(shlex.quote(w) for w in words)
        print("sc-chains: interrupted; every finished item is saved. Rerun the same command to resume: "
              + _one_line(command), file=sys.stderr)
    else:
        print("sc-chains: interrupted", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 run failed, 2 usage error, 130 Ctrl-C).

    Every sc-chains error prints one line (``sc-chains: error: ...``), never a traceback. On the
    real command line (``argv`` is ``None``) a Ctrl-C ends the process at once with code 130 after
    the resume hint, without waiting for the model's worker threads (what is written is already
    on disk, flushed record by record).
    """
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_argv(words)
        args = build_parser().parse_args(words)
        return int(args.func(args) or 0)
    except SCChainsError as exc:
        print(f"sc-chains: error: {_one_line(exc)}", file=sys.stderr)
        return exit_code(exc)
    except OSError as exc:  # a file or folder the command touches: one line, not a traceback
        print(f"sc-chains: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _interrupted(words)
        if argv is None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)  # worker threads inside torch would otherwise abort at interpreter exit
        return 130


def _one_line(exc: BaseException | str) -> str:
    """``exc``'s text on one line, secrets scrubbed."""
    from sc_chains.runner import scrub_record

    return " ".join(str(scrub_record(str(exc))).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
