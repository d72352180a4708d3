"""The decoding loop: one forward pass per step for a batch of rows, logprobs from raw logits.

Every step computes ``log_softmax`` of the model's raw logits once for the whole batch; the
chosen token's logprob, the entropy of the full distribution and (only when asked) the top-k
alternatives come from it, whatever the sampling temperature or ``top_p``. Only one
device-to-host copy happens per step (two with ``top_logprobs``), so the per-token overhead is
a few vectorised ops over the vocabulary plus an incremental detokenisation.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from adapters.types import (
    Generation,
    GenerationRequest,
    TokenLogprob,
    TopLogprob,
    Usage,
)

__all__ = [
    "DecodeRow", "DeltaCursor", "IncrementalDetokenizer", "TokenTexts", "choose_tokens", "decode_rows", "decode_steps",
]

_CONTEXT_TOKENS = 6
"""Prompt tokens decoded with the reply so leading spaces/merges come out as in the full text."""


class TokenTexts:
    """Texts of single token ids (for ``top_logprobs`` alternatives), memoised."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._memo: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        text = self._memo.get(token_id)
        if text is None:
            text = _decode(self._tokenizer, [token_id])
            self._memo[token_id] = text
        return text


def _decode(tokenizer: Any, ids: list[int], skip_special: bool = False) -> str:
    return tokenizer.decode(ids, skip_special_tokens=skip_special, clean_up_tokenization_spaces=False)


class IncrementalDetokenizer:
    """Turns token ids into text pieces that concatenate exactly to the decoded reply.

    Decodes a short window (a few context tokens from the prompt, then the new ones) and emits
    the difference; a piece that ends in an incomplete UTF-8 character (``"\\ufffd"``) is held
    back (that token's text is ``""``) until a later token completes it. Special tokens
    (``<pad>``, ``<unk>``, ``<|im_start|>`` ...) decode as ``""``: they never reach the text.
    """

    def __init__(self, tokenizer: Any, context: list[int]) -> None:
        self._tokenizer = tokenizer
        self._ids = list(context[-_CONTEXT_TOKENS:])
        self._prefix = 0
        self._read = len(self._ids)

    def step(self, token_id: int) -> str:
        """Add one token; return the new text it completes (possibly ``""``)."""
        self._ids.append(token_id)
        before = _decode(self._tokenizer, self._ids[self._prefix : self._read], True)
        after = _decode(self._tokenizer, self._ids[self._prefix :], True)
        if len(after) > len(before) and not after.endswith("\ufffd") and after.startswith(before):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Text still held back at the end (an incomplete character decodes as ``"\\ufffd"``)."""
        if self._read == len(self._ids):
            return ""
        before = _decode(self._tokenizer, self._ids[self._prefix : self._read], True)
        after = _decode(self._tokenizer, self._ids[self._prefix :], True)
        self._prefix = self._read = len(self._ids)
        return after[len(before) :] if after.startswith(before) else ""


@dataclass
class DecodeRow:
    """One sequence being generated: its request, prompt, and everything produced so far."""

    request: GenerationRequest
    """The validated request."""
    prompt_ids: list[int]
    """Chat-template + prefill token ids."""
    detok: IncrementalDetokenizer
    """Turns this row's token ids into text pieces."""
    generator: torch.Generator | None = None
    """Sampling generator (seeded); ``None`` for greedy rows."""
    ids: list[int] = field(default_factory=list)
    """Sampled token ids, EOS included when it was sampled."""
    tokens: list[TokenLogprob] = field(default_factory=list)
    """Tokens of the reply so far."""
    text: str = ""
    """Reply text so far (the concatenation of the token texts)."""
    finish: str | None = None
    """``"stop"`` or ``"length"`` once finished."""

    def accept(
        self,
        token_id: int,
        logprob: float,
        entropy: float,
        tops: tuple[TopLogprob, ...],
        eos_ids: frozenset[int],
    ) -> None:
        """Record one sampled token and decide whether the row is finished."""
        self.ids.append(token_id)
        if token_id in eos_ids:
            self._flush()
            self.finish = "stop"
            return
        piece = self.detok.step(token_id)
        start = len(self.text)
        self.tokens.append(TokenLogprob(piece, logprob, start, tops, entropy, token_id))
        self.text += piece
        if piece and self.request.stop and self._cut_at_stop(start):
            self.finish = "stop"
        elif len(self.ids) >= self.request.max_tokens:
            self._flush()
            self.finish = "length"

    def _flush(self) -> None:
        rest = self.detok.flush()
        if rest and self.tokens:
            last = self.tokens[-1]
            self.tokens[-1] = replace(last, token=last.token + rest)
            self.text += rest

    def _cut_at_stop(self, start: int) -> bool:
        """Cut text and tokens before the first stop sequence that the last piece completed."""
        longest = max(len(s) for s in self.request.stop)
        scan = max(0, start - longest + 1)
        hits = [i for i in (self.text.find(s, scan) for s in self.request.stop) if i >= 0]
        if not hits:
            return False
        cut = min(hits)
        self.text = self.text[:cut]
        # keep the tokens that start before the cut (the one holding it loses its tail)
        self.tokens = [
            replace(t, token=t.token[: cut - t.offset]) if t.offset + len(t.token) > cut else t
            for t in self.tokens
            if t.offset < cut
        ]
        return True

    def result(self, model: str, cached_tokens: int) -> Generation:
        """The finished :class:`Generation`."""
        return Generation(
            text=self.text,
            tokens=tuple(self.tokens),
            finish_reason=self.finish or "length",
            usage=Usage(len(self.prompt_ids), len(self.ids), cached_tokens),
            model=model,
            prefill=self.request.prefill or "",
        )


@functools.lru_cache(maxsize=32)
def cache_kwarg(forward_type: type) -> str:
    """The keyword a model's ``forward`` takes its KV cache by.

    transformers 5.24 renamed ``past_key_values`` to ``cache`` (the old name warns with a
    FutureWarning and goes in 5.40); models whose ``forward`` has no ``cache`` parameter (older
    releases, custom code) still take ``past_key_values``.
    """
    try:
        params = inspect.signature(forward_type.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - a forward without a signature
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _forward(model: Any, ids: torch.Tensor, mask: torch.Tensor | None, pos: torch.Tensor, cache: Any) -> torch.Tensor:
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        use_cache=True,
        logits_to_keep=1,
        **{cache_kwarg(type(model)): cache},
    )
    return out.logits[:, -1, :].float()


def _sample(logits: torch.Tensor, request: GenerationRequest, generator: torch.Generator) -> torch.Tensor:
    """Sample one id from ``softmax(logits / temperature)`` restricted to the ``top_p`` nucleus."""
    probs = torch.softmax(logits / request.temperature, dim=-1)
    if request.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        outside = (torch.cumsum(sorted_p, dim=-1) - sorted_p) >= request.top_p
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        return order[torch.multinomial(sorted_p, 1, generator=generator)[0]]
    return torch.multinomial(probs, 1, generator=generator)[0]


def decode_rows(
    model: Any,
    rows: list[DecodeRow],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor,
    cache: Any,
    eos_ids: frozenset[int],
    token_texts: TokenTexts,
) -> None:
    """Run the rows to completion; ``input_ids`` is what the cache has not seen yet.

    Rows are independent (each attends only to its own, unpadded tokens). Every sampled token is
    fed back except each row's last one, so with one row the cache ends up holding
    ``prompt_ids + ids[:-1]``.
    """
    for _ in decode_steps(model, rows, input_ids, attention_mask, position_ids, cache, eos_ids, token_texts):
        pass


def decode_steps(
    model: Any,
    rows: list[DecodeRow],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor,
    cache: Any,
    eos_ids: frozenset[int],
    token_texts: TokenTexts,
) -> Iterator[None]:
    """:func:`decode_rows` as a generator that pauses after every step (each row got a token).

    Streaming reads the rows between steps; the last step leaves every row finished.
    """
    with torch.inference_mode():
        logits = _forward(model, input_ids, attention_mask, position_ids, cache)
        while True:
            chosen = choose_tokens(logits, rows, eos_ids, token_texts)
            yield
            if all(r.finish is not None for r in rows):
                return
            position_ids = position_ids[:, -1:] + 1
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(rows), 1))], dim=1)
            logits = _forward(model, chosen[:, None], attention_mask, position_ids, cache)


def choose_tokens(
    logits: torch.Tensor,
    rows: list[DecodeRow],
    eos_ids: frozenset[int],
    token_texts: TokenTexts,
    on_error: Callable[[int, Exception], None] | None = None,
) -> torch.Tensor:
    """One decoding step's choice for every unfinished row (row ``i`` has ``logits[i]``).

    Greedy rows take the argmax, sampling rows draw with their own generator; each unfinished
    row records its token (:meth:`DecodeRow.accept`). Returns the chosen ids, shape ``(rows,)``
    (finished rows get a placeholder). ``on_error(i, exc)``: a row whose sampling or
    bookkeeping raised is handed over (and skipped) instead of failing the whole step.
    """
    logprobs = torch.log_softmax(logits, dim=-1)
    entropy = -(logprobs.exp() * logprobs).nan_to_num(0.0).sum(dim=-1)
    chosen = logits.argmax(dim=-1)
    live = [i for i, row in enumerate(rows) if row.finish is None]
    failed: set[int] = set()
    for i in live:
        if rows[i].request.temperature > 0:
            try:
                chosen[i] = _sample(logits[i], rows[i].request, rows[i].generator)
            except Exception as exc:
                if on_error is None:
                    raise
                failed.add(i)
                on_error(i, exc)
    chosen_lp = logprobs.gather(1, chosen[:, None])[:, 0]
    ids_l, lp_l, ent_l = torch.stack([chosen.to(torch.float64), chosen_lp.double(), entropy.double()]).cpu().tolist()
    top_k = max((rows[i].request.top_logprobs for i in live), default=0)
    if top_k:
        top_v, top_i = logprobs.topk(top_k, dim=-1)
        top_v, top_i = top_v.cpu().tolist(), top_i.cpu().tolist()
    for i in live:
        if i in failed:
            continue
        k = rows[i].request.top_logprobs
        tops = tuple(TopLogprob(token_texts(t), v) for t, v in zip(top_i[i][:k], top_v[i][:k])) if k else ()
        try:
            rows[i].accept(int(ids_l[i]), lp_l[i], ent_l[i], tops, eos_ids)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(i, exc)
    return chosen


class DeltaCursor:
    """Cuts a :class:`DecodeRow` being decoded into stream deltas.

    A token is handed out once no later event can change it: with stop sequences the last
    ``len(longest stop) - 1`` characters are held back (a stop completed by a later token cuts
    them); everything left goes out when the row finishes, the last delta with the finish
    reason and usage.
    """

    def __init__(self, row: DecodeRow, model: str) -> None:
        self._row = row
        self._model = model
        self._hold = max((len(s) for s in row.request.stop), default=1) - 1
        self._tokens = 0
        self._chars = 0

    def take(self, cached_tokens: int = 0) -> Generation | None:
        """The next delta, or ``None`` when nothing new is safe to hand out yet."""
        row = self._row
        if row.finish is not None:
            tokens = row.tokens[self._tokens :]
            end = len(row.text)
        else:
            safe = len(row.text) - self._hold
            n = self._tokens
            while n < len(row.tokens) and row.tokens[n].offset + len(row.tokens[n].token) <= safe:
                n += 1
            tokens = row.tokens[self._tokens : n]
            if not tokens:
                return None
            end = tokens[-1].offset + len(tokens[-1].token)
        text = row.text[self._chars : end]
        self._tokens += len(tokens)
        self._chars = max(self._chars, end)
        if row.finish is None:
            return Generation(text, tuple(tokens), None, Usage(), self._model, row.request.prefill or "")
        final = row.result(self._model, cached_tokens)
        return replace(final, text=text, tokens=tuple(tokens))
