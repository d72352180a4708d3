"""Prefix KV-cache reuse: keep the last sequence's cache, reuse its longest common prefix.

A LECO retry sends the same prompt with a kept prefix of the previous reply as ``prefill``;
the tokens of ``prompt + prefix`` mostly equal the start of the last sequence, so instead of
re-encoding them we crop the previous cache to the common prefix and encode only the rest.
Not thread-safe by itself: :class:`~adapters.hf.model.HFModel` holds its lock around it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["PrefixKVCache", "common_prefix_len"]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def crop_cache(cache: Any, keep: int) -> bool:
    """Crop ``cache`` in place to its first ``keep`` positions; ``False`` if it cannot be."""
    current = cache.get_seq_length()
    if keep > current:
        return False
    if keep == current:
        return True
    if not getattr(cache, "is_croppable", True):
        return False
    try:
        cache.crop(keep - current)  # a negative count removes that many trailing positions
    except (ValueError, RuntimeError, NotImplementedError):
        return False
    return cache.get_seq_length() == keep


class PrefixKVCache:
    """Holds the KV cache of one sequence (``ids``) for the next request to start from."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._cache: Any = None

    @property
    def ids(self) -> list[int]:
        """Token ids whose keys/values the kept cache holds."""
        return list(self._ids)

    def take(self, ids: Sequence[int], new_cache: Callable[[], Any]) -> tuple[Any, int]:
        """A cache holding the longest reusable prefix of ``ids``, and that prefix's length.

        At least one token of ``ids`` is always left to encode (its logits start decoding).
        The kept cache is handed over (and forgotten here): call :meth:`keep` afterwards.
        """
        cache, cached_ids = self._cache, self._ids
        self._cache, self._ids = None, []
        if cache is None or cache.get_seq_length() != len(cached_ids):
            return new_cache(), 0
        reuse = min(common_prefix_len(cached_ids, ids), len(ids) - 1)
        if reuse <= 0 or not crop_cache(cache, reuse):
            return new_cache(), 0
        return cache, reuse

    def keep(self, ids: Sequence[int], cache: Any) -> None:
        """Remember ``cache``, which holds the keys/values of exactly ``ids``."""
        self._ids, self._cache = list(ids), cache

    def clear(self) -> None:
        """Forget the kept cache (frees its memory)."""
        self._ids, self._cache = [], None
