"""``k`` samples of one prompt as one request with ``n=k``, for OpenAI-compatible servers.

LECO's sampled rethinks and self-consistency ask for ``k`` replies to the same messages, seeds
``seed + i`` (:func:`graphs.driver.model_requests`). A server that implements ``n`` (OpenAI,
vLLM, ``sc-chains serve``) answers them in one request, reading the prompt once. Pure helpers,
tested on literals: :func:`sample_groups` finds those runs in a batch, :func:`split_usage` divides
a reply's usage among its choices. A server that returns fewer choices than asked (llama.cpp
ignores ``n``) gets the missing ones as single requests (:class:`adapters.openai_compat.OpenAIModel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from adapters.types import GenerationRequest, Usage

__all__ = ["MAX_N", "sample_groups", "split_usage"]

MAX_N = 16
"""Most choices asked of one request; a longer run of samples is split into several requests."""


def _same_prompt(first: GenerationRequest, other: GenerationRequest, i: int) -> bool:
    """``other`` is ``first``'s ``i``-th sample: equal but for the seed, which is ``first.seed + i``
    (or both have none)."""
    if first.seed is None:
        seed_ok = other.seed is None
    else:
        seed_ok = other.seed == first.seed + i
    return seed_ok and replace(other, seed=first.seed) == first


def sample_groups(requests: Sequence[GenerationRequest], max_n: int = MAX_N) -> list[range]:
    """Split ``requests`` (in order) into runs that one ``n=len(run)`` request can answer.

    A run is a maximal stretch of sampled requests (temperature > 0) equal but for consecutive
    seeds (``seed, seed + 1, ...``, or all ``None``), at most ``max_n`` long; every other request
    is a run of one. The runs cover every index once, in order."""
    groups: list[range] = []
    start = 0
    while start < len(requests):
        first, end = requests[start], start + 1
        if first.temperature > 0:
            while (end < len(requests) and end - start < max_n
                   and _same_prompt(first, requests[end], end - start)):
                end += 1
        groups.append(range(start, end))
        start = end
    return groups


def split_usage(usage: Mapping[str, Any], completion: Sequence[int | None]) -> list[Usage]:
    """One reply's ``usage`` divided among its choices: the prompt (and cached) tokens go to the
    first choice, read once; completion tokens by each choice's own count where known
    (``completion[i]``, e.g. its logprob tokens), the rest of the total shared evenly among the
    others (any remainder to the first). The parts add up to the reply's totals."""
    n = len(completion)
    total = int(usage.get("completion_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    known = [c if isinstance(c, int) and c >= 0 else None for c in completion]
    if sum(c for c in known if c is not None) > total:  # counts that disagree with the total: share it
        known = [None] * n
    unknown = [i for i, c in enumerate(known) if c is None]
    left = total - sum(c for c in known if c is not None)
    share, extra = divmod(left, len(unknown)) if unknown else (0, left)
    parts = [c if c is not None else share for c in known]
    parts[unknown[0] if unknown else 0] += extra
    return [Usage(prompt_tokens=prompt if i == 0 else 0, completion_tokens=parts[i],
                  cached_tokens=cached if i == 0 else 0) for i in range(n)]
