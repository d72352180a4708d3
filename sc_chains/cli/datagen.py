"""``sc-chains datagen KIND``: training data (TRL formats) from the self-correction graphs."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from adapters.errors import InvalidRequestError
from sc_chains.cli.options import BASE_URL_HELP, MODEL_HELP

__all__ = ["build_generator", "register", "run"]

KINDS = {
    "score": "SCoRe two-attempt conversations with answer-match rewards r1, r2 and alpha*(r2-r1)",
    "self-reward": "N sampled responses judged by the same model; (best, worst) preference pairs",
    "w2s": "weak-to-strong: stage 1 agreement SFT data, stage 2 confidence-based preference pairs",
    "leco-steps": "stepwise labels from LECO traces (kept steps True, cut steps False)",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=None, metavar="NAME", help="gsm8k, svamp, jsonl:PATH, ... (see sc-chains eval)")
    p.add_argument("--model", default="hf:default", metavar="SPEC", help=MODEL_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: raw.jsonl, train.jsonl, manifest.json")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N problems only")
    p.add_argument("--concurrency", type=int, default=4, metavar="C", help="items in flight (default: %(default)s)")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="score: traces per problem (1); self-reward: responses per prompt (4); w2s stage 2: strong samples (10)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed (default: %(default)s)")
    p.add_argument("--backend", choices=("local", "ray"), default="local", metavar="BACKEND",
                   help="local (threads) or ray (default: %(default)s)")
    p.add_argument("--ray-address", default=None, metavar="ADDR", help="existing Ray cluster (default: start one)")
    p.add_argument("--format", default=None, metavar="FMT", help="TRL format of train.jsonl (default: the kind's)")
    p.add_argument("--max-tokens", type=int, default=512, metavar="N", help="most tokens per generation")
    p.add_argument("--retries", type=int, default=2, metavar="R", help="retries of a failing item before it is recorded as failed")
    p.add_argument("--data", default=None, metavar="PATH", help="data file or folder")
    p.add_argument("--fields", default=None, metavar="MAP", help="for jsonl:PATH, e.g. question=q,answer=a")
    p.add_argument("--base-url", default=None, metavar="URL", help=BASE_URL_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print manifest.json")
    p.add_argument("--hf-dataset", action="store_true",
                   help="also save the rows as a datasets folder, OUT/hf_dataset (datasets.load_from_disk)")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``datagen`` (with one sub-subcommand per kind) to the ``sc-chains`` parser."""
    parser = subparsers.add_parser(
        "datagen", help="generate training data (TRL JSONL) from the chains",
        description="Run a generator over a dataset; write OUT/raw.jsonl (every record, resumable), "
                    "OUT/train.jsonl (TRL rows) and OUT/manifest.json. "
                    + "; ".join(f"{k}: {v}" for k, v in KINDS.items()),
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    p = kinds.add_parser("score", help=KINDS["score"])
    p.add_argument("--reward", choices=("answer_match", "program"), default="answer_match",
                   help="answer_match: the gold answer; program: the attempt's own Python, run in a sandbox, "
                        "prints its answer (runs model-written code; default: %(default)s)")
    _common(p)
    p.add_argument("--alpha", type=float, default=10.0, metavar="A", help="progress bonus weight (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=None, metavar="T", help="default: 0 for one sample, 0.7 for more")
    p = kinds.add_parser("self-reward", help=KINDS["self-reward"])
    _common(p)
    p.add_argument("--prompts", default=None, metavar="FILE", help="your prompts: .txt (one per line) or .jsonl")
    p.add_argument("--prompt-field", default="prompt", metavar="KEY", help="field of a .jsonl prompts file")
    p.add_argument("--judge-k", type=int, default=3, metavar="K", help="judge samples averaged (default: %(default)s)")
    p.add_argument("--judge-max-tokens", type=int, default=256, metavar="N", help="most tokens per judge sample")
    p.add_argument("--score-mode", choices=("mean", "expected"), default="mean", metavar="MODE",
                   help="mean: the mean sampled score, or the logprob-expected score (default: %(default)s)")
    p = kinds.add_parser("w2s", help=KINDS["w2s"])
    _common(p)
    p.add_argument("--weak-model", required=True, metavar="SPEC", help="the weak model")
    p.add_argument("--stage", type=int, choices=(1, 2), default=1, metavar="N", help="1 or 2 (default: %(default)s)")
    p.add_argument("--sft-source", choices=("weak", "strong", "both"), default="both", metavar="SOURCE",
                   help="stage 1: weak, strong or both: which solution(s) become SFT rows (default: %(default)s)")
    p = kinds.add_parser("leco-steps", help=KINDS["leco-steps"])
    _common(p)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="LecoConfig override, value as JSON (repeatable), e.g. max_rethinks=2")
    for sub in kinds.choices.values():
        sub.set_defaults(func=run)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    return parser


def _model(spec: str | None, base_url: str | None) -> Any:
    from sc_chains.datagen.common import ModelRef

    if base_url and spec and not spec.startswith("openai:"):
        raise InvalidRequestError("--base-url", base_url, "only openai: specs take a base URL")
    return ModelRef(spec, base_url=base_url) if base_url else ModelRef(spec)


def build_generator(args: argparse.Namespace) -> Any:
    """The generator an argument namespace asks for (validates before any model loads)."""
    from sc_chains import datagen as d

    model = _model(args.model, args.base_url)
    if args.kind == "score":
        cfg = d.ScoreConfig(alpha=args.alpha, reward=args.reward, samples=args.samples or 1,
                            temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens)
        return d.ScoreGenerator(model, cfg)
    if args.kind == "self-reward":
        cfg = d.SelfRewardConfig(n=args.samples or 4, judge_k=args.judge_k, score_mode=args.score_mode,
                                 judge_max_tokens=args.judge_max_tokens,
                                 seed=args.seed, max_tokens=args.max_tokens)
        return d.SelfRewardGenerator(model, cfg)
    if args.kind == "w2s":
        cfg = d.W2SConfig(stage=args.stage, samples=args.samples or 10, seed=args.seed, max_tokens=args.max_tokens)
        return d.W2SGenerator(model, _model(args.weak_model, args.base_url), cfg)
    from sc_chains.cli.eval import parse_sets

    if args.samples is not None:
        raise InvalidRequestError("--samples", args.samples, "leco-steps runs one LECO trace per problem; drop --samples")
    options = parse_sets([f"leco.{s}" for s in args.set], ["leco"]).get("leco", {})
    options.setdefault("seed", args.seed)
    options.setdefault("max_tokens", args.max_tokens)
    return d.LecoStepsGenerator(model, options)


_BOUNDS = {"limit": 1, "concurrency": 1, "samples": 1, "seed": 0, "max_tokens": 1, "retries": 0,
           "judge_k": 1, "judge_max_tokens": 1, "temperature": 0}


def check_args(args: argparse.Namespace) -> None:
    """Numbers and model specs, before anything loads."""
    from sc_chains.cli.options import check_numbers, check_spec

    check_numbers(args, _BOUNDS)
    check_spec(args.model)
    if getattr(args, "weak_model", None) is not None:
        check_spec(args.weak_model)


def load_models(gen: Any, backend: str) -> None:
    """Resolve the generator's models now, so a spec that does not load (``hf:tiny-radnom``) fails
    up front with its own error rather than as every item's failure. On Ray the workers load
    them; the spec's shape was checked by :func:`check_args`."""
    from sc_chains.datagen.common import ModelRef

    if backend == "local":
        for ref in [v for v in vars(gen).values() if isinstance(v, ModelRef)]:
            ref.get()


def _problems(args: argparse.Namespace) -> tuple[list[Any], dict[str, Any]]:
    """The problems (or prompts) to run, and the dataset's description for the manifest."""
    from sc_chains.cli.eval import parse_fields
    from sc_chains.datasets import load_dataset

    prompts = getattr(args, "prompts", None)
    if prompts:
        from sc_chains.datagen import load_prompts

        return load_prompts(prompts, args.prompt_field)[: args.limit], {"name": "prompts", "path": prompts}
    if not args.dataset:
        raise InvalidRequestError("--dataset", None, "pass --dataset NAME" + (" or --prompts FILE" if args.kind == "self-reward" else ""))
    fields = parse_fields(args.fields)
    problems = load_dataset(args.dataset, limit=args.limit, seed=args.seed, path=args.data, fields=fields)
    return problems, {"name": args.dataset, "path": args.data, "fields": fields, "seed": args.seed}


def run(args: argparse.Namespace) -> int:
    """Run ``datagen KIND``; bad arguments fail before any model is loaded. A run that wrote no
    training row (no problems, every item failed, every record dropped) prints one error line
    with the reason (the first failure's, when every item failed) and exits 1."""
    from sc_chains.datagen.run import NoTrainingRowsWarning

    check_args(args)
    gen = build_generator(args)
    problems, dataset = _problems(args)
    if problems:
        load_models(gen, args.backend)
    with warnings.catch_warnings():  # the CLI says it in its own one error line below
        warnings.simplefilter("ignore", NoTrainingRowsWarning)
        manifest = _run(args, gen, problems, dataset)
    empty = manifest.get("status") == "empty"
    if empty:  # one line on stderr, a non-zero exit: nothing to train on
        print(f"sc-chains: error: no training rows written to {args.out}: {_one_line(manifest['empty_reason'])}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        _print_counts(manifest, args.out, empty)
    return 1 if empty else 0


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _print_counts(manifest: dict[str, Any], out: str, empty: bool) -> None:
    from rich.console import Console

    c, t = manifest["counts"], manifest["tokens"]
    console = Console()
    console.print(
        f"{manifest['kind']}: {c['items']} items, {c['ok']} ok, {c['failed']} failed, {c['dropped']} dropped "
        f"-> {c['examples']} {manifest['format']} rows (yield {manifest['yield']:.0%}); "
        f"tokens {t['prompt_tokens']} prompt + {t['completion_tokens']} completion",
        markup=False, highlight=False, soft_wrap=True,
    )
    files = ",".join(["raw.jsonl", *(["train.jsonl"] if not empty else []), "manifest.json",
                      *(["hf_dataset/"] if "hf_dataset" in manifest["files"] else [])])
    console.print(f"wrote {out}/{{{files}}}", markup=False, highlight=False, soft_wrap=True)


def _run(args: argparse.Namespace, gen: Any, problems: Any, dataset: Any) -> dict[str, Any]:
    from sc_chains.datagen import run_datagen

    return run_datagen(
        gen, problems, args.out, dataset=dataset, fmt=args.format, sft_source=getattr(args, "sft_source", "both"),
        concurrency=args.concurrency, retries=args.retries, backend=args.backend, ray_address=args.ray_address,
        progress=not args.no_progress, command=["sc-chains", "datagen", *sys.argv[2:]] if sys.argv[1:2] == ["datagen"] else None,
        hf_dataset=args.hf_dataset,
    )
