"""``w2s``: weak-to-strong data without gold answers (Yang et al., 2024; methods.md section 5).

- Stage I: the weak model answers zero-shot, the strong model with in-context examples; a
  question is kept when both final answers agree (SFT data: weak and/or strong solution).
- Stage II: the strong model is sampled n times (T 1.0); :func:`confidence_pair` builds a
  preference pair against the weak solution from the majority share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from adapters.errors import InvalidRequestError
from graphs.answers import answers_equal
from sc_chains.datagen.common import ModelRef, check_int, check_number, sum_usage
from sc_chains.datasets import Problem

__all__ = ["DEFAULT_ICL", "W2SConfig", "W2SGenerator", "confidence_pair", "majority"]

DEFAULT_ICL: tuple[tuple[str, str], ...] = (
    ("A baker makes 12 muffins per tray and bakes 3 trays. She sells 20 muffins. How many are left?",
     "She bakes 12 * 3 = 36 muffins. After selling 20, 36 - 20 = 16 are left.\nThe answer is 16."),
    ("Tom reads 15 pages a day. How many days does he need for a 105-page book?",
     "He needs 105 / 15 = 7 days.\nThe answer is 7."),
)
"""The strong model's in-context examples in stage I (question, worked solution)."""

INSTRUCTION = "Solve the problem step by step, then end with \"The answer is X.\""


@dataclass(frozen=True)
class W2SConfig:
    """Settings of the ``w2s`` generator."""

    stage: int = 1
    """1: agreement filter (SFT data); 2: confidence-based preference pairs."""
    samples: int = 10
    """Stage II: strong samples per question (the paper: 10)."""
    temperature: float = 1.0
    """Stage II: temperature of the strong samples (the paper: 1.0)."""
    min_confidence: float = 0.6
    """Stage II: skip a question whose majority share is below this."""
    high_confidence: float = 0.8
    """Stage II: when the weak answer is not the majority, pair (majority, weak) only at or above this."""
    icl_examples: tuple[tuple[str, str], ...] = DEFAULT_ICL
    """Stage I: the strong model's in-context examples."""
    seed: int = 0
    """Stage II: sample ``i`` uses ``seed + i``."""
    max_tokens: int = 512
    """Most tokens per solution."""

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise InvalidRequestError("stage", self.stage, "pass 1 (agreement SFT) or 2 (confidence pairs)")
        check_int("samples", self.samples, 2)
        check_int("seed", self.seed, 0)
        check_int("max_tokens", self.max_tokens, 1)
        check_number("temperature", self.temperature, 0, 5)
        check_number("min_confidence", self.min_confidence, 0, 1)
        check_number("high_confidence", self.high_confidence, self.min_confidence, 1)


def majority(answers: Sequence[str | None]) -> tuple[str | None, float]:
    """The most common answer (``answers_equal`` groups; ties: first seen) and its share of all
    ``len(answers)`` samples. Samples without an answer count in the denominator only."""
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if answers_equal(answers[g[0]], a):
                g.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return None, 0.0
    top = max(groups, key=len)  # max keeps the first of equal lengths
    return answers[top[0]], len(top) / len(answers)


def confidence_pair(
    weak_answer: str | None, strong_answers: Sequence[str | None], *,
    min_confidence: float = 0.6, high_confidence: float = 0.8,
) -> dict[str, Any]:
    """Stage II's decision for one question (methods.md section 5).

    Returns ``{"majority", "confidence", "chosen", "rejected", "drop"}`` where ``chosen`` and
    ``rejected`` are ``"weak"`` or the index of a strong sample (``None`` when dropped):

    - confidence < ``min_confidence``: drop ``"low_confidence"``;
    - weak answer == majority: chosen the weak solution, rejected the first minority sample
      (one whose answer differs, or that has none); drop ``"no_minority"`` if every sample agrees;
    - else confidence >= ``high_confidence``: chosen the first majority sample, rejected weak;
    - else drop ``"weak_disagrees"``.
    """
    maj, conf = majority(strong_answers)
    out: dict[str, Any] = {"majority": maj, "confidence": conf, "chosen": None, "rejected": None, "drop": None}
    if maj is None or conf < min_confidence:
        out["drop"] = "low_confidence"
    elif weak_answer is not None and answers_equal(weak_answer, maj):
        minority = [i for i, a in enumerate(strong_answers) if a is None or not answers_equal(a, maj)]
        if minority:
            out.update(chosen="weak", rejected=minority[0])
        else:
            out["drop"] = "no_minority"
    elif conf >= high_confidence:
        first = next(i for i, a in enumerate(strong_answers) if a is not None and answers_equal(a, maj))
        out.update(chosen=first, rejected="weak")
    else:
        out["drop"] = "weak_disagrees"
    return out


def zero_shot(question: str) -> list[dict[str, str]]:
    """The zero-shot prompt (weak model; also the training prompt)."""
    return [{"role": "user", "content": f"{question}\n\n{INSTRUCTION}"}]


def few_shot(question: str, examples: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The strong model's in-context prompt: each example as a user/assistant turn, then the question."""
    msgs: list[dict[str, str]] = []
    for q, a in examples:
        msgs += [*zero_shot(q), {"role": "assistant", "content": a}]
    return msgs + zero_shot(question)


class W2SGenerator:
    """Weak-to-strong stage I or II records; see the module docstring."""

    kind = "w2s"

    def __init__(self, model: Any, weak_model: Any, config: W2SConfig | None = None) -> None:
        if weak_model is None:
            raise InvalidRequestError("weak_model", None, "w2s needs a weak model: --weak-model SPEC")
        self.model = ModelRef(model)
        self.weak = ModelRef(weak_model)
        self.config = config or W2SConfig()
        self.formats = ("prompt-completion", "messages") if self.config.stage == 1 else ("preference",)
        self.default_format = self.formats[0]

    def labels(self) -> dict[str, Any]:
        return {"model": self.model.label, "weak_model": self.weak.label}

    def items(self, problems: list[Problem]) -> list[Problem]:
        return list(problems)

    @staticmethod
    def key(item: Problem) -> str:
        return item.id

    def _solve(self, ref: ModelRef, messages: list[dict[str, str]], **kw: Any) -> Any:
        lm = ref.get()
        return lm.generate(messages, max_tokens=self.config.max_tokens, **kw)

    def __call__(self, problem: Problem) -> dict[str, Any]:
        from graphs.answers import extract_answer
        from graphs.common import usage_of

        cfg = self.config
        weak = self._solve(self.weak, zero_shot(problem.question), temperature=0.0)
        base = {"kind": self.kind, "stage": cfg.stage, "problem_id": problem.id,
                "question": problem.question, "prompt": zero_shot(problem.question)[0]["content"],
                "weak_solution": weak.text.strip(), "weak_answer": extract_answer(weak.text)}
        if cfg.stage == 1:
            strong = self._solve(self.model, few_shot(problem.question, cfg.icl_examples), temperature=0.0)
            s_ans = extract_answer(strong.text)
            agree = base["weak_answer"] is not None and answers_equal(base["weak_answer"], s_ans)
            return {**base, "strong_solution": strong.text.strip(), "strong_answer": s_ans, "agree": agree,
                    "drop": None if agree else "disagree",
                    "usage": sum_usage(usage_of(weak), usage_of(strong)),
                    "usage_weak": usage_of(weak), "usage_strong": usage_of(strong)}
        lm = self.model.get()
        reqs = [lm.request(zero_shot(problem.question), max_tokens=cfg.max_tokens,
                           temperature=cfg.temperature, seed=cfg.seed + i) for i in range(cfg.samples)]
        gens = lm.batch(reqs, max_concurrency=min(cfg.samples, 8))
        samples = [{"text": g.text.strip(), "answer": extract_answer(g.text)} for g in gens]
        decision = confidence_pair(base["weak_answer"], [s["answer"] for s in samples],
                                   min_confidence=cfg.min_confidence, high_confidence=cfg.high_confidence)

        def text(which: Any) -> str | None:
            return None if which is None else base["weak_solution"] if which == "weak" else samples[which]["text"]

        return {**base, "strong_samples": samples, **decision,
                "chosen_text": text(decision["chosen"]), "rejected_text": text(decision["rejected"]),
                "usage": sum_usage(usage_of(weak), usage_of(gens)),
                "usage_weak": usage_of(weak), "usage_strong": usage_of(gens)}

    def describe(self) -> dict[str, Any]:
        return asdict(self.config)
