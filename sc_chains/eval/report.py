"""Summaries of eval records: per-chain metrics (summary.json), a markdown table, PNG plots.

A failed record (an item that still raised after its retries) counts as incorrect, so a chain
that crashes on hard problems is not flattered; the ``failed`` column shows how many.
``wall_s`` is measured per problem around the chain, so with ``concurrency > 1`` on a model that
serialises calls (a local HF model) it includes time spent waiting for the model; use
``--concurrency 1`` for per-problem latency.
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from graphs.text import edit_distance
from sc_chains.eval.metrics import accuracy, cost, flips, gap_recovered, two_attempt

__all__ = ["markdown_table", "summarize", "write_plots"]


def summarize(records: Sequence[Mapping[str, Any]], chains: Sequence[str]) -> dict[str, Any]:
    """Per-chain metrics from eval records (``{"key", "status", "chain", "correct", ...}``)."""
    by_chain: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        by_chain[r.get("chain") or r["key"].split("::", 1)[0]].append(r)
    correct = {c: {r["key"].split("::", 1)[1]: bool(r.get("correct")) for r in by_chain[c]} for c in chains}
    out: dict[str, Any] = {"chains": {}}
    for c in chains:
        recs = by_chain[c]
        ok = [r for r in recs if r.get("status") == "ok"]
        entry: dict[str, Any] = accuracy(correct[c].values())
        entry["failed"] = len(recs) - len(ok)
        entry["cost"] = cost(ok)
        if ok and all("correct_t1" in r for r in ok):
            entry["two_attempt"] = two_attempt([(bool(r["correct_t1"]), bool(r["correct"])) for r in ok])
            entry["edit_distance"] = statistics.fmean(
                edit_distance(r.get("response_t1") or "", r.get("response") or "") for r in ok)
        if c != "baseline" and "baseline" in chains:
            entry["vs_baseline"] = flips(correct["baseline"], correct[c])
        groups: dict[str, list[bool]] = defaultdict(list)
        for r in ok:
            meta = r.get("meta") or {}
            group = meta.get("kind") or meta.get("variant")
            if group:
                groups[group].append(bool(r.get("correct")))
        if groups:
            entry["by_group"] = {g: accuracy(v) for g, v in sorted(groups.items())}
        statuses = [(r.get("trace") or {}).get("parse_status") for r in ok]
        if any(statuses):  # S2A chains: how often the rewrite parsed, and which fallbacks ran
            entry["parse_status"] = dict(sorted(Counter(s for s in statuses if s).items()))
        out["chains"][c] = entry
    if "baseline" in chains and "oracle" in chains:
        acc = {c: out["chains"][c]["accuracy"] for c in chains}
        out["gap_recovered"] = {
            c: gap_recovered(acc[c], acc["baseline"], acc["oracle"])
            for c in chains if c not in ("baseline", "oracle")
        }
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def markdown_table(summary: Mapping[str, Any]) -> str:
    """A markdown table, one row per chain (percentages; costs per problem)."""
    head = ("| chain | n | accuracy % [95% CI] | acc@t1 | delta | i->c | c->i | vs baseline i->c/c->i "
            "| gap recovered | calls | tokens | s | failed |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    gaps = summary.get("gap_recovered") or {}
    for name, e in summary["chains"].items():
        ta = e.get("two_attempt") or {}
        vb = e.get("vs_baseline")
        c = e["cost"]
        lines.append("| " + " | ".join([
            name, str(e["n"]),
            f"{_pct(e['accuracy'])} [{_pct(e['ci_low'])}, {_pct(e['ci_high'])}]",
            _pct(ta.get("accuracy_t1")), _pct(ta.get("delta")),
            _pct(ta.get("delta_i_to_c")), _pct(ta.get("delta_c_to_i")),
            f"{_pct(vb['i_to_c'])}/{_pct(vb['c_to_i'])}" if vb else "-",
            _num(gaps.get(name), "{:.2f}"),
            _num(c["calls_per_problem"], "{:.2f}"), _num(c["total_tokens_per_problem"], "{:.0f}"),
            _num(c["wall_s_per_problem"], "{:.2f}"), str(e["failed"]),
        ]) + " |")
    for name, e in summary["chains"].items():
        if e.get("parse_status"):
            shown = ", ".join(f"{k} {v}" for k, v in e["parse_status"].items())
            lines.append(f"\n{name} rewrites: {shown} (of {sum(e['parse_status'].values())})")
    title = " ".join(str(summary.get(k)) for k in ("dataset", "model") if summary.get(k))
    return (f"**{title}**\n\n" if title else "") + "\n".join(lines)


def write_plots(summary: Mapping[str, Any], out_dir: str | Path) -> list[str]:
    """Write ``accuracy_vs_tokens.png`` and ``flips.png``; ``[]`` (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("sc-chains eval: matplotlib is not installed, skipping plots "
              "(pip install 'sc-chains[eval]' or pip install matplotlib)", file=sys.stderr)
        return []
    out = Path(out_dir)
    chains = summary["chains"]
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, e in chains.items():
        x, y = e["cost"]["total_tokens_per_problem"], e["accuracy"]
        if x is None or y is None:
            continue
        ax.errorbar(x, 100 * y, yerr=[[max(0.0, 100 * (y - e["ci_low"]))], [max(0.0, 100 * (e["ci_high"] - y))]],
                    fmt="o", capsize=3)
        ax.annotate(name, (x, 100 * y), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel("tokens per problem (prompt + completion)")
    ax.set_ylabel("accuracy % (95% CI)")
    ax.set_title(f"{summary.get('dataset', '')} {summary.get('model', '')}".strip())
    fig.tight_layout()
    paths.append(str(out / "accuracy_vs_tokens.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    bars = []  # (label, i->c, c->i)
    for name, e in chains.items():
        if e.get("vs_baseline") and e["vs_baseline"]["n"]:
            bars.append((f"{name} vs baseline", e["vs_baseline"]["i_to_c"], e["vs_baseline"]["c_to_i"]))
        if e.get("two_attempt") and e["two_attempt"]["delta_i_to_c"] is not None:
            bars.append((f"{name} t1->t2", e["two_attempt"]["delta_i_to_c"], e["two_attempt"]["delta_c_to_i"]))
    if bars:
        fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(bars)), 4))
        xs = range(len(bars))
        ax.bar([x - 0.2 for x in xs], [100 * b[1] for b in bars], width=0.4, label="i->c (fixed)")
        ax.bar([x + 0.2 for x in xs], [100 * b[2] for b in bars], width=0.4, label="c->i (broken)")
        ax.set_xticks(list(xs), [b[0] for b in bars], rotation=20, ha="right")
        ax.set_ylabel("% of problems")
        ax.legend()
        fig.tight_layout()
        paths.append(str(out / "flips.png"))
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
