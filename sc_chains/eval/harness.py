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
from sc_chains.outdir import RunMismatchError, prepare_out_dir, read_marker
from sc_chains.runner import read_records, run_jobs

__all__ = ["ChainNeedsLogprobsError", "EmptyDatasetError", "EvalMismatchError", "run_eval"]

_DATA_FILES = ("results.jsonl", "summary.json", "report.md", "run.json")
LOGPROB_CHAINS = frozenset({"leco", "leco-vote", "leco-plain", "leco-vote-plain", "s2a+leco", "s2a-filter",
                            "s2a-filter-question"})
"""Chains that score token logprobs; the others run on a model without them."""
SCORING_CHAINS = frozenset({"s2a-filter-question"})
"""Chains that score given text with the model (``capabilities.text_scores``: a local ``hf:`` model, or
``openai:`` with ``text_scores=true`` on a server that echoes prompt logprobs; checked before any problem runs)."""

_META_KEYS = ("kind", "variant", "distractor", "suggested", "position")


class EvalMismatchError(RunMismatchError):
    """The output folder holds results of a different dataset, model, options or seed."""


class EmptyDatasetError(SCChainsError, RuntimeError):
    """The dataset (after ``limit``) has no problems: nothing to evaluate (exit 1, like a datagen
    run that wrote no rows)."""

    def __init__(self, dataset: str, limit: int | None) -> None:
        self.dataset, self.limit = dataset, limit
        super().__init__(f"dataset {dataset!r} has no problems (n=0, limit={limit!r}): check the file "
                         "(and --fields) or --limit")


class ChainNeedsLogprobsError(SCChainsError, RuntimeError):
    """A chain that needs token logprobs was asked of a model that gives none."""

    def __init__(self, chains: list[str], reason: str) -> None:
        self.chains, self.reason = chains, reason
        super().__init__(f"chain(s) {', '.join(chains)} need token logprobs, and {reason} Run them "
                         "against a server that returns logprobs (llama.cpp, vLLM, OpenAI chat models), "
                         "or drop them from --chains (baseline, oracle, s2a and critique need none)")


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

    The same defaults go to every S2A chain (``s2a-fewshot``, ``s2a-filter``:
    :data:`~sc_chains.eval.chains.S2A_CHAINS`).
    """
    from graphs.s2a.prompts import DEFAULT_INSTRUCTION
    from sc_chains.eval.chains import COT_INSTRUCTION, S2A_CHAINS

    out = {k: dict(v) for k, v in (options or {}).items()}
    opinion = dataset.startswith("sycophancy")
    for name in (*S2A_CHAINS, "s2a+leco"):
        o = out.setdefault(name, {})
        o.setdefault("rewrite", "opinion" if opinion else "irrelevant")
        o.setdefault("instruction", DEFAULT_INSTRUCTION if opinion else "")
    for name in S2A_CHAINS:
        out[name].setdefault("answer_format", COT_INSTRUCTION)
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
    "max_batch_size": 16}`` for ``hf:``); they are part of the run's identity. ``options`` maps a
    chain name to overrides for its config (e.g. ``{"leco": {"max_rethinks": 1}}``; see
    :func:`chain_options` for the defaults), validated before any model loads. Results already
    in ``out_dir/results.jsonl`` are kept and not run again. Raises :class:`EmptyDatasetError`
    for no problems, :class:`ChainNeedsLogprobsError` when a chain needs logprobs the model does
    not give (before any problem runs).
    """
    from adapters.specs import resolve_model
    from sc_chains.cli.options import validate_chain_options

    specs = [get_chain(c) for c in chains]
    if not specs:
        raise InvalidRequestError("chains", list(chains), "name at least one chain")
    for name, opts in (options or {}).items():
        validate_chain_options(name, opts)
    options = chain_options(dataset, options)
    label = model if isinstance(model, str) else getattr(model, "name", type(model).__name__)
    shown_options = {k: v for k, v in (model_options or {}).items() if k != "api_key"} or None
    identity = {"dataset": dataset, "fields": dict(fields) if fields else None, "model": label,
                "model_options": shown_options, "seed": seed,
                "options": {c.name: options.get(c.name, {}) for c in specs}, "limit": limit}
    out = prepare_out_dir(out_dir, "eval", identity, data_files=_DATA_FILES, legacy=_legacy_identity,
                          merge=_merge_identity, mismatch=EvalMismatchError)
    problems = load_dataset(dataset, limit=limit, seed=seed, path=data_path, fields=fields)
    if not problems:
        raise EmptyDatasetError(dataset, limit)
    lm = resolve_model(model, **dict(model_options or {}))
    check_logprobs(lm, specs)
    _write_json(out / "run.json", read_marker(out)["identity"])  # type: ignore[index]
    jobs = [(c, p) for c in specs for p in problems]
    stats = run_jobs(jobs, _job(lm, options), out / "results.jsonl", key=lambda j: job_key(j[0].name, j[1]),
                     concurrency=concurrency, retries=retries, progress=progress,
                     description=f"eval {dataset}")
    return _summarise(out, jobs, specs, stats, identity, problems, plots)


def _job(lm: Any, options: Mapping[str, Mapping[str, Any]]) -> Any:
    """The runner's job function: one (chain, problem) -> its outcome record."""

    async def job(item: tuple[Any, Problem]) -> dict[str, Any]:
        chain, problem = item
        result = await chain.run(lm, problem, options.get(chain.name, {}))
        meta = {k: problem.meta[k] for k in _META_KEYS if k in problem.meta}
        return {"chain": chain.name, "problem_id": problem.id, "question": problem.question,
                "gold": problem.answer, "meta": meta, **result}

    return job


def _summarise(out: Path, jobs: list[tuple[Any, Problem]], specs: list[Any], stats: Any,
               identity: Mapping[str, Any], problems: list[Problem], plots: bool) -> dict[str, Any]:
    """summary.json, report.md and the plots from the folder's records of these jobs."""
    wanted = {job_key(c.name, p) for c, p in jobs}
    records = [r for r in read_records(out / "results.jsonl") if r["key"] in wanted]
    summary = summarize(records, [c.name for c in specs])
    summary.update(dataset=identity["dataset"], model=identity["model"], model_options=identity["model_options"],
                   seed=identity["seed"], limit=identity["limit"], chain_options=identity["options"],
                   problems=len(problems),
                   run={"skipped": stats.skipped, "ok": stats.ok, "failed": stats.failed,
                        "seconds": stats.seconds})
    failed = [r for r in records if r.get("status") == "failed"]
    summary["first_failure"] = failed[0].get("error") if failed else None
    _write_json(out / "summary.json", summary)
    (out / "report.md").write_text(markdown_table(summary) + "\n")
    summary["plots"] = write_plots(summary, out) if plots else []
    return summary


def check_logprobs(lm: Any, specs: Sequence[Any]) -> None:
    """Raise :class:`ChainNeedsLogprobsError` if a chain that needs token logprobs is asked of a
    model that cannot give them (its capabilities; for a server, one 1-token probe request), and
    :class:`~adapters.errors.ScoringUnavailableError` if a :data:`SCORING_CHAINS` chain is asked
    of a model that cannot score text."""
    from adapters.errors import LogprobsUnavailableError, ScoringUnavailableError

    scoring = [c.name for c in specs if c.name in SCORING_CHAINS]
    if scoring and not lm.capabilities.text_scores:
        raise ScoringUnavailableError(lm.name, f"chain(s) {', '.join(scoring)} score text with the model: run "
                                      "them with a local model (--model hf:...), with --model-option text_scores=true on an "
                                      "openai: server that echoes prompt logprobs (vLLM, sc-chains serve), or drop them "
                                      "from --chains")
    needs = [c.name for c in specs if c.name in LOGPROB_CHAINS]
    if not needs:
        return

    try:
        lm.require_logprobs()
        if type(lm).__module__.startswith("adapters.openai_compat"):
            lm.generate("Say OK.", max_tokens=1, top_logprobs=1)
    except LogprobsUnavailableError as exc:
        raise ChainNeedsLogprobsError(needs, str(exc)) from None


def _write_json(path: Path, data: Any) -> None:
    from sc_chains.runner import scrub_record

    path.write_text(json.dumps(scrub_record(json.loads(json.dumps(data, default=str))), indent=2) + "\n")


def _legacy_identity(out: Path) -> dict[str, Any] | None:
    """A pre-marker eval folder of ours: its ``run.json``."""
    try:
        data = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "dataset" in data and "model" in data else None


def _merge_identity(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Same dataset, model, options and seed; chain options compared for chains in both runs
    (adding a chain to a folder is fine); ``limit`` may change (results are keyed by problem)."""
    diff = {k: (old.get(k), new.get(k)) for k in ("dataset", "fields", "model", "model_options", "seed")
            if k in old and old.get(k) != new.get(k)}
    before, now = old.get("options") or {}, new.get("options") or {}
    for chain in sorted(set(before) & set(now)):
        if before[chain] != now[chain]:
            diff[f"options.{chain}"] = (before[chain], now[chain])
    merged = {**dict(old), **dict(new), "options": {**before, **now}}
    return merged, diff
