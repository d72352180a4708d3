"""Prefix KV-cache reuse: keep recent sequences' caches, start a prompt from the longest match.

A LECO retry sends the same prompt with a kept prefix of the previous reply as ``prefill``; a
critique's revision sends the draft's conversation plus a critique; S2A's relevance questions
share the problem text. The tokens of such a prompt mostly equal the start of a sequence
decoded before, so instead of re-encoding them we start from that sequence's cache, cut to the
common prefix, and encode only the rest.

:class:`PrefixKVCache` keeps several sequences (most recently used first) within a byte budget,
so concurrent conversations (continuous batching) each find their own. Plain ``DynamicLayer``
caches are copied out (the kept entry stays for the next match); other caches (sliding window)
are handed over and cropped, one entry at a time. Not thread-safe by itself:
:class:`~adapters.hf.model.HFModel` holds its lock around it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DEFAULT_PREFIX_CACHE_MB", "MAX_PREFIX_ENTRIES", "PrefixKVCache", "common_prefix_len", "is_dynamic"]

DEFAULT_PREFIX_CACHE_MB = 512
"""Default memory budget of the kept caches (``HFModel(prefix_cache_mb=...)``)."""
MAX_PREFIX_ENTRIES = 64
"""Most sequences kept, whatever the budget (each lookup compares against every one)."""


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def is_dynamic(cache: Any) -> bool:
    """Whether every layer of ``cache`` is a plain ``DynamicLayer`` (rows and columns can be
    sliced, copied, merged and dropped)."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


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


def _nbytes(cache: Any) -> int:
    layers = getattr(cache, "layers", None) or []
    return sum(t.numel() * t.element_size() for layer in layers
               for t in (getattr(layer, "keys", None), getattr(layer, "values", None)) if hasattr(t, "numel"))


class PrefixKVCache:
    """The KV caches of recent sequences (``ids`` -> cache), for the next prompts to start from.

    Args:
        max_bytes: memory budget of the kept caches; the least recently used go first (one
            entry is always kept, so the previous call's cache is reused whatever its size).
        max_entries: most sequences kept (at most :data:`MAX_PREFIX_ENTRIES`).
    """

    def __init__(self, max_bytes: int = DEFAULT_PREFIX_CACHE_MB << 20, max_entries: int = MAX_PREFIX_ENTRIES) -> None:
        self.max_bytes, self.max_entries = max_bytes, min(max_entries, MAX_PREFIX_ENTRIES)
        self._entries: list[tuple[list[int], Any, int]] = []  # (ids, cache, bytes), most recent first

    @property
    def ids(self) -> list[int]:
        """Token ids of the most recently kept sequence."""
        return list(self._entries[0][0]) if self._entries else []

    def __len__(self) -> int:
        return len(self._entries)

    def match_len(self, ids: Sequence[int]) -> int:
        """How many leading tokens of ``ids`` :meth:`take` would reuse now (nothing changes)."""
        return self._best(ids)[1]

    def _best(self, ids: Sequence[int]) -> tuple[int, int]:
        best, reuse = -1, 0
        for i, (kept, cache, _) in enumerate(self._entries):
            n = min(common_prefix_len(kept, ids), len(ids) - 1)
            if n > reuse and cache.get_seq_length() == len(kept):
                best, reuse = i, n
        return best, reuse

    def take(self, ids: Sequence[int], new_cache: Callable[[], Any]) -> tuple[Any, int]:
        """A cache holding the longest reusable prefix of ``ids``, and that prefix's length.

        At least one token of ``ids`` is always left to encode (its logits start decoding).
        A plain dynamic cache is copied (the entry stays); any other is handed over (and
        forgotten here). Either way the caller owns the result: :meth:`keep` it afterwards.
        """
        best, reuse = self._best(ids)
        if best < 0:
            return new_cache(), 0
        kept, cache, size = self._entries.pop(best)
        if is_dynamic(cache):
            self._entries.insert(0, (kept, cache, size))
            return _copy_prefix(cache, reuse, new_cache()), reuse
        if not crop_cache(cache, reuse):
            return new_cache(), 0
        return cache, reuse

    def keep(self, ids: Sequence[int], cache: Any) -> None:
        """Remember ``cache``, which holds the keys/values of exactly ``ids`` (one row; the
        caller must not change it afterwards). An entry whose ids it extends is replaced."""
        ids = list(ids)
        if not ids:
            return
        self._entries = [e for e in self._entries if not (len(e[0]) <= len(ids) and ids[: len(e[0])] == e[0])]
        self._entries.insert(0, (ids, cache, _nbytes(cache)))
        total = sum(e[2] for e in self._entries)
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or total > self.max_bytes):
            total -= self._entries.pop()[2]

    def clear(self) -> None:
        """Forget every kept cache (frees their memory)."""
        self._entries = []


def _copy_prefix(cache: Any, length: int, into: Any) -> Any:
    """``into`` (an empty cache) filled with a copy of the first ``length`` positions of ``cache``."""
    for li, layer in enumerate(cache.layers):
        into.update(layer.keys[:, :, :length], layer.values[:, :, :length], li)
    return into
