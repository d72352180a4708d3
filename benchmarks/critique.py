"""SCoRe two-attempt self-correction on GSM8K, with and without the confidence gate.

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/critique.py --n 10 [--model hf:default] [--gate 0.9]

Metrics (Kumar et al., 2024): Accuracy@t1, Accuracy@t2, delta = t2 - t1, delta i->c (wrong then
right), delta c->i (right then wrong), mean normalised word edit distance between the attempts,
plus the share of problems revised and the tokens spent, against the ungated run measured in the
same process. Decoding is greedy, so attempt 1 is the same in both runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from adapters.specs import resolve_model
from graphs.answers import answers_equal, extract_answer
from graphs.critique import CritiqueConfig, create_critique_graph
from sc_chains.datasets import PACKAGE_DATA, read_text

DATA = PACKAGE_DATA / "gsm8k" / "train.jsonl.gz"  # ships with the package


def load_gsm8k(n: int, offset: int = 0) -> list[dict[str, str]]:
    lines = read_text(DATA).splitlines()[offset : offset + n]
    return [{"question": (item := json.loads(line))["question"],
             "gold": extract_answer(item["answer"].split("####")[-1])} for line in lines]


def pick_model(spec: str | None) -> Any:
    if spec:
        return resolve_model(spec)
    try:
        return resolve_model("hf:qwen2.5-coder-0.5b")
    except Exception as exc:  # noqa: BLE001 - fall back to the embedded model, and say why
        print(f"hf:qwen2.5-coder-0.5b did not load ({type(exc).__name__}: {exc}); using hf:default")
        return resolve_model("hf:default")


def run_variant(model: Any, problems: list[dict[str, str]], cfg: CritiqueConfig) -> dict[str, Any]:
    graph = create_critique_graph(model, cfg)
    t0 = time.perf_counter()
    rows = []
    for i, p in enumerate(problems):
        out = graph.invoke({"question": p["question"]})
        rows.append(
            {
                "t1": answers_equal(out["attempt1_answer"], p["gold"]),
                "t2": answers_equal(out["attempt2_answer"], p["gold"]),
                "edit": out["edit_distance"],
                "revised": len(out["turns"]) > 1,
                "stop": out["stop_reason"],
                "tokens": out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"],
                "calls": out["usage"]["calls"],
                "conf": out["turns"][0]["confidence"],
            }
        )
        r = rows[-1]
        print(f"  [{i + 1}/{len(problems)}] t1={'ok' if r['t1'] else 'x'} t2={'ok' if r['t2'] else 'x'} "
              f"stop={r['stop']} conf={r['conf']} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    return {"rows": rows, "seconds": time.perf_counter() - t0}


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    n = len(rows)
    t1 = sum(r["t1"] for r in rows) / n
    t2 = sum(r["t2"] for r in rows) / n
    revised = [r for r in rows if r["revised"]]
    return {
        "acc_t1": t1,
        "acc_t2": t2,
        "delta": t2 - t1,
        "i_to_c": sum((not r["t1"]) and r["t2"] for r in rows) / n,
        "c_to_i": sum(r["t1"] and not r["t2"] for r in rows) / n,
        "edit": sum(r["edit"] for r in revised) / len(revised) if revised else 0.0,
        "revised": len(revised) / n,
        "calls": sum(r["calls"] for r in rows),
        "tokens": sum(r["tokens"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: hf:qwen2.5-coder-0.5b if it loads, else hf:default)")
    ap.add_argument("--n", type=int, default=10, help="GSM8K problems")
    ap.add_argument("--offset", type=int, default=0, help="first problem index in train.jsonl")
    ap.add_argument("--gate", type=float, default=0.9, help="confidence threshold of the gated run")
    ap.add_argument("--max-tokens", type=int, default=256, help="tokens per attempt")
    args = ap.parse_args()

    model = pick_model(args.model)
    problems = load_gsm8k(args.n, args.offset)
    base = CritiqueConfig(mode="score", max_tokens=args.max_tokens, collapse_threshold=0.0, token_budget=None)
    variants = {
        "score (no gate)": base,
        f"score + gate {args.gate:g}": CritiqueConfig(
            mode="score", max_tokens=args.max_tokens, collapse_threshold=0.0, token_budget=None,
            confidence_threshold=args.gate,
        ),
    }
    results = {name: run_variant(model, problems, cfg) for name, cfg in variants.items()}

    print(f"\nSCoRe two-attempt on GSM8K train[{args.offset}:{args.offset + len(problems)}], "
          f"model {model.name}, n={len(problems)}, greedy, max_tokens={args.max_tokens}")
    head = f"{'variant':<20} {'Acc@t1':>7} {'Acc@t2':>7} {'delta':>7} {'i->c':>6} {'c->i':>6} {'edit':>6} {'revised':>8} {'calls':>6} {'tokens':>8} {'tok ratio':>9} {'sec':>7}"
    print(head)
    print("-" * len(head))
    base_tokens = None
    for name, res in results.items():
        s = summarise(res["rows"])
        base_tokens = base_tokens or s["tokens"]
        print(
            f"{name:<20} {s['acc_t1']:>7.1%} {s['acc_t2']:>7.1%} {s['delta']:>+7.1%} {s['i_to_c']:>6.1%} "
            f"{s['c_to_i']:>6.1%} {s['edit']:>6.3f} {s['revised']:>8.0%} {s['calls']:>6} {s['tokens']:>8} "
            f"{s['tokens'] / base_tokens:>9.2f} {res['seconds']:>7.1f}"
        )
    confs = sorted(r["conf"] for r in next(iter(results.values()))["rows"] if r["conf"] is not None)
    if confs:
        print(f"attempt-1 confidence (mean token probability): min {confs[0]:.3f}, "
              f"median {confs[len(confs) // 2]:.3f}, max {confs[-1]:.3f}")
    print("edit = mean normalised word edit distance between attempts, over revised problems; "
          "tok ratio = tokens / ungated run's")


if __name__ == "__main__":
    main()
