"""Every ``datagen`` format trains: two optimizer steps of the matching trainer on a tiny model.

Rows come from ``run_datagen`` on scripted fakes (so each format has real rows of both kinds),
are read back with ``datasets.load_dataset("json", ...)`` as a user would, and train a copy of
``hf:tiny-random`` (a 2-layer Llama built from a config in code): TRL 1.16's ``SFTTrainer``
(messages; prompt/completion), ``DPOTrainer`` (self-reward and w2s stage 2 pairs), ``KTOTrainer``
(unpaired), and for stepwise rows :mod:`sc_chains.datagen.train_prm` (token classification;
TRL removed ``PRMTrainer`` after 1.13). Each test prints its step losses (``pytest -s``).

Needs the ``train`` extra (``trl``, ``datasets``); skipped without it.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="TRL is not installed: pip install 'sc-chains[train]' (trl, datasets)")
pytest.importorskip("datasets", reason="datasets is not installed: pip install 'sc-chains[train]'")

from graphs.critique.prompts import SCORE_INSTRUCTION
from sc_chains.datagen import (
    LecoStepsGenerator,
    ScoreGenerator,
    SelfRewardConfig,
    SelfRewardGenerator,
    W2SConfig,
    W2SGenerator,
    run_datagen,
)
from sc_chains.datagen.exporters import SPECIAL_TOKEN
from sc_chains.datasets import Problem
from sc_chains.testing import FakeLogprobModel, FakeReply

PROBLEMS = [Problem(f"q{i}", f"What is {i} + 1?", str(i + 1)) for i in range(6)]


def _n(req) -> int:
    """n of "What is n + 1?" in the last user message (w2s's strong model sees examples first)."""
    last = next(m for m in reversed(req.messages) if m["role"] == "user" and m["content"].startswith("What is"))
    return int(last["content"].split()[2])


def _sr_reply(req):
    content = req.messages[-1]["content"]
    if content.startswith("Review the user's question"):
        return "Score: 4" if "<response>Right" in content else "Score: 1"
    return "Right answer.<|im_end|>" if req.seed == 0 else "Wrong.<pad>"


def _score_reply(req):
    """Attempt 2 is right for even n and wrong for odd n: SFT rows and both KTO labels."""
    n = _n(req)
    if req.messages[-1]["content"] == SCORE_INSTRUCTION:
        m = n + 1 if n % 2 == 0 else n + 3
        return f"{n} + 1 = {m}.\nThe answer is {m}."
    return f"Guess.<unk>\nThe answer is {n}."


def _w2s_models(stage: int):
    weak = FakeLogprobModel(default=lambda r: f"{_n(r)} plus 1.\nThe answer is {_n(r) + 1}.", name="weak")
    if stage == 1:
        strong = FakeLogprobModel(default=lambda r: f"Add: {_n(r) - 0} + 1.\nThe answer is {_n(r) + 1}.", name="strong")
    else:  # 4 of 5 strong samples agree with the weak answer, one does not: (weak, outlier) pairs
        strong = FakeLogprobModel(
            default=lambda r: f"Sample {r.seed}.\nThe answer is {_n(r) + (1 if r.seed % 5 else 7)}.", name="strong")
    return strong, weak


def _tiny():
    from adapters.hf.tiny import build_tiny_random

    model, tokenizer = build_tiny_random()
    return copy.deepcopy(model).train(), tokenizer  # never train the shared instance


def _args(cls, tmp_path, **kw):
    return cls(output_dir=str(tmp_path / "ckpt"), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3,
               report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, disable_tqdm=True, **kw)


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(before, model) -> bool:
    return any(not before[n].equal(p.detach()) for n, p in model.named_parameters())


def _rows(gen, out: Path, fmt: str | None = None, **kw):
    """Run datagen; return the rows as ``datasets`` reads them (and check they are clean)."""
    from datasets import load_dataset

    m = run_datagen(gen, PROBLEMS, out, dataset="unit", fmt=fmt, progress=False, concurrency=1, **kw)
    assert m["status"] == "ok" and m["counts"]["examples"] >= 2
    text = (out / "train.jsonl").read_text()
    assert not SPECIAL_TOKEN.search(text)
    ds = load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    assert len(ds) == m["counts"]["examples"]
    return ds


def _train(trainer, model, name: str) -> list[float]:
    before = _weights(model)
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(f"\nSTEP LOSSES {name}: {losses}")
    assert out.global_step == 2 and len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert _changed(before, model)
    return losses


# The fast tier trains each format once; the same formats from the other generators (w2s rows:
# the same columns, another generator's content) train in the slow tier, which CI runs.
FULL_SUITE = pytest.mark.slow


@pytest.mark.parametrize(
    ("kind", "fmt", "columns"),
    [("score", "messages", ["messages"]), ("score", "prompt-completion", ["prompt", "completion"]),
     pytest.param("w2s", "messages", ["messages"], marks=FULL_SUITE),
     pytest.param("w2s", "prompt-completion", ["prompt", "completion"], marks=FULL_SUITE)],
)
def test_sft_two_steps(tmp_path, kind, fmt, columns):
    from trl import SFTConfig, SFTTrainer

    gen = ScoreGenerator(FakeLogprobModel(default=_score_reply)) if kind == "score" else W2SGenerator(*_w2s_models(1))
    ds = _rows(gen, tmp_path / kind, fmt)
    assert ds.column_names == columns
    if fmt == "prompt-completion" and kind == "score":
        assert [x["role"] for x in json.loads(json.dumps(ds[0]["prompt"]))] == ["user", "assistant", "user"]
    model, tok = _tiny()
    trainer = SFTTrainer(model=model, args=_args(SFTConfig, tmp_path, max_length=512), train_dataset=ds,
                         processing_class=tok)
    _train(trainer, model, f"SFT {kind} {fmt}")


@pytest.mark.parametrize("kind", ["self-reward", pytest.param("w2s", marks=FULL_SUITE)])
def test_dpo_two_steps(tmp_path, kind):
    from trl import DPOConfig, DPOTrainer

    if kind == "self-reward":
        gen = SelfRewardGenerator(FakeLogprobModel(default=_sr_reply), SelfRewardConfig(n=2, judge_k=1))
    else:
        gen = W2SGenerator(*_w2s_models(2), W2SConfig(stage=2, samples=5))
    ds = _rows(gen, tmp_path / kind)
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert ds[0]["chosen"][0]["role"] == "assistant" and ds[0]["chosen"] != ds[0]["rejected"]
    model, tok = _tiny()
    ref = copy.deepcopy(model).eval()  # built in code: TRL cannot reload it from a path
    trainer = DPOTrainer(model=model, ref_model=ref, args=_args(DPOConfig, tmp_path, beta=0.1, max_length=256),
                         train_dataset=ds, processing_class=tok)
    _train(trainer, model, f"DPO {kind}")


def test_kto_two_steps(tmp_path):
    from trl import KTOConfig, KTOTrainer

    ds = _rows(ScoreGenerator(FakeLogprobModel(default=_score_reply)), tmp_path / "kto", "kto")
    assert ds.column_names == ["prompt", "completion", "label"] and set(ds["label"]) == {True, False}
    model, tok = _tiny()
    ref = copy.deepcopy(model).eval()
    trainer = KTOTrainer(model=model, ref_model=ref, args=_args(KTOConfig, tmp_path, max_length=512),
                         train_dataset=ds, processing_class=tok)
    _train(trainer, model, "KTO score")


LECO_SCRIPT = [
    FakeReply("Step 1: Tom has 3 apples.\nStep 2: He buys 2 bags.\nStep 3: Each bag has 3, so 6.\n"
              "Step 4: 3+6=10.\nThe answer is 10.",
              overrides={"Step 3: Each bag has 3, so 6.": -1.5, "Step 4: 3+6=10.": -2.5}),
    FakeReply("Step 3: Each bag has 2, so 4.\nStep 4: 3+4=7.\nThe answer is 7."),
    FakeReply("Step 3: Each bag has 2, so 4.\nStep 4: 3+4=7.\nThe answer is 7."),
]


def test_stepwise_rows_train_a_step_reward_model_two_steps(tmp_path):
    from datasets import load_dataset
    from transformers import LlamaForTokenClassification

    from sc_chains.datagen.train_prm import PRMConfig, load_prm, load_stepwise_rows, score_steps, train_prm

    problems = [Problem(f"a{i}", "Tom has 3 apples and buys 2 bags of 2. How many?", "7") for i in range(2)]
    out = tmp_path / "steps"
    m = run_datagen(LecoStepsGenerator(FakeLogprobModel(list(LECO_SCRIPT) * 2), {"rethink_temperature": 0.7}),
                    problems, out, dataset="unit", progress=False, concurrency=1)
    assert m["status"] == "ok" and m["counts"]["examples"] == 4
    ds = load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    assert ds.column_names == ["prompt", "completions", "labels"]
    assert all(s.strip() for r in ds for s in r["completions"]) and any(not all(r["labels"]) for r in ds)
    rows = load_stepwise_rows(out / "train.jsonl")
    base, tok = _tiny()
    model = LlamaForTokenClassification(base.config.__class__.from_dict({**base.config.to_dict(), "num_labels": 2}))
    before = _weights(model)
    cfg = PRMConfig(max_steps=2, batch_size=2, learning_rate=1e-3, max_length=512, max_prompt_length=128, use_cpu=True)
    result = train_prm(rows, model, tok, tmp_path / "prm", cfg)
    print(f"\nSTEP LOSSES PRM leco-steps: {result['losses']}")
    assert result["steps"] == 2 and len(result["losses"]) == 2 and all(math.isfinite(x) for x in result["losses"])
    assert result["rows"] == 4 and result["skipped"] == 0 and _changed(before, model)
    again, tok2, cfg2 = load_prm(tmp_path / "prm")
    probs = score_steps(again.eval(), tok2, rows[1]["prompt"], rows[1]["completions"], cfg2)
    assert len(probs) == len(rows[1]["completions"]) and all(0.0 < p < 1.0 for p in probs)


def test_prm_labels_sit_on_the_last_token_of_each_step():
    from adapters.hf.tiny import build_tiny_random
    from sc_chains.datagen.train_prm import IGNORE, PRMConfig, encode_row

    _, tok = build_tiny_random()  # one token per character
    enc = encode_row({"prompt": "Q", "completions": ["ab", "c"], "labels": [True, False]}, tok, PRMConfig())
    assert tok.decode(enc["input_ids"]) == "Q\nab\nc\n"
    assert enc["labels"] == [IGNORE, IGNORE, IGNORE, IGNORE, 1, IGNORE, 0]
    short = encode_row({"prompt": "Q", "completions": ["ab", "cdefgh"], "labels": [True, False]}, tok,
                       PRMConfig(max_length=6, max_prompt_length=2))
    assert short["labels"] == [IGNORE, IGNORE, IGNORE, IGNORE, 1]  # the step that does not fit is left out


def test_train_prm_rejects_bad_rows_and_config(tmp_path):
    from adapters.errors import InvalidRequestError
    from sc_chains.datagen.train_prm import PRMConfig, load_stepwise_rows, main
    from sc_chains.datasets import DatasetRowError

    f = tmp_path / "train.jsonl"
    f.write_text(json.dumps({"prompt": "Q", "completions": ["a", ""], "labels": [True, True]}) + "\n")
    with pytest.raises(DatasetRowError, match=r"train.jsonl:1: field 'completions'"):
        load_stepwise_rows(f)
    f.write_text(json.dumps({"prompt": "Q", "completions": ["a"], "labels": [True, False]}) + "\n")
    with pytest.raises(DatasetRowError, match=r"field 'labels' is \[True, False\]; one bool per step \(1\)"):
        load_stepwise_rows(f)
    with pytest.raises(InvalidRequestError, match="max_prompt_length"):
        PRMConfig(max_length=8, max_prompt_length=8)
    with pytest.raises(InvalidRequestError, match="learning_rate"):
        PRMConfig(learning_rate=0)
    assert main(["--data", str(f), "--model", "hf:tiny-random", "--out", str(tmp_path / "o")]) == 2


def test_train_prm_command_line_on_tiny_random(tmp_path, capsys):
    from sc_chains.datagen.train_prm import main

    f = tmp_path / "train.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in [
        {"prompt": "What is 2+3?", "completions": ["2+3=5", "The answer is 5."], "labels": [True, True]},
        {"prompt": "What is 2+3?", "completions": ["2+3=6", "The answer is 6."], "labels": [False, False]},
    ]))
    code = main(["--data", str(f), "--model", "hf:tiny-random", "--out", str(tmp_path / "prm"), "--max-steps", "2",
                 "--batch-size", "2", "--learning-rate", "1e-3", "--cpu"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["steps"] == 2 and len(result["losses"]) == 2 and result["rows"] == 2
    assert (tmp_path / "prm" / "prm_config.json").is_file()
