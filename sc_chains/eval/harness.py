"""Run chains over a dataset, resumably, and summarise: ``results.jsonl`` -> ``summary.json``.

Layout of ``out_dir``: ``run.json`` (what was asked: dataset, model, seed; a rerun with another
dataset/model/seed into the same folder is refused), ``results.jsonl`` (one line per problem and
chain, with the trace; written by :mod:`sc_chains.runner`, so an interrupted run resumes),
``summary.json``, ``report.md`` and PNG plots.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters.errors import InvalidRequestError, SCChainsError
from sc_chains.datasets import Problem, load_dataset
from sc_chains.eval.chains import get_chain
from sc_chains.eval.report import markdown_table, summarize, write_plots
from sc_chains.runner import read_records, run_jobs

__all__ = ["EvalMismatchError", "run_eval"]

_META_KEYS = ("kind", "variant", "distractor", "suggested", "position")


class EvalMismatchError(SCChainsError, ValueError):
    """The output folder holds results of a different dataset, model or seed."""


def job_key(chain: str, problem: Problem) -> str:
    """The resume key of one (chain, problem) job."""
    return f"{chain}::{problem.id}"


def chain_options(dataset: str, options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Per-chain options with dataset defaults, so that S2A differs from the baseline only by its
    rewrite (values the caller set win):

    - ``rewrite``: ``"opinion"`` for sycophancy data, ``"irrelevant"`` (GSM-IC's) otherwise;
    - ``instruction``: the paper's "Answer in an unbiased way." for sycophancy data, none
      otherwise (the paper uses it against opinions, not against irrelevant sentences);
    - ``answer_format`` (plain S2A): the baseline's chain-of-thought instruction
      (:data:`~sc_chains.eval.chains.COT_INSTRUCTION`). ``s2a+leco`` answers with LECO's prompt.
    """
    from graphs.s2a.prompts import DEFAULT_INSTRUCTION
    from sc_chains.eval.chains import COT_INSTRUCTION

    out = {k: dict(v) for k, v in (options or {}).items()}
    opinion = dataset.startswith("sycophancy")
    for name in ("s2a", "s2a+leco"):
        o = out.setdefault(name, {})
        o.setdefault("rewrite", "opinion" if opinion else "irrelevant")
        o.setdefault("instruction", DEFAULT_INSTRUCTION if opinion else "")
    out["s2a"].setdefault("answer_format", COT_INSTRUCTION)
    return out


def run_eval(
    dataset: str,
    chains: Sequence[str],
    model: Any,
    *,
    model_options: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike[str],
    limit: int | None = None,
    seed: int = 0,
    concurrency: int = 4,
    retries: int = 1,
    data_path: str | os.PathLike[str] | None = None,
    fields: Mapping[str, str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate ``chains`` on ``dataset`` with ``model`` (a spec or a model); return the summary.

    ``model_options`` go to the adapter when ``model`` is a spec (e.g. ``{"dtype": "bfloat16",
    "max_batch_size": 16}`` for ``hf:``); they are part of the run's identity. ``options`` maps a chain name to overrides for its config (e.g. ``{"leco": {"max_rethinks":
    1}}``; see :func:`chain_options` for the defaults). Results already in
    ``out_dir/results.jsonl`` are kept and not run again.
    """
    from adapters.specs import resolve_model

    specs = [get_chain(c) for c in chains]
    if not specs:
        raise InvalidRequestError("chains", list(chains), "name at least one chain")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label = model if isinstance(model, str) else getattr(model, "name", type(model).__name__)
    shown_options = {k: v for k, v in (model_options or {}).items() if k != "api_key"} or None
    _check_run(out, {"dataset": dataset, "model": label, "model_options": shown_options, "seed": seed})
    problems = load_dataset(dataset, limit=limit, seed=seed, path=data_path, fields=fields)
    lm = resolve_model(model, **dict(model_options or {}))
    options = chain_options(dataset, options)

    async def job(item: tuple[Any, Problem]) -> dict[str, Any]:
        chain, problem = item
        result = await chain.run(lm, problem, options.get(chain.name, {}))
        meta = {k: problem.meta[k] for k in _META_KEYS if k in problem.meta}
        return {"chain": chain.name, "problem_id": problem.id, "question": problem.question,
                "gold": problem.answer, "meta": meta, **result}

    jobs = [(c, p) for c in specs for p in problems]
    results = out / "results.jsonl"
    stats = run_jobs(jobs, job, results, key=lambda j: job_key(j[0].name, j[1]),
                     concurrency=concurrency, retries=retries, progress=progress,
                     description=f"eval {dataset}")
    wanted = {job_key(c.name, p) for c, p in jobs}
    records = [r for r in read_records(results) if r["key"] in wanted]
    summary = summarize(records, [c.name for c in specs])
    summary.update(dataset=dataset, model=label, model_options=shown_options, seed=seed, limit=limit, problems=len(problems),
                   run={"skipped": stats.skipped, "ok": stats.ok, "failed": stats.failed,
                        "seconds": stats.seconds})
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "report.md").write_text(markdown_table(summary) + "\n")
    summary["plots"] = write_plots(summary, out) if plots else []
    return summary


def _check_run(out: Path, identity: dict[str, Any]) -> None:
    path = out / "run.json"
    if path.exists():
        before = json.loads(path.read_text())
        diff = {k: (before.get(k), v) for k, v in identity.items() if before.get(k) != v}
        if diff and (out / "results.jsonl").exists():
            shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise EvalMismatchError(
                f"{out} holds results of another run ({shown}); pass another --out folder or "
                "delete it to start over"
            )
    path.write_text(json.dumps(identity, indent=2) + "\n")
