"""Score given text with a local model: one forward pass per ``(prefix, continuation)`` pair.

:meth:`adapters.base.LogprobModel.score_texts` for :class:`adapters.hf.HFModel`: the prefix and
the continuation are tokenized apart (raw text, no chat template; an empty prefix starts from
the model's BOS token, else its smallest EOS id), read in one forward pass, and each continuation
token gets its logprob under the full distribution (with its entropy). No KV cache is read or
kept: scoring never changes what a later generation reuses.
"""

from __future__ import annotations

from typing import Any

import torch

from adapters.errors import ContextWindowExceededError
from adapters.types import Generation, TokenLogprob, Usage

__all__ = ["score_pair", "score_pairs"]


def score_pair(model: Any, tokenizer: Any, prefix: str, continuation: str, *, start_id: int,
               device: torch.device, name: str, window: int | None = None) -> Generation:
    """One pair's :class:`Generation` (``text`` the continuation, ``tokens`` its logprobs).
    Raises :class:`~adapters.errors.ContextWindowExceededError` when the pair's tokens exceed
    ``window`` (the model's context; ``None``: unknown), before the forward pass."""
    head = list(tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else [start_id]
    tail = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if window is not None and len(head) + len(tail) > window:
        raise ContextWindowExceededError(name, len(head) + len(tail), 0, window)
    ids = torch.tensor([head + tail], device=device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(head) - 1 : -1].float()
    logp = torch.log_softmax(logits, dim=-1)
    chosen = logp.gather(1, torch.tensor(tail, device=device)[:, None]).squeeze(1).tolist()
    entropy = (-(logp.exp() * logp).sum(-1)).tolist()
    tokens, offset = [], 0
    for i, (tid, lp, ent) in enumerate(zip(tail, chosen, entropy)):
        piece = tokenizer.decode(tail[: i + 1])[offset:] if i + 1 < len(tail) else continuation[offset:]
        tokens.append(TokenLogprob(piece, lp, offset, (), ent, tid))
        offset += len(piece)
    return Generation(continuation, tuple(tokens), "stop", Usage(prompt_tokens=len(head) + len(tail)), name)


def score_pairs(hf: Any, pairs: list[tuple[str, str]]) -> list[Generation]:
    """Every pair on an :class:`adapters.hf.HFModel` (the caller holds its lock)."""
    bos = hf.tokenizer.bos_token_id
    start = bos if bos is not None else min(hf.eos_ids, default=hf.pad_id)
    return [score_pair(hf.model, hf.tokenizer, prefix, cont, start_id=start, device=hf.device, name=hf.name,
                       window=hf.context_window) for prefix, cont in pairs]
