"""``sc-chains serve --model SPEC``: the OpenAI-compatible correction server (see sc_chains.server)."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the chains as an OpenAI-compatible API (model name = chain)",
        description="Serve chat completions whose model names are chains (baseline, s2a, leco, critique, "
        "s2a+leco) over one upstream model. Stop with Ctrl-C or SIGTERM: in-flight requests finish first.",
    )
    p.add_argument("--model", default="hf:default", help="upstream model spec (default: hf:default)")
    p.add_argument("--base-url", default=None, help="server URL for openai: specs (key from OPENAI_API_KEY)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="require 'Authorization: Bearer KEY', KEY read from environment variable NAME")
    p.add_argument("--max-body-bytes", type=int, default=None, help="largest request body (default: 1 MiB)")
    p.add_argument("--max-prompt-chars", type=int, default=None, help="most prompt characters (default: 100000)")
    p.add_argument("--request-timeout", type=float, default=None, help="seconds per request (default: 600)")
    p.add_argument("--graceful-timeout", type=float, default=None,
                   help="seconds in-flight requests get on shutdown (default: 30)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from adapters.errors import InvalidRequestError
    from sc_chains.server.config import ServerConfig
    from sc_chains.server.run import require_serve_extra, serve

    require_serve_extra()
    from adapters.secrets import clean_api_key

    key = None
    if args.api_key_env is not None:
        key = clean_api_key(os.environ.get(args.api_key_env), f"${args.api_key_env}")
        if not key:
            raise InvalidRequestError("--api-key-env", args.api_key_env,
                                      f"set the environment variable {args.api_key_env} to the key clients must send")
    opts = {name: getattr(args, attr) for name, attr in (
        ("max_body_bytes", "max_body_bytes"), ("max_prompt_chars", "max_prompt_chars"),
        ("request_timeout_s", "request_timeout"), ("graceful_timeout_s", "graceful_timeout"))
        if getattr(args, attr) is not None}
    config = ServerConfig(host=args.host, port=args.port, api_key=key, log_level=args.log_level, **opts)
    from adapters.specs import resolve_model

    model = resolve_model(args.model, **({"base_url": args.base_url} if args.base_url else {}))
    serve(model, config)
    return 0
