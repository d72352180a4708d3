"""``self-reward``: the model answers N times and judges its own answers (methods.md section 4).

Per prompt: N responses (T 0.7, top-p 0.9, seeds ``seed..seed+N-1``), each scored by the same
model with the additive 5-point rubric (:class:`graphs.judge.Judge`: k samples averaged, or the
logprob-expected score). Prompts whose scores all tie are dropped; otherwise (best, worst) is a
preference pair with both scores. Prompts come from a dataset or the user's own file
(:func:`load_prompts`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from adapters.errors import InvalidRequestError
from sc_chains.datagen.common import ModelRef, PerProblem, check_int, check_number, sum_usage
from sc_chains.datasets import DatasetError, DatasetRowError, Problem, read_text

__all__ = ["SelfRewardConfig", "SelfRewardGenerator", "load_prompts", "preference_pair"]


@dataclass(frozen=True)
class SelfRewardConfig:
    """Settings of the ``self-reward`` generator."""

    n: int = 4
    """Responses per prompt (the paper: 4)."""
    temperature: float = 0.7
    """Sampling temperature of the responses (the paper: 0.7)."""
    top_p: float = 0.9
    """Nucleus mass of the responses (the paper: 0.9)."""
    judge_k: int = 3
    """Judge samples averaged per response (the paper: 3)."""
    judge_temperature: float = 0.7
    """Temperature of the judge samples (must be > 0 when ``judge_k > 1``)."""
    score_mode: Literal["mean", "expected"] = "mean"
    """``"mean"``: the mean sampled ``Score: N``; ``"expected"``: the logprob-expected score over
    the score digit, falling back to the mean for a response without one."""
    seed: int = 0
    """Response ``i`` uses ``seed + i``; judge sample ``j`` uses ``seed + j``."""
    max_tokens: int = 512
    """Most tokens per response."""
    judge_max_tokens: int = 256
    """Most tokens per judge sample."""

    def __post_init__(self) -> None:
        check_int("n", self.n, 2)
        check_int("judge_k", self.judge_k, 1)
        check_int("seed", self.seed, 0)
        check_int("max_tokens", self.max_tokens, 1)
        check_int("judge_max_tokens", self.judge_max_tokens, 1)
        check_number("temperature", self.temperature, 0, 5)
        check_number("top_p", self.top_p, 1e-6, 1)
        check_number("judge_temperature", self.judge_temperature, 0, 5)
        if self.score_mode not in ("mean", "expected"):
            raise InvalidRequestError("score_mode", self.score_mode, "use 'mean' or 'expected'")
        if self.temperature == 0:
            raise InvalidRequestError("temperature", 0, f"{self.n} responses need a temperature > 0, e.g. 0.7")


def preference_pair(scores: Sequence[float | None]) -> tuple[int, int] | str:
    """``(best, worst)`` indices of ``scores``, or why there is no pair.

    ``None`` scores (the judge never parsed) are ignored. Ties pick the earliest response. Returns
    ``"too_few_scored"`` when fewer than two responses have a score, ``"all_tied"`` when every
    score is equal.
    """
    scored = [(s, i) for i, s in enumerate(scores) if s is not None]
    if len(scored) < 2:
        return "too_few_scored"
    hi = max(s for s, _ in scored)
    lo = min(s for s, _ in scored)
    if hi == lo:
        return "all_tied"
    best = next(i for s, i in scored if s == hi)
    worst = next(i for s, i in scored if s == lo)
    return best, worst


def load_prompts(path: str | os.PathLike[str], field: str = "prompt") -> list[Problem]:
    """A user's prompts: a ``.jsonl`` file (``field`` of each object) or a text file (one per line).

    Ids are ``prompt-<line index>`` (blank lines are skipped but keep ids stable on append).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetError(f"no prompts file at {p}; pass a .txt (one prompt per line) or .jsonl file")
    out = []
    for i, line in enumerate(read_text(p).splitlines()):  # not UTF-8: an error naming the line
        if not line.strip():
            continue
        text = line.strip()
        if p.suffix == ".jsonl":
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{p}:{i + 1}: not valid JSON ({exc.msg})") from exc
            if not isinstance(rec, dict) or field not in rec:
                keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
                raise DatasetError(f"{p}:{i + 1}: no field {field!r} (found {keys}); pass --prompt-field KEY")
            text = rec[field]
            if not isinstance(text, str) or not text.strip():
                raise DatasetRowError(p, i + 1, field, text, "a prompt must be non-empty text; fix the line "
                                      "or pass --prompt-field KEY")
        out.append(Problem(f"prompt-{i}", text, "", {}))
    return out


class SelfRewardGenerator(PerProblem):
    """N sampled responses, self-judged, turned into a (best, worst) pair; see the module docstring."""

    kind = "self-reward"
    formats = ("preference",)
    default_format = "preference"

    def __init__(self, model: Any, config: SelfRewardConfig | None = None) -> None:
        self.model = ModelRef(model)
        self.config = config or SelfRewardConfig()

    def __call__(self, problem: Problem) -> dict[str, Any]:
        from graphs.common import usage_of
        from graphs.judge import Judge

        cfg, lm = self.config, self.model.get()
        prompt = [{"role": "user", "content": problem.question}]
        reqs = [lm.request(prompt, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                           top_p=cfg.top_p, seed=cfg.seed + i) for i in range(cfg.n)]
        gens = lm.batch(reqs, max_concurrency=cfg.n)
        judge = Judge(lm, k=cfg.judge_k, temperature=cfg.judge_temperature, seed=cfg.seed,
                      max_tokens=cfg.judge_max_tokens, max_concurrency=cfg.n * cfg.judge_k)
        results = judge.score_many([(problem.question, g.text) for g in gens])
        responses = []
        for g, r in zip(gens, results):
            use_expected = cfg.score_mode == "expected" and r.expected is not None
            responses.append({
                "text": g.text, "score": r.expected if use_expected else r.score,
                "score_source": "expected" if use_expected else "mean",
                "mean_score": r.score, "expected_score": r.expected, "parse_errors": r.parse_errors,
                "judge_samples": [s.score for s in r.samples],
            })
        pair = preference_pair([x["score"] for x in responses])
        record: dict[str, Any] = {
            "kind": self.kind, "problem_id": problem.id, "prompt": problem.question,
            "responses": responses, "drop": pair if isinstance(pair, str) else None,
            "best": None, "worst": None, "chosen": None, "rejected": None,
            "chosen_score": None, "rejected_score": None,
            "usage": sum_usage(usage_of(gens), *(r.usage for r in results)),
        }
        if not isinstance(pair, str):
            b, w = pair
            record.update(best=b, worst=w, chosen=responses[b]["text"], rejected=responses[w]["text"],
                          chosen_score=responses[b]["score"], rejected_score=responses[w]["score"])
        return record

    def describe(self) -> dict[str, Any]:
        return asdict(self.config)
