"""One DPO step and one SFT step with TRL on ``hf:tiny-random``, fed by our exported JSONL.

Needs the ``train`` extra (``trl``, ``datasets``); skipped without it.
"""

from __future__ import annotations

import copy
import json
import math

import pytest

pytest.importorskip("trl", reason="TRL is not installed: pip install 'sc-chains[train]' (trl, datasets)")
pytest.importorskip("datasets", reason="datasets is not installed: pip install 'sc-chains[train]'")

from graphs.critique.prompts import SCORE_INSTRUCTION
from sc_chains.datagen import (
    ScoreGenerator,
    SelfRewardConfig,
    SelfRewardGenerator,
    run_datagen,
)
from sc_chains.datasets import Problem
from sc_chains.testing import FakeLogprobModel

PROBLEMS = [Problem(f"q{i}", f"What is {i} + 1?", str(i + 1)) for i in range(4)]


def _sr_reply(req):
    content = req.messages[-1]["content"]
    if content.startswith("Review the user's question"):
        return "Score: 4" if "<response>Right" in content else "Score: 1"
    return "Right answer." if req.seed == 0 else "Wrong."


def _score_reply(req):
    n = int(req.messages[0]["content"].split()[2])
    if req.messages[-1]["content"] == SCORE_INSTRUCTION:
        return f"{n} + 1 = {n + 1}.\nThe answer is {n + 1}."
    return f"Guess.\nThe answer is {n}."


def _tiny():
    from adapters.hf.tiny import build_tiny_random

    model, tokenizer = build_tiny_random()
    return copy.deepcopy(model).train(), tokenizer  # never train the shared instance


def _args(cls, tmp_path, **kw):
    return cls(output_dir=str(tmp_path / "ckpt"), max_steps=1, per_device_train_batch_size=2, learning_rate=1e-3,
               report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, **kw)


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(before, model) -> bool:
    return any(not before[n].equal(p.detach()) for n, p in model.named_parameters())


def test_dpo_step_on_self_reward_pairs(tmp_path):
    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer

    m = run_datagen(SelfRewardGenerator(FakeLogprobModel(default=_sr_reply), SelfRewardConfig(n=2, judge_k=1)),
                    PROBLEMS, tmp_path / "sr", dataset="unit", progress=False)
    assert m["counts"]["examples"] == 4
    ds = load_dataset("json", data_files=str(tmp_path / "sr" / "train.jsonl"), split="train")
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert ds[0]["chosen"] == [{"role": "assistant", "content": "Right answer."}]
    model, tok = _tiny()
    before = _weights(model)
    ref = copy.deepcopy(model).eval()  # built in code: TRL cannot reload it from a path
    trainer = DPOTrainer(model=model, ref_model=ref, args=_args(DPOConfig, tmp_path, beta=0.1, max_length=256),
                         train_dataset=ds, processing_class=tok)
    out = trainer.train()
    assert out.global_step == 1 and math.isfinite(out.training_loss)
    assert _changed(before, model)


def test_sft_step_on_score_conversations(tmp_path):
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    m = run_datagen(ScoreGenerator(FakeLogprobModel(default=_score_reply)), PROBLEMS, tmp_path / "sc",
                    dataset="unit", fmt="prompt-completion", progress=False)
    assert m["counts"]["examples"] == 4
    ds = load_dataset("json", data_files=str(tmp_path / "sc" / "train.jsonl"), split="train")
    assert ds.column_names == ["prompt", "completion"]
    assert [x["role"] for x in json.loads(json.dumps(ds[0]["prompt"]))] == ["user", "assistant", "user"]
    model, tok = _tiny()
    before = _weights(model)
    trainer = SFTTrainer(model=model, args=_args(SFTConfig, tmp_path, max_length=512),
                         train_dataset=ds, processing_class=tok)
    out = trainer.train()
    assert out.global_step == 1 and math.isfinite(out.training_loss)
    assert _changed(before, model)
