"""Report of the corrections measurement (``benchmarks/eval_corrections.sh``, issue 14).

Reads each ``benchmarks/results/corrections-<dataset>-<model>/results.jsonl`` and writes
``benchmarks/results/CORRECTIONS.md`` and ``corrections_accuracy_vs_tokens.png``. The run is
incremental (chains in order, the limit raised in stages), so chains can cover different numbers
of problems; every chain is therefore compared with the baseline *on the problems it ran*
(paired: i->c / c->i, the baseline's accuracy on that subset), never on another set.

Run: ``.venv/bin/python benchmarks/corrections_report.py [--prefix benchmarks/results/corrections]``
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import re
from pathlib import Path
from typing import Any

from graphs.answers import answers_equal
from graphs.leco.policy import weighted_vote
from graphs.s2a.parse import split_sentences
from graphs.sc.policy import majority_vote
from sc_chains.eval.chains import COT_INSTRUCTION
from sc_chains.eval.metrics import check_answer
from sc_chains.eval.report import summarize
from sc_chains.runner import read_records

HEADER = [
    "Command: `bash benchmarks/eval_corrections.sh` (Qwen2.5-Coder-0.5B-Instruct, bf16, greedy except the",
    "sampling chains, default chain configs, seed 0; incremental and resumable), then",
    "`.venv/bin/python benchmarks/corrections_report.py`. Each chain is compared with the baseline on",
    "the problems it ran (paired), so chains that ran fewer problems are not compared on another set.",
    "The baseline and oracle records of the first 50 problems were reused from the committed n = 50 run",
    "(`reused_from` in each record) after a rerun reproduced 16/16 baseline answers exactly. The newer",
    "chains ran with continuous batching, where bf16 near-ties can flip a greedy token, so a chain's",
    "greedy draft can differ from the baseline's answer on the same problem (noise, no bias).",
    "Plot: `corrections_accuracy_vs_tokens.png` (accuracy vs generated tokens per problem, every chain).",
    "For two-attempt chains (the critique chains) the accuracy column also gives the first",
    "attempt's accuracy (t1) and what the correction itself changed (t1->t2 i->c / c->i, same run).",
    "Scheduling: the pilot records (sc, leco-vote and the first critique records, n <= 20) ran while",
    "every final-answer call decoded alone under the model lock (a streaming path that bypassed the",
    "batcher); later records ran batched, with the multi-sequence prefix KV cache. Same model,",
    "prompts and settings: only bf16 batch noise differs.",
    "Two defaults changed in session 6, and the records of the old defaults kept their meaning under a",
    "new chain name (`renamed_from` in each record): `critique-gate` is the gated critique before",
    "`gate_confirm` (the revision always stood; recorded as `critique`), `critique-program-revise` the",
    "program critic before `resolve=\"program\"` (the model revised; recorded as `critique-program`).",
    "`critique` and `critique-program` are the new defaults, run afresh.",
    "`critique-program-vote` (session 7, `ProgramCritic(resolve=\"vote\")`): its SVAMP records ran in a",
    "separate output folder beside another SVAMP run and were appended here afterwards (same record",
    "keys and settings). Head-to-head lines compare two chains on the problems both ran.",
    "Session 8: records made from then on decode with the CPU defaults `attn_implementation=\"auto\"`",
    "and `prepack_weights=\"auto\"` (benchmarks/cpu_decode.py: 1.38x faster; float32 attention scores",
    "differ from sdpa at bf16 near ties only). `leco-plain`/`leco-vote-plain`: LECO drafting in sc's plain",
    "chain-of-thought format. S2A cleaning lines compare what a chain dropped with the oracle's clean problem.",
    "Session 9: `critique-program-sc` is the program critic with 5 sampled programs (temperature 0.7,",
    "seeds 0-4; `ProgramCritic(samples=5)`) voting with the draft's answer, a tie keeping the draft.",
    "Session 10: `s2a-filter-question` is the S2A filter by the question's own likelihood (each context",
    "sentence's leave-one-out gain in log P(question), no generation; the lowest negative gain dropped).",
]
"""The fixed introduction of CORRECTIONS.md."""

ORDER = ["baseline", "oracle", "sc", "leco", "leco-vote", "leco-plain", "leco-vote-plain", "critique", "critique-gate", "critique-self", "critique-program", "critique-program-sc", "critique-program-vote", "critique-program-revise",
         "s2a", "s2a-fewshot", "s2a-filter", "s2a-filter-question", "s2a+leco"]


def _by_chain(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """chain -> problem id -> record, successful records only."""
    by_chain: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        if r.get("status") == "ok":
            by_chain.setdefault(r["chain"], {})[r["problem_id"]] = r
    return by_chain


def _rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per chain: its metrics on the problems it ran, paired with the baseline there."""
    by_chain = _by_chain(records)
    base, oracle = by_chain.get("baseline", {}), by_chain.get("oracle", {})
    rows = []
    for chain in sorted(by_chain, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER)):
        ids = sorted(set(by_chain[chain]) & set(base)) if chain != "baseline" else sorted(base)
        names = ["baseline"] + ([chain] if chain != "baseline" else [])
        subset = [by_chain[c][i] for c in names for i in ids]
        if oracle and all(i in oracle for i in ids) and chain not in ("baseline", "oracle"):
            names.append("oracle")
            subset += [oracle[i] for i in ids]
        s = summarize(subset, names)
        e, b = s["chains"][chain], s["chains"]["baseline"]
        vs = e.get("vs_baseline") or {}
        rows.append({"chain": chain, "n": e["n"], "acc": e["accuracy"], "lo": e["ci_low"], "hi": e["ci_high"],
                     "base": b["accuracy"], "i_to_c": vs.get("i_to_c"), "c_to_i": vs.get("c_to_i"),
                     "gap": (s.get("gap_recovered") or {}).get(chain),
                     "calls": e["cost"]["calls_per_problem"],
                     "gen": e["cost"]["completion_tokens_per_problem"], "tok": e["cost"]["total_tokens_per_problem"],
                     "t1": (e.get("two_attempt") or {}).get("accuracy_t1"), "parse": e.get("parse_status"),
                     "t12": (e.get("two_attempt") or {})})
    return rows


def paired_diff_ci(i_to_c: float | None, c_to_i: float | None, n: int) -> tuple[float, float, float] | None:
    """Accuracy minus the baseline's on the same problems, with a 95% normal-approximation CI for
    paired proportions: ``d = b - c``, ``se = sqrt(b + c - d**2) / sqrt(n)`` (``b``, ``c``: the
    i->c and c->i shares)."""
    if i_to_c is None or c_to_i is None or n <= 0:
        return None
    d = i_to_c - c_to_i
    se = max(i_to_c + c_to_i - d * d, 0.0) ** 0.5 / n ** 0.5
    return d, d - 1.96 * se, d + 1.96 * se


HEAD_TO_HEAD = [("leco-vote", "sc"), ("leco-vote-plain", "sc"), ("leco-vote-plain", "leco-vote"),
                ("critique-program-vote", "critique-program"), ("critique-program-sc", "critique-program"),
                ("critique-program-sc", "sc")]
"""Chain pairs compared directly on the problems both ran (the issue's LECO-vote vs sc claim)."""


def head_to_head(records: list[dict[str, Any]], a: str, b: str) -> str | None:
    """``a`` minus ``b`` on the problems both ran: accuracy, paired 95% CI, generated-token ratio."""
    by = _by_chain(records)
    ids = sorted(set(by.get(a, {})) & set(by.get(b, {})))
    if not ids:
        return None
    n = len(ids)
    ra, rb = [by[a][i] for i in ids], [by[b][i] for i in ids]
    wins = sum(bool(x["correct"]) and not y["correct"] for x, y in zip(ra, rb)) / n
    losses = sum(bool(y["correct"]) and not x["correct"] for x, y in zip(ra, rb)) / n
    d, lo, hi = paired_diff_ci(wins, losses, n)  # type: ignore[misc]
    tok = sum(x["usage"].get("completion_tokens", 0) for x in ra) / max(1, sum(y["usage"].get("completion_tokens", 0) for y in rb))
    acc_a, acc_b = (100 * sum(bool(x["correct"]) for x in rs) / n for rs in (ra, rb))
    return (f"- {a} vs {b} (same {n} problems): {acc_a:.1f}% vs {acc_b:.1f}%, {100 * d:+.1f} points "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}], at {tok:.2f}x the generated tokens")


EQUAL_TOKENS = ("leco-vote", "leco-vote-plain", "critique-program-sc")
"""Chains compared with ``sc@k`` at (about) their own generated tokens (:func:`sc_curve`)."""


def sc_prefixes(record: dict[str, Any]) -> list[tuple[bool, int]]:
    """For ``k = 1..K``: whether the vote over an ``sc`` record's first ``k`` samples (in sample
    order, the chain's own vote rule) is right, and the tokens those ``k`` samples generated."""
    cands = sorted((record.get("trace") or {}).get("candidates") or [], key=lambda c: int(c["index"]))
    out, spent = [], 0
    for k, cand in enumerate(cands, 1):
        usage = cand.get("usage") or {}
        spent += int((ast.literal_eval(usage) if isinstance(usage, str) else usage).get("completion_tokens", 0))
        vote = majority_vote([c.get("answer") for c in cands[:k]])
        out.append((check_answer(vote["answer"], record["gold"]), spent))
    return out


def _sc_prefix_table(by: dict[str, dict[str, dict[str, Any]]]) -> dict[str, list[tuple[bool, int]]]:
    pref = {i: sc_prefixes(r) for i, r in by.get("sc", {}).items()}
    return {i: p for i, p in pref.items() if p}


def sc_points(pref: dict[str, list[tuple[bool, int]]]) -> tuple[list[float], list[float]]:
    """Accuracy and generated tokens per problem of ``sc@k``, ``k = 1..K`` (K: the fewest samples
    any record has)."""
    kmax, n = min(len(p) for p in pref.values()), len(pref)
    return ([sum(p[k][0] for p in pref.values()) / n for k in range(kmax)],
            [sum(p[k][1] for p in pref.values()) / n for k in range(kmax)])


def sc_curve(records: list[dict[str, Any]]) -> list[str]:
    """Self-consistency with fewer samples, read from the ``sc`` records (the vote over the first
    ``k`` samples: no new model calls), and each :data:`EQUAL_TOKENS` chain against ``sc@k`` at
    the smallest ``k`` that generates at least its tokens, paired on the problems both ran."""
    by = _by_chain(records)
    pref = _sc_prefix_table(by)
    if not pref:
        return []
    acc, tok = sc_points(pref)
    kmax, n = len(acc), len(pref)
    lines = [f"- sc@k from the same samples (the vote over the first k; n = {n}): "
             + "; ".join(f"k={k + 1} {100 * acc[k]:.1f}% at {tok[k]:.0f} tokens" for k in range(kmax))]
    for chain in EQUAL_TOKENS:
        ids = sorted(set(by.get(chain, {})) & set(pref))
        if not ids:
            continue
        own = sum(by[chain][i]["usage"].get("completion_tokens", 0) for i in ids) / len(ids)
        k = next((k for k in range(kmax) if sum(pref[i][k][1] for i in ids) / len(ids) >= own), kmax - 1)
        a = [bool(by[chain][i]["correct"]) for i in ids]
        b = [pref[i][k][0] for i in ids]
        d = paired_diff_ci(sum(x and not y for x, y in zip(a, b)) / len(ids),
                           sum(y and not x for x, y in zip(a, b)) / len(ids), len(ids))
        ratio = own / max(1e-9, sum(pref[i][k][1] for i in ids) / len(ids))
        lines.append(f"- {chain} vs sc@{k + 1} (about equal generated tokens; same {len(ids)} problems): "
                     f"{100 * sum(a) / len(ids):.1f}% vs {100 * sum(b) / len(ids):.1f}%, {100 * d[0]:+.1f} points "  # type: ignore[index]
                     f"[{100 * d[1]:+.1f}, {100 * d[2]:+.1f}], at {ratio:.2f}x sc@{k + 1}'s generated tokens")  # type: ignore[index]
    return lines


_TALLY = re.compile(r"(\d+) of (\d+) Python programs")


def program_agreement(records: list[dict[str, Any]], chain: str = "critique-program-sc") -> str | None:
    """How many of a sampled program critic's programs printed the winning answer (read from its
    critique text; 0 when none printed a majority answer), and the chain's accuracy at each count:
    agreement between executed programs as a confidence signal."""
    recs = list(_by_chain(records).get(chain, {}).values())
    if not recs:
        return None
    seen: dict[int, list[bool]] = {}
    for r in recs:
        turns = (r.get("trace") or {}).get("turns") or [{}]
        m = _TALLY.match(turns[0].get("critique") or "")
        seen.setdefault(int(m.group(1)) if m else 0, []).append(bool(r["correct"]))
    parts = [f"{k}: {len(v)} ({100 * sum(v) / len(v):.0f}% right)" for k, v in sorted(seen.items())]
    return f"- {chain}, programs printing the winning answer (problems, accuracy): " + "; ".join(parts)


def draft_noise(records: list[dict[str, Any]], a: str = "critique", b: str = "critique-program") -> str | None:
    """The noise floor of a greedy draft: two chains whose first attempt is the same greedy call
    on the same prompt, compared problem by problem: how often the texts are identical, how often
    correctness flips, and the accuracy difference. bf16 batched decoding is not batch-invariant
    (a near-tie token can change with the batch a request lands in), so paired differences of a
    few points between chains include this, not only what a correction did."""
    by = _by_chain(records)
    ids = sorted(i for i in set(by.get(a, {})) & set(by.get(b, {}))
                 if "response_t1" in by[a][i] and "response_t1" in by[b][i])
    if not ids:
        return None
    n = len(ids)
    same = sum(by[a][i]["response_t1"] == by[b][i]["response_t1"] for i in ids)
    flips = sum(bool(by[a][i]["correct_t1"]) != bool(by[b][i]["correct_t1"]) for i in ids)
    diff = sum(bool(by[b][i]["correct_t1"]) - bool(by[a][i]["correct_t1"]) for i in ids)
    return (f"- greedy draft noise floor ({a} vs {b}: the same greedy first call, separate runs; n = {n}): "
            f"identical text {100 * same / n:.1f}%, correctness flipped {100 * flips / n:.1f}%, "
            f"accuracy difference {100 * diff / n:+.1f} points")


LECO_VOTE_CHAINS = ("leco-vote", "leco-vote-plain")


def leco_vote_diagnosis(records: list[dict[str, Any]], chain: str) -> str | None:
    """Why a sampled LECO chain lands where it does, read from its records: how often the first
    cut was at the first step (an empty kept prefix: the rethinks are fresh samples), the draft's
    accuracy against the baseline on the same problems (the step format's cost), how often any
    candidate was right, and the vote recomputed with equal weights (the draft weighing 1, as
    in ``sc``) over the same candidates: post hoc, on the same problems, not a tuned result."""
    by = _by_chain(records)
    ids = sorted(set(by.get(chain, {})) & set(by.get("baseline", {})))
    if not ids:
        return None
    n, at_first, draft, base, anyc, equal = len(ids), 0, 0, 0, 0, 0
    for i in ids:
        rec = by[chain][i]
        trace, gold = rec.get("trace") or {}, rec["gold"]
        cands = trace.get("candidates") or []
        cuts = trace.get("cuts") or []
        at_first += bool(cuts) and cuts[0].get("step") == 0
        draft += bool(cands) and answers_equal(cands[0], gold)
        base += bool(by["baseline"][i]["correct"])
        anyc += any(answers_equal(c, gold) for c in cands)
        equal += answers_equal(weighted_vote(cands, 1.0)[0], gold)

    def pct(k: int) -> str:
        return f"{100 * k / n:.1f}%"

    return (f"- {chain} diagnosis (n = {n}): first cut at step 1 (empty kept prefix) {pct(at_first)}; "
            f"draft {pct(draft)} vs baseline {pct(base)}; any candidate right {pct(anyc)}; "
            f"vote with equal weights (post hoc, same candidates) {pct(equal)} vs {pct(sum(bool(by[chain][i]['correct']) for i in ids))}")


def s2a_cleaning(records: list[dict[str, Any]], chain: str) -> str | None:
    """What an S2A chain's rewrite dropped, against the oracle's clean problem (its prompt, less
    the chain-of-thought instruction): the share of
    problems where it dropped the added sentence (the distractor or the opinion), where it
    dropped a sentence of the clean problem (a false drop), and the accuracy in each case."""
    by = _by_chain(records)
    ids = sorted(set(by.get(chain, {})) & set(by.get("oracle", {})))
    if not ids:
        return None
    seen = {"detected": [], "missed": [], "false": []}  # type: dict[str, list[bool]]
    for i in ids:
        prompt = (by["oracle"][i].get("trace") or {}).get("prompt", "")
        rec, clean = by[chain][i], set(split_sentences(prompt.removesuffix("\n\n" + COT_INSTRUCTION)))
        added = [x for x in split_sentences(rec["question"]) if x not in clean]
        removed = (rec.get("trace") or {}).get("removed") or []
        seen["detected" if any(x in added for x in removed) else "missed"].append(bool(rec["correct"]))
        if any(x in clean for x in removed):
            seen["false"].append(bool(rec["correct"]))
    n = len(ids)

    def part(key: str, label: str) -> str:
        got = seen[key]
        acc = f", accuracy {100 * sum(got) / len(got):.1f}%" if got else ""
        return f"{label} {len(got)}/{n} ({100 * len(got) / n:.1f}%{acc})"

    return (f"- {chain} cleaning (vs the oracle's clean problem): {part('detected', 'added sentence dropped')}; "
            f"{part('missed', 'kept')}; {part('false', 'a clean-problem sentence dropped')}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| chain | n | accuracy % [95% CI] | baseline % (same problems) | minus baseline, points [95% CI] "
           "| i->c % | c->i % | gap recovered | calls | generated tokens | tokens (all) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t12 = r["t12"]
        own = (f" (t1 {_pct(r['t1'])}; t1->t2 i->c {_pct(t12.get('delta_i_to_c'))}, c->i {_pct(t12.get('delta_c_to_i'))})"
               if r["t1"] is not None else "")
        acc = f"{_pct(r['acc'])} [{_pct(r['lo'])}, {_pct(r['hi'])}]" + own
        gap = "-" if r["gap"] is None else f"{r['gap']:.2f}"
        diff = paired_diff_ci(r["i_to_c"], r["c_to_i"], r["n"])
        delta = "-" if diff is None else f"{100 * diff[0]:+.1f} [{100 * diff[1]:+.1f}, {100 * diff[2]:+.1f}]"
        out.append(f"| {r['chain']} | {r['n']} | {acc} | {_pct(r['base'])} | {delta} | {_pct(r['i_to_c'])} | {_pct(r['c_to_i'])} "
                   f"| {gap} | {r['calls']:.2f} | {r['gen']:.0f} | {r['tok']:.0f} |")
    return out


def _plot(tables: dict[str, list[dict[str, Any]]], curves: dict[str, tuple[list[float], list[float]]],
          path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4.5), squeeze=False)
    for ax, (name, rows) in zip(axes[0], tables.items()):
        for r in rows:
            err = [[max(0.0, 100 * (r["acc"] - r["lo"]))], [max(0.0, 100 * (r["hi"] - r["acc"]))]]
            ax.errorbar(r["gen"], 100 * r["acc"], yerr=err, fmt="o", capsize=3)
            ax.annotate(f"{r['chain']} (n={r['n']})", (r["gen"], 100 * r["acc"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        if name in curves:
            acc, tok = curves[name]
            ax.plot(tok, [100 * a for a in acc], "--", color="grey", label="sc@k, k = 1..K (same samples)")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel("generated tokens per problem")
        ax.set_ylabel("accuracy % (95% CI)")
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", default="benchmarks/results/corrections")
    args = ap.parse_args()
    tables: dict[str, list[dict[str, Any]]] = {}
    curves: dict[str, tuple[list[float], list[float]]] = {}
    lines = ["# Corrections measurement (issue 14): tables", "", *HEADER, ""]
    for folder in sorted(glob.glob(f"{args.prefix}-*/")):
        records = list(read_records(Path(folder) / "results.jsonl"))
        if not records:
            continue
        name = Path(folder).name.removeprefix(Path(args.prefix).name + "-")
        tables[name] = rows = _rows(records)
        lines += [f"## {name}", "", *_table(rows), ""]
        for a, b in HEAD_TO_HEAD:
            line = head_to_head(records, a, b)
            if line:
                lines.append(line)
        lines += sc_curve(records)
        agreement = program_agreement(records)
        if agreement:
            lines.append(agreement)
        lines += [x for x in (leco_vote_diagnosis(records, c) for c in LECO_VOTE_CHAINS) if x]
        lines += [x for x in [draft_noise(records)] if x]
        pref = _sc_prefix_table(_by_chain(records))
        if pref:
            curves[name] = sc_points(pref)
        for r in rows:
            if r["parse"]:
                lines.append(f"- {r['chain']} parse status: {json.dumps(r['parse'])}")
                line = s2a_cleaning(records, r["chain"])
                if line:
                    lines.append(line)
        lines.append("")
    out = Path(args.prefix).parent
    (out / "CORRECTIONS.md").write_text("\n".join(lines))
    if tables:
        _plot(tables, curves, out / "corrections_accuracy_vs_tokens.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
