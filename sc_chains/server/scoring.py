"""``POST /v1/completions`` on ``sc-chains serve``: score a text, OpenAI's echo form.

The server does not generate here. It answers the request OpenAI's legacy API (and vLLM) use to
read a text's token logprobs: ``echo=true, max_tokens=0, logprobs=0|1``, the prompt one string.
The upstream model scores the prompt as raw text (no chat template) with one forward pass
(:meth:`~adapters.base.LogprobModel.score_texts`; a local model), and the reply carries each
prompt token, its character offset and its logprob (``null`` for the first token, as OpenAI's).
This is what :class:`adapters.openai_compat.OpenAIModel` with ``text_scores=True`` sends, so a
client of this server can run the chains that score text (``s2a-filter-question``).
Pure helpers, tested on literals; the route lives in :mod:`sc_chains.server.app`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.types import Generation
from sc_chains.server.schemas import _bool, _int, bad

__all__ = ["ScoreRequest", "echo_completion", "parse_score_request"]

SCORE_FORM = "this endpoint only scores text: send echo=true and max_tokens=0 (generate with /v1/chat/completions)"


@dataclass(frozen=True)
class ScoreRequest:
    """One validated ``POST /v1/completions`` body."""

    model: str
    """A served model id (any chain: the upstream model scores)."""
    prompt: str
    """The text to score (non-empty)."""
    top: int
    """``logprobs``: 0 (no ``top_logprobs``) or 1 (each token's own logprob in ``top_logprobs``)."""


def parse_score_request(body: Any, *, max_prompt_chars: int) -> ScoreRequest:
    """The request, or an :class:`~sc_chains.server.schemas.APIError` (400) naming the bad field."""
    if not isinstance(body, Mapping):
        raise bad("body", type(body).__name__, "send a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", model, "pass a model id from GET /v1/models")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise bad("prompt", prompt, "pass one non-empty string")
    if len(prompt) > max_prompt_chars:
        raise bad("prompt", f"<{len(prompt)} characters>", f"the prompt may have at most {max_prompt_chars} characters")
    if not _bool(body, "echo"):
        raise bad("echo", body.get("echo"), SCORE_FORM)
    if _int(body, "max_tokens") != 0:
        raise bad("max_tokens", body.get("max_tokens"), SCORE_FORM)
    top = _int(body, "logprobs") or 0
    if top not in (0, 1):
        raise bad("logprobs", top, "pass 0 or 1: this server returns the prompt tokens' own logprobs, no alternatives")
    for key in ("stream", "suffix"):
        if body.get(key):
            raise bad(key, body[key], f"{key} is not supported here; {SCORE_FORM}")
    return ScoreRequest(model, prompt, top)


def echo_completion(req: ScoreRequest, scored: Generation) -> dict[str, Any]:
    """The ``text_completion`` body for ``scored`` (the prompt scored from the model's start
    token): ``choices[0].text`` the prompt, ``logprobs`` with ``tokens``, ``text_offset``,
    ``token_logprobs`` (the first ``null``) and ``top_logprobs`` (``logprobs=1``)."""
    toks = list(scored.tokens or ())
    values: list[float | None] = [None, *(t.logprob for t in toks[1:])]
    top = [None if v is None else {t.token: v} for t, v in zip(toks, values)] if req.top else None
    n = len(toks)
    return {
        "id": "cmpl-" + uuid.uuid4().hex[:24], "object": "text_completion", "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "text": req.prompt, "finish_reason": "length",
                     "logprobs": {"tokens": [t.token for t in toks], "text_offset": [t.offset for t in toks],
                                  "token_logprobs": values, "top_logprobs": top}}],
        "usage": {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n},
    }
