"""Score given text through an OpenAI-compatible server: ``/v1/completions`` with ``echo``.

:meth:`adapters.base.LogprobModel.score_texts` for :class:`adapters.openai_compat.OpenAIModel`
(opt-in: ``text_scores=True``). One request per ``(prefix, continuation)`` pair: the prompt is
``prefix + continuation`` as raw text, ``echo=true, max_tokens=0, logprobs=1`` (OpenAI's legacy
form, which vLLM and ``sc-chains serve`` answer without generating), and the reply's prompt
token logprobs are read back by their character offsets. Pure helpers, tested on literals.

The server tokenizes the two parts together, so a token that straddles the boundary (rare: most
continuations start with a space or a line break) counts with the continuation. A text's first
token has no logprob in this API, so the prefix must not be empty.

Servers that do not answer this correctly: llama.cpp's ``llama-server`` returns logprobs for the
generated token only (detected: :class:`~adapters.errors.ScoringUnavailableError`);
``llama-cpp-python``'s server returns each prompt token's logprob from the position after it
(shifted by one, abetlen/llama-cpp-python#1983), which a reply cannot reveal: do not set
``text_scores=True`` for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.errors import InvalidRequestError, MalformedResponseError, ScoringUnavailableError
from adapters.secrets import scrub_record
from adapters.types import Generation, TokenLogprob, Usage

__all__ = ["ECHO_HINT", "check_prefix", "parse_echo", "score_payload"]

ECHO_HINT = ("the server must return prompt token logprobs for echo=true, max_tokens=0 on /v1/completions "
             "(vLLM, sc-chains serve and OpenAI's completion models do; llama.cpp servers do not): use such a "
             "server, or a local model (hf:...)")
"""The fix shown when a server's reply has no prompt logprobs."""


def score_payload(model: str, prefix: str, continuation: str) -> dict[str, Any]:
    """The ``/v1/completions`` body that scores ``continuation`` after ``prefix`` without generating."""
    return {"model": model, "prompt": prefix + continuation, "echo": True, "max_tokens": 0,
            "logprobs": 1, "temperature": 0.0}


def check_prefix(pairs: list[tuple[str, str]]) -> None:
    """Refuse a pair with an empty prefix (its first token cannot be scored over this API)."""
    for i, (prefix, _) in enumerate(pairs):
        if not prefix:
            raise InvalidRequestError(f"pairs[{i}]", "empty prefix", "an OpenAI-compatible server cannot score "
                                      "a text's first token: give every pair a non-empty prefix")


def _prompt_logprobs(body: Any) -> tuple[list[int], list[float | None]]:
    """The reply's ``(text_offset, token_logprobs)`` lists (same length)."""
    try:
        lp = body["choices"][0]["logprobs"]
        offsets, values = list(lp["text_offset"]), list(lp["token_logprobs"])
        if len(offsets) != len(values) or not all(isinstance(o, int) for o in offsets):
            raise TypeError("text_offset and token_logprobs differ in length or type")
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedResponseError(f"no choices[0].logprobs with text_offset and token_logprobs ({exc})",
                                     scrub_record(body)) from exc
    return offsets, values


def parse_echo(body: Mapping[str, Any], prefix: str, continuation: str, name: str) -> Generation:
    """The continuation's :class:`Generation` from an echo reply: ``text`` the continuation,
    ``tokens`` the prompt tokens that end inside it (their text cut from the prompt by offsets,
    offsets counted from the continuation's start), ``usage`` the reply's prompt tokens.

    Raises :class:`ScoringUnavailableError` when the reply lacks a logprob for one of those
    tokens (a server that echoes no prompt logprobs), :class:`MalformedResponseError` when the
    reply has no logprobs object at all."""
    offsets, values = _prompt_logprobs(body)
    text = body["choices"][0].get("text")
    if isinstance(text, str) and not text.startswith(prefix + continuation):
        raise ScoringUnavailableError(name, "the reply did not echo the prompt; " + ECHO_HINT)
    start, end = len(prefix), len(prefix) + len(continuation)
    inside = [i for i, off in enumerate(offsets) if off < end and (offsets[i + 1] if i + 1 < len(offsets) else end) > start]
    if not inside or any(values[i] is None for i in inside) or offsets[inside[0]] > start:
        raise ScoringUnavailableError(name, ECHO_HINT)
    tokens = []
    for k, i in enumerate(inside):
        lo = max(offsets[i], start)
        hi = offsets[inside[k + 1]] if k + 1 < len(inside) else end
        tokens.append(TokenLogprob(continuation[lo - start : hi - start], float(values[i]), lo - start))  # type: ignore[arg-type]
    usage = body.get("usage") or {}
    return Generation(continuation, tuple(tokens), "stop", Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0)), name)
