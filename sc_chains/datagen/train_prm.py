"""Train a step-level (process) reward model on ``leco-steps`` rows: token classification.

TRL removed its ``PRMTrainer`` after 1.13, so this module is the consumer of the stepwise
format (``{"prompt", "completions": [step, ...], "labels": [bool, ...]}``) that
``sc-chains datagen leco-steps`` writes. It does what ``PRMTrainer`` did, on transformers alone:

- each row becomes ``prompt + sep + step_1 + sep + step_2 + sep ...`` (``sep`` is
  :attr:`PRMConfig.step_separator`, ``"\\n"``); the label of step *i* (1 = correct, 0 = wrong)
  sits on the last token of ``step_i + sep``, every other token is ``-100`` (ignored);
- a ``AutoModelForTokenClassification`` head with 2 labels is trained with ``transformers.Trainer``
  (cross-entropy on the labelled tokens only);
- :func:`score_steps` reads the trained model back: P(step is correct) for each step.

Command line (``pip install 'sc-chains[hf,train]'``)::

    sc-chains datagen leco-steps --dataset svamp --model hf:default --out data/prm
    python -m sc_chains.datagen.train_prm --data data/prm/train.jsonl \\
        --model HuggingFaceTB/SmolLM2-135M-Instruct --out prm-model --max-steps 200

``--model`` is a hub id or local folder (or ``hf:tiny-random``, a random tiny model built in
code, for trying the pipeline). The output folder holds the model, its tokenizer and
``prm_config.json`` (the separator), which :func:`load_prm` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapters.errors import InvalidRequestError
from sc_chains.datasets import DatasetRowError, read_text

__all__ = ["PRMConfig", "encode_row", "load_prm", "load_stepwise_rows", "main", "score_steps", "train_prm"]

IGNORE = -100
"""Label of tokens that carry no step label (the loss skips them)."""


@dataclass(frozen=True)
class PRMConfig:
    """Settings of :func:`train_prm`."""

    max_steps: int = 100
    """Optimizer steps."""
    learning_rate: float = 1e-5
    """Peak learning rate (AdamW, linear decay)."""
    batch_size: int = 4
    """Rows per optimizer step (per device)."""
    max_length: int = 1024
    """Most tokens per row; steps that do not fit whole are left out (the row's first steps stay)."""
    max_prompt_length: int = 512
    """Most prompt tokens (the prompt's end is kept)."""
    step_separator: str = "\n"
    """Text after each step; the label sits on its last token."""
    seed: int = 0
    """Seed of the data order and the new head's initialisation."""
    use_cpu: bool = False
    """Train on the CPU even where an accelerator exists."""

    def __post_init__(self) -> None:
        for name, low in (("max_steps", 1), ("batch_size", 1), ("max_length", 2), ("max_prompt_length", 1), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidRequestError(name, value, f"pass an integer >= {low}")
        if self.max_prompt_length >= self.max_length:
            raise InvalidRequestError("max_prompt_length", self.max_prompt_length,
                                      f"must be below max_length={self.max_length} (steps need room)")
        if not isinstance(self.learning_rate, (int, float)) or isinstance(self.learning_rate, bool) \
                or not 0 < self.learning_rate < 1:
            raise InvalidRequestError("learning_rate", self.learning_rate, "pass a number in (0, 1), e.g. 1e-5")
        if not isinstance(self.step_separator, str) or not self.step_separator:
            raise InvalidRequestError("step_separator", self.step_separator, "pass a non-empty string such as '\\n'")


def _check_row(row: Any, where: Path | str, line: int | str) -> dict[str, Any]:
    fix = "stepwise rows are {\"prompt\": str, \"completions\": [str, ...], \"labels\": [bool, ...]} (datagen leco-steps)"
    if not isinstance(row, Mapping):
        raise DatasetRowError(where, line, None, f"a {type(row).__name__}, not an object", fix)
    prompt, steps, labels = row.get("prompt"), row.get("completions"), row.get("labels")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetRowError(where, line, "prompt", prompt, fix)
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise DatasetRowError(where, line, "completions", steps, "every step must be non-empty text; " + fix)
    if not isinstance(labels, list) or len(labels) != len(steps) or not all(isinstance(b, bool) for b in labels):
        raise DatasetRowError(where, line, "labels", labels, f"one bool per step ({len(steps)}); " + fix)
    return {"prompt": prompt, "completions": steps, "labels": labels}


def load_stepwise_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The checked rows of a stepwise ``train.jsonl`` (``.gz`` too); :class:`DatasetRowError` on a bad one."""
    p = Path(path)
    if not p.is_file():
        raise InvalidRequestError("data", str(p), "pass the train.jsonl that 'sc-chains datagen leco-steps' wrote")
    rows = []
    for lineno, text in enumerate(read_text(p).split("\n"), 1):
        if not text.strip():
            continue
        try:
            rows.append(_check_row(json.loads(text), p, lineno))
        except json.JSONDecodeError as exc:
            raise DatasetRowError(p, lineno, None, f"not valid JSON ({exc.msg})", "one JSON object per line") from exc
    if not rows:
        raise InvalidRequestError("data", str(p), "the file has no rows; run datagen leco-steps on more problems")
    return rows


def encode_row(row: Mapping[str, Any], tokenizer: Any, config: PRMConfig) -> dict[str, list[int]] | None:
    """``input_ids``/``attention_mask``/``labels`` of one row (``None`` when not one step fits)."""
    prompt = tokenizer(row["prompt"] + config.step_separator)["input_ids"][-config.max_prompt_length:]
    ids, labels = list(prompt), [IGNORE] * len(prompt)
    for step, good in zip(row["completions"], row["labels"]):
        step_ids = tokenizer(step + config.step_separator, add_special_tokens=False)["input_ids"]
        if not step_ids or len(ids) + len(step_ids) > config.max_length:
            break
        ids += step_ids
        labels += [IGNORE] * (len(step_ids) - 1) + [int(good)]
    if all(lab == IGNORE for lab in labels):
        return None
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def train_prm(
    rows: Sequence[Mapping[str, Any]],
    model: Any,
    tokenizer: Any,
    output_dir: str | os.PathLike[str],
    config: PRMConfig | None = None,
) -> dict[str, Any]:
    """Train ``model`` (a token-classification model with 2 labels) on stepwise ``rows``.

    Saves the model, tokenizer and ``prm_config.json`` to ``output_dir``. Returns ``losses``
    (the training loss of each optimizer step), ``rows`` (used), ``skipped`` (rows with no step
    that fits ``max_length``) and ``steps``.
    """
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    config = config or PRMConfig()
    checked = [_check_row(r, "rows", i) for i, r in enumerate(rows)]
    encoded = [e for e in (encode_row(r, tokenizer, config) for r in checked) if e is not None]
    if not encoded:
        raise InvalidRequestError("rows", f"{len(checked)} rows", "no row has a step within max_length; raise max_length")
    if tokenizer.pad_token is None:  # many causal tokenizers have none; padding needs one
        tokenizer.pad_token = tokenizer.eos_token
    out = Path(output_dir)
    args = TrainingArguments(
        output_dir=str(out), max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, logging_steps=1, save_strategy="no", report_to=[], seed=config.seed,
        use_cpu=config.use_cpu, remove_unused_columns=False, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=encoded,
                      data_collator=DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE))
    trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "prm_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"losses": losses, "rows": len(encoded), "skipped": len(checked) - len(encoded),
            "steps": trainer.state.global_step}


def load_prm(folder: str | os.PathLike[str]) -> tuple[Any, Any, PRMConfig]:
    """``(model, tokenizer, config)`` saved by :func:`train_prm`."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    config = PRMConfig(**json.loads((Path(folder) / "prm_config.json").read_text(encoding="utf-8")))
    return AutoModelForTokenClassification.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder)), config


def score_steps(model: Any, tokenizer: Any, prompt: str, steps: Iterable[str], config: PRMConfig | None = None) -> list[float]:
    """P(correct) of each step of one solution, as the trained model sees it (steps that do not fit are left out)."""
    import torch

    config, steps = config or PRMConfig(), list(steps)
    row = _check_row({"prompt": prompt, "completions": steps, "labels": [True] * len(steps)}, "input", 0)
    enc = encode_row(row, tokenizer, config)
    if enc is None:
        return []
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([enc["input_ids"]], device=model.device)).logits[0]
    probs = logits.float().softmax(-1)[:, 1].tolist()
    return [p for p, lab in zip(probs, enc["labels"]) if lab != IGNORE]


def _load_model(spec: str) -> tuple[Any, Any]:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    if spec == "hf:tiny-random":
        from transformers import LlamaForTokenClassification

        from adapters.hf.tiny import build_tiny_random

        base, tokenizer = build_tiny_random()
        cfg = base.config.__class__.from_dict({**base.config.to_dict(), "num_labels": 2})
        return LlamaForTokenClassification(cfg), tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec)
        return AutoModelForTokenClassification.from_pretrained(spec, num_labels=2), tokenizer
    except OSError as exc:
        raise InvalidRequestError("--model", spec, "pass a hub id or a local model folder (or hf:tiny-random)") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sc_chains.datagen.train_prm``: see the module docstring."""
    from adapters.errors import SCChainsError

    p = argparse.ArgumentParser(prog="python -m sc_chains.datagen.train_prm",
                                description="Train a step-level reward model on leco-steps rows (token classification).")
    p.add_argument("--data", required=True, metavar="FILE", help="stepwise train.jsonl (datagen leco-steps)")
    p.add_argument("--model", required=True, metavar="ID", help="hub id or local folder of a base model, or hf:tiny-random")
    p.add_argument("--out", required=True, metavar="DIR", help="where the trained model goes")
    d = PRMConfig()
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--cpu", action="store_true", help="train on the CPU")
    args = p.parse_args(argv)
    try:
        config = PRMConfig(max_steps=args.max_steps, learning_rate=args.learning_rate, batch_size=args.batch_size,
                           max_length=args.max_length, max_prompt_length=min(d.max_prompt_length, args.max_length // 2),
                           seed=args.seed, use_cpu=args.cpu)
        rows = load_stepwise_rows(args.data)
        model, tokenizer = _load_model(args.model)
        result = train_prm(rows, model, tokenizer, args.out, config)
    except SCChainsError as exc:
        print(f"train_prm: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({**result, "out": args.out}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
