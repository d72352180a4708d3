"""HFModel: any local Hugging Face causal LM as a :class:`~adapters.base.LogprobModel`.

Chat template, greedy and seeded sampling, stop sequences, exact ``prefill`` continuation,
raw-logit logprobs with entropy and top-k alternatives, prefix KV-cache reuse between calls,
continuous batching of concurrent calls (:mod:`adapters.hf.continuous`: rows join and leave
the running batch between decoding steps), or static left-padded batches
(:mod:`adapters.hf.batcher`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import torch

from adapters.base import LogprobModel, check_concurrency
from adapters.errors import ContextWindowExceededError, InvalidRequestError
from adapters.hf.decode import (
    DecodeRow,
    DeltaCursor,
    IncrementalDetokenizer,
    TokenTexts,
    _forward,
    decode_rows,
    decode_steps,
)
from adapters.hf.batcher import BatcherStats, ContinuousBatcher, RequestBatcher
from adapters.hf.continuous import HFEngine, supports_continuous
from adapters.hf.kv import DEFAULT_PREFIX_CACHE_MB, PrefixKVCache
from adapters.streaming import aiterate_in_thread, iterate_in_thread
from adapters.tools import template_renders_tools
from adapters.types import Capabilities, Generation, GenerationRequest

__all__ = ["BATCHING_MODES", "HFModel"]

BATCHING_MODES = ("auto", "continuous", "static")
"""Values of ``HFModel(batching=...)``."""

class HFModel(LogprobModel):
    """A transformers causal LM with its tokenizer, generating with token logprobs.

    ``model``/``tokenizer`` are already-loaded objects (see :func:`~adapters.hf.load.load_pretrained` or
    ``adapters.hf.load_hf_model`` for paths and specs). ``kv_reuse=False`` re-encodes every
    prompt (the benchmark baseline); ``max_batch_size`` bounds one forward batch.

    ``coalesce=True`` (the default): concurrent :meth:`generate`/:meth:`agenerate` calls (from
    threads or asyncio tasks, e.g. ``sc-chains eval --concurrency 16``) are queued to one worker
    thread that batches them; ``coalesce=False`` runs each call directly. ``batching`` says how
    (validated, one of :data:`BATCHING_MODES`):

    - ``"continuous"``: iteration-level batching (:class:`~adapters.hf.continuous.HFEngine`):
      the worker decodes up to ``max_batch_size`` rows one token per step; a row that finishes
      leaves at once and a request that arrived meanwhile joins at the next step (prefilled on
      its own, its KV cache merged into the batch). :meth:`batch` runs through it too (``n``
      rows of one prompt share one prefill), even with ``coalesce=False``.
    - ``"static"``: the requests that arrive within ``coalesce_wait_s`` of each other run as
      one left-padded batch, to the end of its longest row (the benchmark's baseline);
      :meth:`batch` runs such batches directly.
    - ``"auto"`` (the default): continuous when the model's KV cache allows it (plain dynamic
      layers, as Llama, SmolLM2 and Qwen2 use), static otherwise (sliding-window layers).

    Either way a request starts from the prefix KV cache (``kv_reuse=True``): the caches of
    recently decoded sequences (:class:`~adapters.hf.kv.PrefixKVCache`, within
    ``prefix_cache_mb`` megabytes; every finished row of a continuous batch is kept), so a
    conversation's next turn (a revision, a rethink) encodes only its new tokens, and greedy
    results equal the one-by-one results up to floating-point noise. All generation runs
    under one lock, so an instance is safe to share between threads (streams take the lock
    for their whole reply, outside the batch).
    """

    logprobs_hint = "HFModel always returns logprobs."

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        kv_reuse: bool = True,
        max_batch_size: int = 8,
        max_top_logprobs: int = 100,
        coalesce: bool = True,
        coalesce_wait_s: float = 0.002,
        batching: str = "auto",
        prefix_cache_mb: int = DEFAULT_PREFIX_CACHE_MB,
    ) -> None:
        for flag, value in (("coalesce", coalesce), ("kv_reuse", kv_reuse)):
            if not isinstance(value, bool):  # "maybe", "false", 1: never truthy by accident
                raise InvalidRequestError(flag, value, "pass True or False (CLI: --model-option NAME=true|false)")
        if not isinstance(max_top_logprobs, int) or isinstance(max_top_logprobs, bool) or max_top_logprobs < 0:
            raise InvalidRequestError("max_top_logprobs", max_top_logprobs, "pass an integer >= 0")
        if (not isinstance(coalesce_wait_s, (int, float)) or isinstance(coalesce_wait_s, bool)
                or not 0 <= coalesce_wait_s <= 1):
            raise InvalidRequestError("coalesce_wait_s", coalesce_wait_s, "pass seconds between 0 and 1, e.g. 0.002")
        if not isinstance(prefix_cache_mb, int) or isinstance(prefix_cache_mb, bool) or prefix_cache_mb < 0:
            raise InvalidRequestError("prefix_cache_mb", prefix_cache_mb, f"pass megabytes >= 0, e.g. {DEFAULT_PREFIX_CACHE_MB}")
        if batching not in BATCHING_MODES:
            raise InvalidRequestError("batching", batching, f"pass one of {', '.join(BATCHING_MODES)}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name or str(getattr(model.config, "_name_or_path", "") or type(model).__name__)
        self.capabilities = Capabilities(
            logprobs=True, full_distribution=True, prefill=True, max_top_logprobs=max_top_logprobs,
            tool_template=template_renders_tools(tokenizer), text_scores=True,
        )
        self.kv_reuse = kv_reuse
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids, default=0)
        self._prefix = PrefixKVCache(max_bytes=prefix_cache_mb << 20)
        self._texts = TokenTexts(tokenizer)
        self._lock = threading.RLock()
        self.coalesce = coalesce
        can = supports_continuous(self._new_cache())
        if batching == "continuous" and not can:
            raise InvalidRequestError("batching", batching, f"{self.name}'s KV cache has layers that cannot be "
                                      "re-padded (sliding window?); pass batching='static' or 'auto'")
        self.batching = "continuous" if batching != "static" and can else "static"
        """The batching in use: ``"continuous"`` or ``"static"`` (``"auto"`` resolved)."""
        common = {"max_batch": 1, "wait_s": float(coalesce_wait_s), "name": f"sc-chains-batcher[{self.name}]"}
        self._batcher: RequestBatcher[GenerationRequest, Generation] | ContinuousBatcher[GenerationRequest, Generation]
        if self.batching == "continuous":
            self._batcher = ContinuousBatcher(HFEngine(self), **common)
        else:
            self._batcher = RequestBatcher(self._generate_static, **common)
        self.max_batch_size = max_batch_size  # validated by the setter

    @property
    def max_batch_size(self) -> int:
        """Most rows in one forward batch (:meth:`batch` and coalesced calls)."""
        return self._batcher.max_batch

    @max_batch_size.setter
    def max_batch_size(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequestError("max_batch_size", value, "pass an integer >= 1")
        self._batcher.max_batch = value

    @property
    def coalesce_stats(self) -> BatcherStats:
        """How many coalesced calls ran, in how many batches, steps (see :class:`BatcherStats`)."""
        return self._batcher.stats

    # -- prompts -----------------------------------------------------------------------------
    def prompt_text(self, request: GenerationRequest) -> str:
        """The text the model continues: chat template with generation prompt, plus prefill."""
        messages = list(request.messages)
        if getattr(self.tokenizer, "chat_template", None):
            tools = list(request.tools) or None  # only templates that render tools get them
            text = self.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
        else:  # a base model without a template: a plain transcript
            text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant: "
        return text + (request.prefill or "")

    @property
    def context_window(self) -> int | None:
        """Most positions (prompt + generated tokens) the model takes, from its config; ``None`` if unknown."""
        config = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def request(self, messages: Any, **kwargs: Any) -> GenerationRequest:
        """Validate like every adapter, then check prompt + ``max_tokens`` against :attr:`context_window`.

        Raises :class:`~adapters.errors.ContextWindowExceededError` before anything is queued or
        generated (so one over-long request never fails a coalesced batch).
        """
        req = super().request(messages, **kwargs)
        window = self.context_window
        if window is None:
            return req
        text = self.prompt_text(req)
        # A token is at least one UTF-8 byte, so a short prompt fits without being encoded here
        # (the margin covers a tokenizer's added prefix tokens); only a long one is counted exactly.
        if len(text.encode("utf-8")) + req.max_tokens + 16 <= window:
            return req
        with self._lock:  # the tokenizer is shared with the generating thread
            prompt_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if prompt_tokens + req.max_tokens > window:
            raise ContextWindowExceededError(self.name, prompt_tokens, req.max_tokens, window)
        return req

    def encode(self, request: GenerationRequest) -> list[int]:
        """Token ids of :meth:`prompt_text` (the template carries its own special tokens)."""
        return list(self.tokenizer(self.prompt_text(request), add_special_tokens=False)["input_ids"])

    def _row(self, request: GenerationRequest, ids: list[int]) -> DecodeRow:
        gen = None
        if request.temperature > 0:
            gen = torch.Generator(device=self.device)
            if request.seed is None:
                gen.seed()
            else:
                gen.manual_seed(request.seed)
        return DecodeRow(request, ids, IncrementalDetokenizer(self.tokenizer, ids), gen)

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    # -- one request ---------------------------------------------------------------------------
    def _generate(self, request: GenerationRequest) -> Generation:
        if self.coalesce:
            return self._batcher.submit(request).result()
        return self._generate_one(request)

    async def _agenerate(self, request: GenerationRequest) -> Generation:
        if self.coalesce:
            return await asyncio.wrap_future(self._batcher.submit(request))
        return await asyncio.to_thread(self._generate_one, request)

    def _generate_one(self, request: GenerationRequest) -> Generation:
        steps = self._decode_one(request)
        for row, reused in steps:
            if row.finish is not None:
                steps.close()
                return row.result(self.name, reused)
        raise AssertionError("the decode loop ended with an unfinished row")  # pragma: no cover

    def _cached_prompt(self, ids: list[int]) -> tuple[Any, int, torch.Tensor, torch.Tensor]:
        """A cache for prompt ``ids`` (from the kept prefix where it matches, with ``kv_reuse``),
        how many tokens it already holds, and the rest of the prompt with its positions."""
        if self.kv_reuse:
            cache, reused = self._prefix.take(ids, self._new_cache)
        else:
            cache, reused = self._new_cache(), 0
        rest = torch.tensor([ids[reused:]], device=self.device)
        return cache, reused, rest, torch.arange(reused, len(ids), device=self.device)[None]

    def _decode_one(self, request: GenerationRequest) -> Iterator[tuple[DecodeRow, int]]:
        """Decode one request under the lock, pausing after every token: ``(row, reused)``.

        The prefix KV cache is kept only when the row finished (a stream closed early drops it).
        """
        with self._lock:  # the Rust tokenizer is not safe to share between threads either
            ids = self.encode(request)
            row = self._row(request, ids)
            cache, reused, rest, pos = self._cached_prompt(ids)
            for _ in decode_steps(self.model, [row], rest, None, pos, cache, self.eos_ids, self._texts):
                if row.finish is not None and self.kv_reuse:
                    self._prefix.keep(ids + row.ids[:-1], cache)
                yield row, reused

    # -- streaming: the decode loop runs in a thread of its own (it holds the lock) ------------
    def _stream_deltas(self, request: GenerationRequest) -> Iterator[Generation]:
        cursor: DeltaCursor | None = None
        for row, reused in self._decode_one(request):
            cursor = cursor or DeltaCursor(row, self.name)
            delta = cursor.take(reused)
            if delta is not None:
                yield delta

    def _stream(self, request: GenerationRequest) -> Iterator[Generation]:
        """One delta per decoded token (the coalescing batcher is bypassed)."""
        return iterate_in_thread(lambda: self._stream_deltas(request), name=f"sc-chains-stream[{self.name}]")

    def _astream(self, request: GenerationRequest) -> AsyncIterator[Generation]:
        return aiterate_in_thread(lambda: self._stream_deltas(request), name=f"sc-chains-stream[{self.name}]")

    # -- batches -------------------------------------------------------------------------------
    def batch(self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any) -> list[Generation]:
        """Generate for many inputs in real batches of at most ``max_batch_size`` rows.

        Each reply equals what :meth:`generate` returns for that input alone (greedy decoding;
        logprobs agree up to floating-point noise). ``max_concurrency`` is accepted for
        interface compatibility; the batch size is ``max_batch_size``.
        """
        check_concurrency(max_concurrency)
        return self.generate_batch([self.request(m, **kwargs) for m in inputs])

    async def abatch(self, inputs: Sequence[Any], *, max_concurrency: int = 4, **kwargs: Any) -> list[Generation]:
        """Async :meth:`batch` (the batch runs in a worker thread)."""
        check_concurrency(max_concurrency)
        requests = [self.request(m, **kwargs) for m in inputs]
        if self.batching == "continuous":
            return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in self._submit_batch(requests))))
        return await asyncio.to_thread(self.generate_batch, requests)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Run validated requests in batches; results in input order.

        Continuous batching: they join the running batch (rows of one prompt as one job that
        shares its prefill); static: left-padded batches of similar lengths."""
        if self.batching == "continuous":
            return [f.result() for f in self._submit_batch(requests)]
        return self._generate_static(requests)

    def _submit_batch(self, requests: Sequence[GenerationRequest]) -> list[Future[Generation]]:
        """Queue ``requests`` as one entry: each prompt's rows one job (at most ``max_batch_size``)."""
        by_prompt: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_prompt.setdefault(self.prompt_text(r), []).append(i)
        size = self.max_batch_size
        jobs = [idx[k : k + size] for idx in by_prompt.values() for k in range(0, len(idx), size)]
        futures = self._batcher.submit_jobs([[requests[i] for i in job] for job in jobs])
        out: list[Future[Generation] | None] = [None] * len(requests)
        for job, futs in zip(jobs, futures):
            for i, f in zip(job, futs):
                out[i] = f
        return [f for f in out if f is not None]

    def _generate_static(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Static batches: similar prompt lengths together, each chunk to the end of its longest row."""
        if len(requests) == 1:
            return [self._generate_one(requests[0])]
        with self._lock:
            encoded = [self.encode(r) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: len(encoded[i]))
        results: list[Generation | None] = [None] * len(requests)
        for start in range(0, len(order), self.max_batch_size):
            chunk = order[start : start + self.max_batch_size]
            same = len(chunk) > 1 and len(encoded[chunk[0]]) > 1 and all(encoded[i] == encoded[chunk[0]] for i in chunk)
            run = self._generate_shared if same else self._generate_padded
            gens = run([requests[i] for i in chunk], [encoded[i] for i in chunk])
            for i, g in zip(chunk, gens):
                results[i] = g
        return [g for g in results if g is not None]

    def _generate_shared(self, requests: list[GenerationRequest], encoded: list[list[int]]) -> list[Generation]:
        """Rows of one prompt (``n`` samples of a request; LECO-vote's rethinks): the prompt but
        its last token is encoded once, from the prefix KV cache of the previous call, then the
        cache is repeated per row and every row decodes on with its own sampler. Each reply
        equals what :meth:`generate` gives alone (up to floating-point noise)."""
        ids, n, dev = encoded[0], len(requests), self.device
        head = ids[:-1]
        with self._lock:
            cache, reused = self._prefix.take(head + [ids[-1]], self._new_cache) if self.kv_reuse else (self._new_cache(), 0)
            reused = min(reused, len(head))
            with torch.inference_mode():
                if len(head) > reused:
                    _forward(self.model, torch.tensor([head[reused:]], device=dev), None,
                             torch.arange(reused, len(head), device=dev)[None], cache)
            if self.kv_reuse:  # keep a one-row copy for the next call (e.g. the next cut)
                import copy

                self._prefix.keep(head, copy.deepcopy(cache))
            cache.batch_repeat_interleave(n)
            rows = [self._row(r, ids) for r in requests]
            decode_rows(
                self.model, rows, torch.tensor([[ids[-1]]] * n, device=dev), None,
                torch.full((n, 1), len(head), device=dev), cache, self.eos_ids, self._texts,
            )  # fmt: skip
        return [row.result(self.name, reused if i == 0 else len(head)) for i, row in enumerate(rows)]

    def _generate_padded(self, requests: list[GenerationRequest], encoded: list[list[int]]) -> list[Generation]:
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, ids in enumerate(encoded):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            mask[i, width - len(ids) :] = 1
        pos = (mask.cumsum(dim=1) - 1).clamp(min=0)
        rows = [self._row(r, ids) for r, ids in zip(requests, encoded)]
        dev = self.device
        with self._lock:
            decode_rows(
                self.model, rows, input_ids.to(dev), mask.to(dev), pos.to(dev),
                self._new_cache(), self.eos_ids, self._texts,
            )  # fmt: skip
        return [row.result(self.name, 0) for row in rows]

    def _score_texts(self, pairs: list[tuple[str, str]]) -> list[Generation]:
        """One forward pass per pair under the model lock (:func:`adapters.hf.score.score_pairs`)."""
        from adapters.hf.score import score_pairs

        with self._lock:
            return score_pairs(self, pairs)

    def clear_cache(self) -> None:
        """Forget the kept prefix KV cache."""
        with self._lock:
            self._prefix.clear()


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, getattr(model.config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    return frozenset(ids)
