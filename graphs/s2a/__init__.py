"""System 2 Attention (Weston and Sukhbaatar, 2023): rewrite the input, then answer the rewrite.

:func:`create_s2a_graph` builds the LangGraph state machine; :class:`S2AConfig` picks the
rewrite prompt (opinion removal, irrelevant-context removal, or a custom
:class:`RewritePrompt`; zero-shot or ``few_shot``), the variant and the ``mode`` (the rewrite,
or the per-sentence relevance filter of :mod:`graphs.s2a.filter`); :mod:`graphs.s2a.parse` holds the pure parsing and the
fallback policy.
"""

from graphs.s2a.config import MODES, VARIANTS, S2AConfig
from graphs.s2a.graph import S2AInput, S2AState, create_s2a_graph
from graphs.s2a.parse import ParsedRewrite, parse_rewrite, removed_sentences, split_sentences
from graphs.s2a.prompts import BUILTIN_REWRITES, RewritePrompt, build_answer_prompt

__all__ = [
    "BUILTIN_REWRITES",
    "MODES",
    "VARIANTS",
    "ParsedRewrite",
    "RewritePrompt",
    "S2AConfig",
    "S2AInput",
    "S2AState",
    "build_answer_prompt",
    "create_s2a_graph",
    "parse_rewrite",
    "removed_sentences",
    "split_sentences",
]
