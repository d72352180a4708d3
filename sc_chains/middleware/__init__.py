"""Drop-in middleware for ``langchain.agents.create_agent``: S2A, LECO and critique-revise.

Each one works alone or together, sync and async, with a checkpointer, next to LangChain's own
middleware (``HumanInTheLoopMiddleware``, ``ModelRetryMiddleware``, ``ModelFallbackMiddleware``),
with per-request budgets in private state, a streaming policy, and the cost of every extra call
added to the final answer's ``usage_metadata``.
"""

from sc_chains.middleware._shared import Budget
from sc_chains.middleware.critique import CritiqueReviseMiddleware, CritiqueReviseMiddlewareConfig
from sc_chains.middleware.leco import LecoMiddleware, LecoMiddlewareConfig
from sc_chains.middleware.s2a import S2AMiddleware, S2AMiddlewareConfig

__all__ = [
    "Budget",
    "CritiqueReviseMiddleware",
    "CritiqueReviseMiddlewareConfig",
    "LecoMiddleware",
    "LecoMiddlewareConfig",
    "S2AMiddleware",
    "S2AMiddlewareConfig",
]
