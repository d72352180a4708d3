"""sc-chains: self-correcting LLM chains for LangChain and LangGraph.

The names a user needs live here, in one flat namespace (about 45: the chains, their configs,
the middleware, the Runnables, the adapters, the errors to catch); each object has one import
path (the rest stay in the module that defines them: ``adapters.errors``, ``sc_chains.testing``,
``sc_chains.datagen``...). Imports are lazy: ``import sc_chains`` loads neither torch,
transformers nor openai; each name loads its module on first use (like langchain_core's
``__getattr__``).

sc-chains installs the top-level packages ``adapters`` and ``graphs`` beside ``sc_chains``. A
folder of the same name earlier on ``sys.path`` (e.g. your project's own ``graphs/`` in the
working directory) would shadow them: ``import sc_chains`` then raises an ``ImportError`` that
names the shadowing path and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

_OWN = ("adapters", "graphs")
"""The top-level packages sc-chains installs beside ``sc_chains``."""


def _check_not_shadowed() -> None:
    """Raise ``ImportError`` if ``adapters`` or ``graphs`` resolve to another package than ours."""
    home = Path(__file__).resolve().parent.parent
    for name in _OWN:
        expected = home / name
        module = sys.modules.get(name)
        if module is not None:
            found = [Path(p).resolve() for p in getattr(module, "__path__", [])]
        else:
            spec = importlib.util.find_spec(name)
            found = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else [expected]
        if found and found[0] != expected:
            raise ImportError(
                f"sc_chains: the package {name!r} at {found[0]} shadows sc-chains' own {name!r} ({expected}); "
                f"rename or move that folder, or run from a directory that has no {name}/ folder "
                "(the current directory comes first on sys.path)",
                name=name, path=str(found[0]),
            )


_check_not_shadowed()

# public name -> module that defines it (one import path per name: the layers below keep their
# own names; everything else is reachable from the module that defines it)
_EXPORTS: dict[str, str] = {
    # adapters: the vocabulary, the interface, the backends
    "Capabilities": "adapters.types",
    "Generation": "adapters.types",
    "GenerationRequest": "adapters.types",
    "LogprobModel": "adapters.base",
    "resolve_model": "adapters.specs",
    "HFModel": "adapters.hf",
    "OpenAIModel": "adapters.openai_compat",
    "ChatModelAdapter": "adapters.langchain",
    "ChatLogprobModel": "sc_chains.chat_model",
    # errors (the rest: adapters.errors)
    "SCChainsError": "adapters.errors",
    "CallTimeoutError": "adapters.errors",
    "ContextWindowExceededError": "adapters.errors",
    "InvalidRequestError": "adapters.errors",
    "LogprobsUnavailableError": "adapters.errors",
    "ModelNotFoundError": "adapters.errors",
    "RetriesExhaustedError": "adapters.errors",
    "ScoringUnavailableError": "adapters.errors",
    "ServerUnreachableError": "adapters.errors",
    "UnknownModelSpecError": "adapters.errors",
    # the correction chains (compiled LangGraph graphs) and their configs
    "LecoConfig": "graphs.leco",
    "create_leco_graph": "graphs.leco",
    "RewritePrompt": "graphs.s2a",
    "S2AConfig": "graphs.s2a",
    "create_s2a_graph": "graphs.s2a",
    "CritiqueConfig": "graphs.critique",
    "create_critique_graph": "graphs.critique",
    "create_sc_graph": "graphs.sc",
    # the program critic (opt-in: runs model-written code in graphs.sandbox; critic="program"
    # gives the default one; program_verifier and ScConfig stay in their modules: 50 names at most)
    "ProgramCritic": "graphs.critique.program",
    # the chains as LCEL Runnables
    "critique_chain": "sc_chains.runnables",
    "leco_chain": "sc_chains.runnables",
    "s2a_chain": "sc_chains.runnables",
    # middleware for langchain.agents.create_agent
    "Budget": "sc_chains.middleware",
    "CritiqueReviseMiddleware": "sc_chains.middleware",
    "CritiqueReviseMiddlewareConfig": "sc_chains.middleware",
    "LecoMiddleware": "sc_chains.middleware",
    "LecoMiddlewareConfig": "sc_chains.middleware",
    "S2AMiddleware": "sc_chains.middleware",
    "S2AMiddlewareConfig": "sc_chains.middleware",
    # LLM-as-a-judge
    "Judge": "graphs.judge",
    # training data from the same graphs
    "LecoStepsGenerator": "sc_chains.datagen",
    "ScoreConfig": "sc_chains.datagen",
    "ScoreGenerator": "sc_chains.datagen",
    "SelfRewardGenerator": "sc_chains.datagen",
    "W2SGenerator": "sc_chains.datagen",
    "run_datagen": "sc_chains.datagen",
    # datasets and evaluation
    "Problem": "sc_chains.datasets",
    "load_dataset": "sc_chains.datasets",
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
