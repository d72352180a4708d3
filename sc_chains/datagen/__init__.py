"""Training data from the self-correction graphs, in TRL's formats (``sc-chains datagen``).

Generators (one record per item in ``raw.jsonl``; TRL rows in ``train.jsonl``):

- :class:`ScoreGenerator` (``score``): SCoRe two-attempt conversations with verifier rewards.
- :class:`SelfRewardGenerator` (``self-reward``): N responses self-judged into (best, worst) pairs.
- :class:`W2SGenerator` (``w2s``): weak-to-strong stage I (agreement SFT) and II (confidence pairs).
- :class:`LecoStepsGenerator` (``leco-steps``): stepwise labels from LECO traces.

:func:`run_datagen` runs one resumably (local threads or Ray) and writes ``manifest.json`` (and,
on request, an ``hf_dataset/`` folder); :mod:`sc_chains.datagen.train_prm` trains a step-level
reward model on the stepwise rows.
"""

# The pure helpers (exporters, pair rules, rewards) are importable from here too, for tests and
# notebooks; the flat public API (``sc_chains.__all__``) exports the generators only.
from sc_chains.datagen.exporters import EXPORTERS, examples  # noqa: F401
from sc_chains.datagen.leco_steps import LecoStepsGenerator, step_sequences  # noqa: F401
from sc_chains.datagen.manifest import DatagenMismatchError
from sc_chains.datagen.run import BACKENDS, NoTrainingRowsWarning, run_datagen  # noqa: F401
from sc_chains.datagen.score import ScoreConfig, ScoreGenerator, shaped_reward  # noqa: F401
from sc_chains.datagen.self_reward import (  # noqa: F401
    SelfRewardConfig,
    SelfRewardGenerator,
    load_prompts,
    preference_pair,
)
from sc_chains.datagen.w2s import W2SConfig, W2SGenerator, confidence_pair, majority  # noqa: F401

__all__ = [
    "DatagenMismatchError",
    "LecoStepsGenerator",
    "NoTrainingRowsWarning",
    "ScoreConfig",
    "ScoreGenerator",
    "SelfRewardConfig",
    "SelfRewardGenerator",
    "W2SConfig",
    "W2SGenerator",
    "load_prompts",
    "run_datagen",
]
