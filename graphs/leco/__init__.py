"""LECO (Learning from Correctness, Yao et al. 2024): cut at the least-confident step, keep the
trusted prefix, regenerate from there, vote over the answers.

- :func:`create_leco_graph`: the LangGraph graph (the Runnable users get).
- :class:`LecoConfig`: scoring, stopping and budget settings.
- :func:`graphs.leco.loop.leco_loop`: the loop, written once (graph and middleware drive it).
- :mod:`graphs.leco.policy`: the pure decisions (steps, scores, cut point, stop rule, vote).
"""

from graphs.leco.config import LecoConfig
from graphs.leco.graph import create_leco_graph, regeneration_path
from graphs.leco.state import LecoInput, LecoState

__all__ = ["LecoConfig", "LecoInput", "LecoState", "create_leco_graph", "regeneration_path"]
