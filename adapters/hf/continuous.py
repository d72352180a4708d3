"""Continuous batching for :class:`~adapters.hf.model.HFModel`: rows join and leave between steps.

:class:`HFEngine` holds the running batch: its rows, one KV cache for all of them, an attention
mask and each row's next input token. Rows are right-aligned (left padding), so a row's
position is the count of its real tokens. Every :meth:`HFEngine.advance`:

1. prefills each new job on its own (no padding; a lone prompt starts from the prefix KV cache,
   ``n`` rows of one prompt share one prefill whose cache is repeated; one-row jobs admitted at
   the same step whose prompts share at least :data:`MIN_SHARED_PREFIX` leading tokens, e.g.
   S2A's relevance questions about one problem, prefill that prefix once, its cache repeated,
   then their suffixes as one left-padded batch, the padding masked in the middle of each row,
   when that computes fewer positions than a prefill each),
   picks each new row's first token from the prefill logits, and merges the survivors' caches
   into the running cache (both sides left-padded with masked zeros to the longer length);
2. runs one decode step for every row (one forward pass), picks the next tokens;
3. drops the rows that finished (their callers get their replies) and the cache columns that
   only padding is left in.

Each row attends only to its own tokens, so its reply equals the one-row result up to
floating-point noise. A row whose sampling or bookkeeping raises fails alone; a failing prefill
fails only its job (a group's shared prefill: the group); a failing forward pass fails the rows
of that batch and leaves the engine empty and usable.
"""

from __future__ import annotations

import copy
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import torch

from adapters.hf.batcher import Job, Outcome, Progress
from adapters.hf.decode import DecodeRow, _forward, choose_tokens
from adapters.hf.kv import common_prefix_len, is_dynamic
from adapters.types import Generation, GenerationRequest

if TYPE_CHECKING:  # pragma: no cover
    from adapters.hf.model import HFModel

__all__ = ["HFEngine", "MIN_SHARED_PREFIX", "supports_continuous"]

MIN_SHARED_PREFIX = 16
"""Rows of different prompts admitted at one step prefill their common token prefix once when
it is at least this long and that computes fewer positions (otherwise each prompt is prefilled
on its own)."""

Finished = list[tuple[Future[Generation], Outcome[Generation]]]


def supports_continuous(cache: Any) -> bool:
    """Whether rows of ``cache`` can be merged and dropped: every layer a plain ``DynamicLayer``
    (sliding-window, static or quantised layers cannot be re-padded)."""
    return is_dynamic(cache)


class _Part:
    """Newly prefilled rows: their cache and futures, before joining the batch; ``mask`` marks
    the cache's real tokens (``None``: no padding, every column is real)."""

    def __init__(self, rows: list[DecodeRow], futures: list[Future[Generation]], cached: list[int],
                 cache: Any, logits: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        self.rows, self.futures, self.cached, self.cache, self.logits = rows, futures, cached, cache, logits
        self.mask = mask


class HFEngine:
    """The running batch of one :class:`HFModel` (driven by a
    :class:`~adapters.hf.batcher.ContinuousBatcher`; every call holds the model's lock)."""

    def __init__(self, model: HFModel) -> None:
        self._m = model
        self._reset()

    def _reset(self) -> None:
        self.rows: list[DecodeRow] = []
        self.futures: list[Future[Generation]] = []
        self.cached: list[int] = []
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # (rows, cache columns): 1 = a real token
        self.last: list[int] = []  # each row's next input token (its newest, not yet in the cache)

    @property
    def active(self) -> int:
        """Rows decoding now."""
        return len(self.rows)

    def abort(self) -> list[Future[Generation]]:
        """Forget every running row; returns their futures (the caller fails them)."""
        futures = self.futures
        self._reset()
        return futures

    def advance(self, jobs: list[Job[GenerationRequest, Generation]]) -> Progress[Generation]:
        """Prefill and merge ``jobs``, then run one decode step (see the module docstring)."""
        m = self._m
        done: Finished = []
        with m._lock, torch.inference_mode():
            parts = []
            for requests, futures, encoded in self._grouped(jobs, done):
                try:
                    parts += self._prefill(requests, futures, encoded)
                except Exception as exc:  # this job only: the running rows go on
                    done += [(f, exc) for f in futures]
            parts = [p for p in (self._first_tokens(p, done) for p in parts) if p is not None]
            if parts:
                self._merge(parts)
            if not self.rows:
                return Progress(done, False)
            try:
                self._step(done)
            except Exception as exc:  # the batch's cache is unusable: fail its rows, start empty
                done += [(f, exc) for f in self.abort()]
        return Progress(done, True)

    # -- admission -------------------------------------------------------------------------------
    def _grouped(self, jobs: list[Job[GenerationRequest, Generation]],
                 done: Finished) -> list[tuple[list[GenerationRequest], list[Future[Generation]], list[list[int]] | None]]:
        """The jobs to prefill: every ``n``-row job as it is (encoded by :meth:`_prefill`); the
        one-row jobs admitted at this step as one group, each encoded here (a row that fails to
        encode fails alone; a failing shared prefill fails the group)."""
        singles = [job for job in jobs if len(job[0]) == 1]
        out = [(rs, fs, None) for rs, fs in jobs if len(rs) != 1 or len(singles) < 2]
        if len(singles) < 2:
            return out
        requests, futures, encoded = [], [], []
        for (request,), (future,) in singles:
            try:
                encoded.append(self._m.encode(request))
            except Exception as exc:
                done.append((future, exc))
                continue
            requests.append(request)
            futures.append(future)
        return out + ([(requests, futures, encoded)] if requests else [])

    def _prefill(self, requests: list[GenerationRequest], futures: list[Future[Generation]],
                 encoded: list[list[int]] | None = None) -> list[_Part]:
        """Encode a job (unless ``encoded``); ``n`` rows of one prompt share one prefill (its
        cache repeated); different prompts with a long common prefix share its prefill."""
        m = self._m
        encoded = encoded if encoded is not None else [m.encode(r) for r in requests]
        ids = encoded[0]
        if len(requests) > 1 and all(e == ids for e in encoded):
            cache, cached, logits = self._encode(ids)
            if m.kv_reuse:  # a one-row copy for the next call (LECO's next cut)
                m._prefix.keep(ids, copy.deepcopy(cache))
            n = len(requests)
            cache.batch_repeat_interleave(n)
            rows = [m._row(r, ids) for r in requests]
            return [_Part(rows, futures, [cached] + [len(ids) - 1] * (n - 1), cache, logits.expand(n, -1))]
        group, shared = self._sharing(encoded)
        parts = [self._prefill_shared([requests[i] for i in group], [futures[i] for i in group],
                                      [encoded[i] for i in group], shared)] if group else []
        for i, (request, future, row_ids) in enumerate(zip(requests, futures, encoded)):
            if i not in group:
                cache, cached, logits = self._encode(row_ids)
                parts.append(_Part([m._row(request, row_ids)], [future], [cached], cache, logits))
        return parts

    def _sharing(self, encoded: list[list[int]]) -> tuple[list[int], int]:
        """The rows that prefill a common prefix together, and its length (``[]``: none). A row
        the prefix KV cache already covers beyond that prefix (a conversation's next turn)
        starts from its own cached sequence instead."""
        m = self._m
        shared = _common(encoded)
        if len(encoded) < 2 or shared < MIN_SHARED_PREFIX:
            return [], 0
        group = [i for i, e in enumerate(encoded) if not m.kv_reuse or m._prefix.match_len(e) <= shared]
        if len(group) < 2:
            return [], 0
        shared = _common([encoded[i] for i in group])
        if shared < MIN_SHARED_PREFIX or not _saves([encoded[i] for i in group], shared):
            return [], 0
        return group, shared

    def _prefill_shared(self, requests: list[GenerationRequest], futures: list[Future[Generation]],
                        encoded: list[list[int]], shared: int) -> _Part:
        """Rows of different prompts with a common prefix of ``shared`` tokens: the prefix is
        encoded once (from the kept prefix KV cache where it matches), its cache repeated per row,
        then every row's suffix in one forward pass, left-padded (the padding sits between the
        prefix and the suffix, masked; positions count real tokens only)."""
        m, dev, n = self._m, self._m.device, len(requests)
        head = encoded[0][:shared]
        cache, reused, rest, pos = m._cached_prompt(head)
        _forward(m.model, rest, None, pos, cache)
        if m.kv_reuse:  # a one-row copy for the next call
            m._prefix.keep(head, copy.deepcopy(cache))
        cache.batch_repeat_interleave(n)
        tails = [e[shared:] for e in encoded]
        width = max(len(t) for t in tails)
        ids = torch.full((n, width), m.pad_id, dtype=torch.long)
        mask = torch.zeros((n, shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        positions = torch.full((n, width), shared, dtype=torch.long)
        for i, tail in enumerate(tails):
            ids[i, width - len(tail):] = torch.tensor(tail)
            mask[i, shared + width - len(tail):] = 1
            positions[i, width - len(tail):] = torch.arange(shared, shared + len(tail))
        mask = mask.to(dev)
        logits = _forward(m.model, ids.to(dev), mask, positions.to(dev), cache)
        rows = [m._row(r, e) for r, e in zip(requests, encoded)]
        return _Part(rows, futures, [reused] + [shared] * (n - 1), cache, logits, mask)

    def _encode(self, ids: list[int]) -> tuple[Any, int, torch.Tensor]:
        """One prompt's cache (from the kept prefix where it matches), reused count, last logits."""
        cache, reused, rest, pos = self._m._cached_prompt(ids)
        return cache, reused, _forward(self._m.model, rest, None, pos, cache)

    def _first_tokens(self, part: _Part, done: Finished) -> _Part | None:
        """Pick the new rows' first tokens; the rows that finish already leave."""
        m = self._m
        failed: dict[int, Exception] = {}
        choose_tokens(part.logits, part.rows, m.eos_ids, m._texts, failed.__setitem__)
        keep = self._settle(part.rows, part.futures, part.cached, failed, done)
        if not keep:
            if len(part.rows) == 1 and not failed and m.kv_reuse:
                m._prefix.keep(part.rows[0].prompt_ids, part.cache)
            return None
        if len(keep) < len(part.rows):
            part.cache.batch_select_indices(torch.tensor(keep, device=m.device))
            part.mask = None if part.mask is None else part.mask[keep]
        part.rows = [part.rows[i] for i in keep]
        part.futures = [part.futures[i] for i in keep]
        part.cached = [part.cached[i] for i in keep]
        return part

    def _merge(self, parts: list[_Part]) -> None:
        """Join the new rows to the batch: every cache left-padded to the longest, then stacked."""
        dev = self._m.device
        caches = ([self.cache] if self.rows else []) + [p.cache for p in parts]
        masks = ([self.mask] if self.rows else []) + [
            torch.ones((len(p.rows), p.cache.get_seq_length()), dtype=torch.long, device=dev) if p.mask is None
            else p.mask for p in parts
        ]
        width = max(mask.shape[1] for mask in masks)
        self.mask = torch.cat([_left_pad(mask, width, 1) for mask in masks], dim=0)
        merged = caches[0]
        for li, layer in enumerate(merged.layers):
            others = [c.layers[li] for c in caches]
            layer.keys = torch.cat([_left_pad(o.keys, width, 2) for o in others], dim=0)
            layer.values = torch.cat([_left_pad(o.values, width, 2) for o in others], dim=0)
        self.cache = merged
        for p in parts:
            self.rows += p.rows
            self.futures += p.futures
            self.cached += p.cached
            self.last += [row.ids[-1] for row in p.rows]

    # -- decoding --------------------------------------------------------------------------------
    def _step(self, done: Finished) -> None:
        """One forward pass for every row; finished rows leave."""
        m, mask = self._m, self.mask
        assert mask is not None
        positions = mask.sum(dim=1, keepdim=True)  # each row's real tokens so far
        mask = torch.cat([mask, mask.new_ones((len(self.rows), 1))], dim=1)
        inputs = torch.tensor(self.last, device=m.device)[:, None]
        logits = _forward(m.model, inputs, mask, positions, self.cache)
        self.mask = mask
        failed: dict[int, Exception] = {}
        choose_tokens(logits, self.rows, m.eos_ids, m._texts, failed.__setitem__)
        self.last = [row.ids[-1] if row.ids else 0 for row in self.rows]
        keep = self._settle(self.rows, self.futures, self.cached, failed, done)
        if len(keep) < len(self.rows):
            self._drop(keep, failed)

    def _settle(self, rows: list[DecodeRow], futures: list[Future[Generation]], cached: list[int],
                failed: dict[int, Exception], done: Finished) -> list[int]:
        """Hand out the finished and failed rows; the indices of the rows still running."""
        keep = []
        for i, row in enumerate(rows):
            if i in failed:
                done.append((futures[i], failed[i]))
            elif row.finish is not None:
                done.append((futures[i], row.result(self._m.name, cached[i])))
            else:
                keep.append(i)
        return keep

    def _keep_finished(self, keep: list[int], failed: dict[int, Exception]) -> None:
        """Every finished row's cache (a copy of its real tokens) goes to the model's prefix
        cache, so the conversation's next turn (a revision, a rethink) starts from it."""
        m, mask = self._m, self.mask
        assert mask is not None
        for i, row in enumerate(self.rows):
            if i not in keep and i not in failed:
                cache = _row_cache(self.cache, i, mask[i], m._new_cache())
                m._prefix.keep(row.prompt_ids + row.ids[:-1], cache)

    def _drop(self, keep: list[int], failed: dict[int, Exception]) -> None:
        """Remove the rows not in ``keep`` and the columns left holding only padding."""
        m, mask = self._m, self.mask
        assert mask is not None
        if m.kv_reuse:
            self._keep_finished(keep, failed)
        if not keep:
            self._reset()
            return
        index = torch.tensor(keep, device=m.device)
        mask = mask.index_select(0, index)
        start = int(mask.any(dim=0).long().argmax())  # the first column a row still uses
        self.mask = mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]
        self.rows = [self.rows[i] for i in keep]
        self.futures = [self.futures[i] for i in keep]
        self.cached = [self.cached[i] for i in keep]
        self.last = [self.last[i] for i in keep]


def _common(encoded: list[list[int]]) -> int:
    """The common token prefix of ``encoded``, leaving each at least one token to encode."""
    ids = encoded[0]
    return min([common_prefix_len(ids, e) for e in encoded[1:]] + [min(len(e) for e in encoded) - 1])


def _saves(encoded: list[list[int]], shared: int) -> bool:
    """Whether the shared prefill computes fewer token positions than one prefill per prompt
    (the prefix once plus every suffix padded to the longest, against every prompt in full)."""
    width = max(len(e) for e in encoded) - shared
    return shared + len(encoded) * width < sum(len(e) for e in encoded)


def _row_cache(cache: Any, row: int, real: torch.Tensor, into: Any) -> Any:
    """``into`` (an empty cache) holding a copy of ``row``'s real columns (``real``: its mask
    row; a shared-prefix row has padding between its prefix and its suffix)."""
    cols = real.nonzero().flatten()
    for li, layer in enumerate(cache.layers):
        into.update(layer.keys[row : row + 1].index_select(2, cols), layer.values[row : row + 1].index_select(2, cols), li)
    return into


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """``t`` with zeros prepended along ``dim`` up to ``width``."""
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)
