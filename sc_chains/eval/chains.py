"""The one chain registry: ``sc-chains eval``, ``sc-chains run`` and ``sc-chains demo`` read it.

Each chain turns (model, problem) into an outcome for the eval; the ones with a ``cli`` entry
also have ``sc-chains run`` / demo hooks (``cli_run(question, model, options)`` and
``cli_render(result, console)`` in the named module).

An outcome is ``{"answer", "correct", "response", "usage", "wall_s", "trace"}``; two-attempt
chains (``critique``, SCoRe protocol) add ``"answer_t1"``, ``"correct_t1"``, ``"response_t1"``.
Graph modules are imported lazily inside each chain, so this registry loads without them.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import LogprobModel
from graphs.answers import extract_answer
from graphs.common import add_usage, usage_of
from sc_chains.datasets import Problem
from sc_chains.eval.metrics import check_answer

__all__ = ["BASELINE_PROMPT", "CHAINS", "COT_INSTRUCTION", "S2A_CHAINS", "Chain", "cli_chains", "get_chain"]

COT_INSTRUCTION = (
    'Solve this problem step by step. Finish with a last line of the form "The answer is X." '
    "where X is the final answer."
)
"""The chain-of-thought instruction of the baseline, also S2A's answer format in evals."""

BASELINE_PROMPT = "{question}\n\n" + COT_INSTRUCTION
"""The plain chain-of-thought prompt of the ``baseline`` and ``oracle`` chains."""

_SKIP_TRACE = {"question", "reference", "answer", "response", "usage", "replies", "emitted", "finished"}
"""State keys not copied into an outcome's trace (the driver's replay log holds every token logprob)."""
Outcome = dict[str, Any]
RunFn = Callable[[LogprobModel, Problem, Mapping[str, Any]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Chain:
    """One evaluable chain."""

    name: str
    """Registry name (``--chains``)."""
    description: str
    """One line for ``--help`` and reports."""
    run: RunFn
    """``await run(model, problem, options) -> outcome``; options are per-chain overrides."""
    two_attempt: bool = False
    """Whether outcomes carry first-attempt fields (``answer_t1``, ``correct_t1``)."""
    cli: tuple[str, dict[str, Any]] | None = None
    """``sc-chains run`` / demo: the module with ``cli_run`` / ``cli_render`` and the options it
    adds (``None``: eval only)."""


def outcome(problem: Problem, answer: str | None, response: str, usage: Mapping[str, int] | None,
            wall_s: float, trace: Mapping[str, Any]) -> Outcome:
    """The outcome dict, with correctness checked against the problem's gold answer."""
    return {
        "answer": answer,
        "correct": check_answer(answer, problem.answer),
        "response": response,
        "usage": add_usage(None, usage),
        "wall_s": wall_s,
        "trace": dict(trace),
    }


async def _cot(model: LogprobModel, question: str, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    start = time.perf_counter()
    prompt = BASELINE_PROMPT.format(question=question)
    gen = await model.agenerate(
        [{"role": "user", "content": prompt}],
        max_tokens=int(options.get("max_tokens", 512)),
        temperature=float(options.get("temperature", 0.0)),
    )
    return outcome(problem, extract_answer(gen.text), gen.text, usage_of(gen),
                   time.perf_counter() - start, {"prompt": prompt, "finish_reason": gen.finish_reason})


async def run_baseline(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """One plain chain-of-thought call on the problem as given."""
    return await _cot(model, problem.question, problem, options)


async def run_oracle(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """The baseline on the clean problem (``meta["oracle"]``; the question itself if none)."""
    return await _cot(model, problem.meta.get("oracle", problem.question), problem, options)


async def _graph(factory: str, model: LogprobModel, problem: Problem, options: Mapping[str, Any],
                 **fixed: Any) -> tuple[Outcome, dict[str, Any]]:
    module, _, name = factory.rpartition(".")
    create = getattr(importlib.import_module(module), name)
    graph = create(model, **{**fixed, **options})
    start = time.perf_counter()
    state = await graph.ainvoke({"question": problem.question})
    trace = {k: v for k, v in state.items() if k not in _SKIP_TRACE}
    result = outcome(problem, state.get("answer"), state.get("response") or "", state.get("usage"),
                     time.perf_counter() - start, trace)
    return result, state


async def run_s2a(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """System 2 Attention: rewrite the input, then answer the rewrite."""
    return (await _graph("graphs.s2a.create_s2a_graph", model, problem, options))[0]


S2A_CHAINS: dict[str, dict[str, Any]] = {
    "s2a": {},
    "s2a-fewshot": {"few_shot": True},
    "s2a-filter": {"mode": "filter"},
    "s2a-filter-question": {"mode": "filter", "filter_signal": "question"},
}
"""The S2A chains and the :class:`~graphs.s2a.S2AConfig` settings each fixes (one loop, three
ways to clean the input: the paper's zero-shot rewrite, the rewrite after two worked examples of
its format, the per-sentence relevance filter by a yes/no question or by the question's own
likelihood with each sentence left out). The eval's dataset defaults apply to each
(:func:`sc_chains.eval.harness.chain_options`); per-run options override these."""


async def run_s2a_fewshot(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """S2A whose rewrite prompt comes after two worked examples of its labelled format."""
    return (await _graph("graphs.s2a.create_s2a_graph", model, problem, {**S2A_CHAINS["s2a-fewshot"], **options}))[0]


async def run_s2a_filter(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """S2A as a filter: one-token yes/no relevance score per context sentence, the clearly
    lowest dropped, the question always kept; then the answer call."""
    return (await _graph("graphs.s2a.create_s2a_graph", model, problem, {**S2A_CHAINS["s2a-filter"], **options}))[0]


async def run_s2a_filter_question(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """S2A as a filter by the question's likelihood: each context sentence's leave-one-out gain
    in ``log P(question)`` (no generation), the lowest negative one dropped; then the answer call."""
    opts = {**S2A_CHAINS["s2a-filter-question"], **options}
    return (await _graph("graphs.s2a.create_s2a_graph", model, problem, opts))[0]


async def run_leco(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """LECO: keep the confident steps, regenerate from the least confident one."""
    return (await _graph("graphs.leco.create_leco_graph", model, problem, options))[0]


LECO_VOTE = {"rethink_samples": 4, "rethink_temperature": 0.7, "max_rethinks": 1, "seed": 0}
"""The ``leco-vote`` chain's LECO settings: one cut, 4 sampled continuations of the kept prefix
(one batch), all voting with the draft (weight ``first_weight``)."""


async def run_leco_vote(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """LECO with sampled rethinks: k continuations of the kept prefix in one batch, every one votes."""
    return (await _graph("graphs.leco.create_leco_graph", model, problem, {**LECO_VOTE, **options}))[0]


def _plain() -> dict[str, Any]:
    from graphs.leco.prompts import PLAIN_FORMAT

    return dict(PLAIN_FORMAT)


async def run_leco_plain(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """LECO drafting in the plain chain-of-thought format (no ``Step N:`` system prompt)."""
    return (await _graph("graphs.leco.create_leco_graph", model, problem, {**_plain(), **options}))[0]


async def run_leco_vote_plain(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """``leco-vote`` drafting in the plain chain-of-thought format, as ``sc`` samples."""
    return (await _graph("graphs.leco.create_leco_graph", model, problem, {**LECO_VOTE, **_plain(), **options}))[0]


async def run_s2a_leco(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """S2A whose answer step is the LECO graph (LECO overrides under ``options["leco"]``)."""
    from graphs.leco import create_leco_graph

    answerer = create_leco_graph(model, **dict(options.get("leco", {})))
    opts = {k: v for k, v in options.items() if k != "leco"}
    return (await _graph("graphs.s2a.create_s2a_graph", model, problem, opts, answer_graph=answerer))[0]


async def run_critique(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """Critique-revise in SCoRe mode with the default critic: the disagreement gate samples a
    second solution and the draft is revised only when its answer differs (do no harm)."""
    return await _two_attempt(model, problem, options)


async def run_critique_gate(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """The default critique without the confirmation step (``gate_confirm=False``): behind the
    disagreement gate, the revision always stands (the default before confirmation)."""
    return await _two_attempt(model, problem, {"gate_confirm": False, **options})


async def run_critique_self(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """Critique-revise in SCoRe mode, ungated (``critic="self"``): exactly two attempts, the
    intrinsic self-correction the papers found harmful without an external signal."""
    return await _two_attempt(model, problem, options, critic="self")


async def _two_attempt(model: LogprobModel, problem: Problem, options: Mapping[str, Any], **fixed: Any) -> Outcome:
    result, state = await _graph("graphs.critique.create_critique_graph", model, problem, options,
                                 mode="score", **fixed)
    first = _first_attempt(state)
    result["answer_t1"] = first.get("answer")
    result["correct_t1"] = check_answer(first.get("answer"), problem.answer)
    result["response_t1"] = first.get("response") or ""
    return result


async def run_sc(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """Self-consistency: ``k`` sampled solutions in one batch, majority vote (``graphs.sc``)."""
    return (await _graph("graphs.sc.create_sc_graph", model, problem, options))[0]


async def run_critique_program(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """Critique whose critic runs a program in the sandbox (opt-in: this chain runs model-written
    code): when the program's printed answer disagrees with the draft's, the program's answer wins."""
    return await _program(model, problem, options, "program")


async def run_critique_program_vote(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """The program critic whose disagreement a sampled second solution can overrule."""
    return await _program(model, problem, options, "vote")


async def run_critique_program_revise(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """The program critic whose disagreement the model resolves by revising its draft."""
    return await _program(model, problem, options, "revise")


PROGRAM_SAMPLES = 5
"""Programs sampled by ``critique-program-sc`` (as many as ``sc`` samples solutions)."""


async def run_critique_program_sc(model: LogprobModel, problem: Problem, options: Mapping[str, Any]) -> Outcome:
    """The program critic with :data:`PROGRAM_SAMPLES` sampled programs voting with the draft
    (program-aided self-consistency); the winning program's answer replaces the draft."""
    return await _program(model, problem, options, "program", samples=PROGRAM_SAMPLES, seed=0)


async def _program(model: LogprobModel, problem: Problem, options: Mapping[str, Any], resolve: str,
                   **critic: Any) -> Outcome:
    from graphs.critique.program import ProgramCritic

    result, state = await _graph("graphs.critique.create_critique_graph", model, problem, options,
                                 critic=ProgramCritic(resolve=resolve, **critic))  # type: ignore[arg-type]
    first = _first_attempt(state)
    result["answer_t1"] = first.get("answer")
    result["correct_t1"] = check_answer(first.get("answer"), problem.answer)
    result["response_t1"] = first.get("response") or ""
    return result


def _first_attempt(state: Mapping[str, Any]) -> dict[str, Any]:
    """The first draft of a critique state: ``{"answer", "response"}``."""
    if "attempt1_response" in state:
        return {"answer": state.get("attempt1_answer"), "response": state["attempt1_response"]}
    turns = state.get("turns") or []
    if turns:  # a run that stopped before ``finish`` (e.g. interrupted): the first draft
        text = turns[0].get("text") or ""
        return {"answer": turns[0].get("answer", extract_answer(text)), "response": text}
    return {"answer": state.get("answer"), "response": state.get("response") or ""}


CHAINS: dict[str, Chain] = {
    c.name: c
    for c in (
        Chain("baseline", "one chain-of-thought call", run_baseline),
        Chain("oracle", "baseline on the clean problem (no distractor/opinion)", run_oracle),
        Chain("s2a", "System 2 Attention rewrite, then answer", run_s2a, cli=("sc_chains.cli.s2a", {})),
        Chain("s2a-fewshot", "S2A rewrite after two worked examples of the labelled format, then answer",
              run_s2a_fewshot, cli=("sc_chains.cli.s2a", dict(S2A_CHAINS["s2a-fewshot"]))),
        Chain("s2a-filter", "S2A filter: drop the context sentence the model scores least relevant, then answer",
              run_s2a_filter, cli=("sc_chains.cli.s2a", dict(S2A_CHAINS["s2a-filter"]))),
        Chain("s2a-filter-question", "S2A filter: drop the context sentence whose removal makes the question "
              "likeliest (leave-one-out question log-probability; a local model), then answer",
              run_s2a_filter_question, cli=("sc_chains.cli.s2a", dict(S2A_CHAINS["s2a-filter-question"]))),
        Chain("leco", "LECO step-confidence self-correction", run_leco, cli=("sc_chains.cli.leco", {})),
        Chain("critique", "critique-revise, SCoRe protocol behind the disagreement gate; a revision stands "
              "only if the gate's sample confirms it (the default)",
              run_critique, two_attempt=True, cli=("sc_chains.cli.critique", {})),
        Chain("critique-gate", "critique-revise behind the disagreement gate, the revision always stands "
              "(gate_confirm=False)", run_critique_gate, two_attempt=True,
              cli=("sc_chains.cli.critique", {"gate_confirm": False})),
        Chain("critique-self", "critique-revise, SCoRe two attempts, ungated intrinsic critique", run_critique_self,
              two_attempt=True, cli=("sc_chains.cli.critique", {"critic": "self"})),
        Chain("s2a+leco", "S2A with LECO as the answer step", run_s2a_leco,
              cli=("sc_chains.cli.s2a", {"answer": "leco"})),
        Chain("sc", "self-consistency: k sampled solutions, majority vote", run_sc, cli=("sc_chains.cli.sc", {})),
        Chain("leco-vote", "LECO with k sampled continuations of the kept prefix, all voting", run_leco_vote,
              cli=("sc_chains.cli.leco", dict(LECO_VOTE))),
        Chain("leco-plain", "LECO drafting in the plain chain-of-thought format (as sc), steps split at "
              "line breaks", run_leco_plain),
        Chain("leco-vote-plain", "leco-vote drafting in the plain chain-of-thought format (as sc)",
              run_leco_vote_plain),
        Chain("critique-program", "the sandboxed program critic: on a disagreement the program's printed answer "
              "wins (runs model code)", run_critique_program, two_attempt=True,
              cli=("sc_chains.cli.critique", {"critic": "program"})),
        Chain("critique-program-vote", "the sandboxed program critic: on a disagreement the program's answer "
              "wins unless a sampled solution sides with the draft (runs model code)", run_critique_program_vote,
              two_attempt=True),
        Chain("critique-program-revise", "the sandboxed program critic, the model revises on a disagreement "
              "(runs model code)", run_critique_program_revise, two_attempt=True),
        Chain("critique-program-sc", f"the sandboxed program critic with {PROGRAM_SAMPLES} sampled programs voting "
              "with the draft; a winning program's answer replaces it (runs model code)", run_critique_program_sc,
              two_attempt=True),
    )
}
"""Every chain by name, in report order."""


def cli_chains() -> dict[str, tuple[str, dict[str, Any]]]:
    """Chain name -> (CLI module, extra options) for ``sc-chains run`` and the demo."""
    return {name: c.cli for name, c in CHAINS.items() if c.cli is not None}


def get_chain(name: str) -> Chain:
    """The chain called ``name``; a clear error listing the valid names otherwise."""
    from adapters.errors import InvalidRequestError

    try:
        return CHAINS[name]
    except KeyError:
        raise InvalidRequestError("chain", name, f"use one of {', '.join(CHAINS)}") from None
