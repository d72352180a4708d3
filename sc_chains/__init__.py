"""sc-chains: self-correcting LLM chains for LangChain and LangGraph.

Everything users import lives here, in one flat namespace. Imports are lazy: ``import
sc_chains`` loads neither torch, transformers nor openai; each name loads its module on first
use (like langchain_core's ``__getattr__``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # adapters: the vocabulary, the interface, the backends
    "Capabilities": "adapters.types",
    "Generation": "adapters.types",
    "GenerationRequest": "adapters.types",
    "TokenLogprob": "adapters.types",
    "TopLogprob": "adapters.types",
    "Usage": "adapters.types",
    "LogprobModel": "adapters.base",
    "resolve_model": "adapters.specs",
    "HFModel": "adapters.hf",
    "load_hf_model": "adapters.hf",
    "tiny_random_model": "adapters.hf",
    "OpenAIModel": "adapters.openai_compat",
    "RetryPolicy": "adapters.retry",
    "LangChainModel": "adapters.langchain",
    "parse_logprobs": "adapters.langchain",
    "ChatLogprobModel": "sc_chains.chat_model",
    # errors
    "CallTimeoutError": "adapters.errors",
    "ContextWindowExceededError": "adapters.errors",
    "InvalidSecretError": "adapters.errors",
    "EmbeddedModelCorruptError": "adapters.errors",
    "EmbeddedModelMissingError": "adapters.errors",
    "InvalidRequestError": "adapters.errors",
    "LogprobsUnavailableError": "adapters.errors",
    "MalformedResponseError": "adapters.errors",
    "ModelNotFoundError": "adapters.errors",
    "RetriesExhaustedError": "adapters.errors",
    "SCChainsError": "adapters.errors",
    "ServerRejectedRequestError": "adapters.errors",
    "ServerUnreachableError": "adapters.errors",
    "UnknownModelSpecError": "adapters.errors",
    "UnreachableAfterRetriesError": "adapters.errors",
    # the correction chains (compiled LangGraph graphs)
    "LecoConfig": "graphs.leco",
    "LecoState": "graphs.leco",
    "create_leco_graph": "graphs.leco",
    "run_leco": "sc_chains.leco",
    "CritiqueConfig": "sc_chains.critique",
    "answer_match_verifier": "sc_chains.critique",
    "create_critique_graph": "sc_chains.critique",
    "run_critique": "sc_chains.critique",
    "RewritePrompt": "sc_chains.s2a",
    "S2AConfig": "sc_chains.s2a",
    "create_s2a_graph": "sc_chains.s2a",
    "run_s2a": "sc_chains.s2a",
    # the loops as LCEL Runnables
    "as_chain": "sc_chains.runnables",
    "critique_chain": "sc_chains.runnables",
    "leco_chain": "sc_chains.runnables",
    "s2a_chain": "sc_chains.runnables",
    # LLM-as-a-judge
    "Judge": "sc_chains.judge",
    "JudgeResult": "sc_chains.judge",
    "JudgeScore": "sc_chains.judge",
    "PairwiseResult": "sc_chains.judge",
    "expected_score": "sc_chains.judge",
    "parse_score": "sc_chains.judge",
    # middleware for langchain.agents.create_agent
    "Budget": "sc_chains.middleware",
    "CritiqueReviseConfig": "sc_chains.middleware",
    "CritiqueReviseMiddleware": "sc_chains.middleware",
    "LecoMiddleware": "sc_chains.middleware",
    "LecoMiddlewareConfig": "sc_chains.middleware",
    "S2AMiddleware": "sc_chains.middleware",
    "S2AMiddlewareConfig": "sc_chains.middleware",
    # training data from the same graphs
    "DatagenMismatchError": "sc_chains.datagen",
    "LecoStepsGenerator": "sc_chains.datagen",
    "NoTrainingRowsWarning": "sc_chains.datagen",
    "load_prompts": "sc_chains.datagen",
    "ScoreConfig": "sc_chains.datagen",
    "ScoreGenerator": "sc_chains.datagen",
    "SelfRewardConfig": "sc_chains.datagen",
    "SelfRewardGenerator": "sc_chains.datagen",
    "W2SConfig": "sc_chains.datagen",
    "W2SGenerator": "sc_chains.datagen",
    "run_datagen": "sc_chains.datagen",
    # datasets, the resumable runner, evaluation
    "DATASETS": "sc_chains.datasets",
    "DataFileNotFoundError": "sc_chains.datasets",
    "DatasetError": "sc_chains.datasets",
    "DatasetRowError": "sc_chains.datasets",
    "DatasetUnavailableError": "sc_chains.datasets",
    "Problem": "sc_chains.datasets",
    "add_distractor": "sc_chains.datasets",
    "add_opinion": "sc_chains.datasets",
    "load_dataset": "sc_chains.datasets",
    "NothingSucceededError": "sc_chains.runner",
    "RunStats": "sc_chains.runner",
    "arun_jobs": "sc_chains.runner",
    "read_records": "sc_chains.runner",
    "run_jobs": "sc_chains.runner",
    "ChainNeedsLogprobsError": "sc_chains.eval.harness",
    "EmptyDatasetError": "sc_chains.eval.harness",
    "EvalMismatchError": "sc_chains.eval.harness",
    # output folders of eval and datagen
    "ForeignFilesError": "sc_chains.outdir",
    "OutputFolderError": "sc_chains.outdir",
    "OutputWriteError": "sc_chains.outdir",
    "RunMismatchError": "sc_chains.outdir",
    "run_eval": "sc_chains.eval.harness",
    # answers
    "answers_equal": "graphs.answers",
    "extract_answer": "graphs.answers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sc_chains' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
