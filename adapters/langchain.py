"""Any LangChain chat model as a :class:`~adapters.base.LogprobModel`, plus the logprob parsers.

:func:`parse_logprobs` is pure: it reads token logprobs from a message's ``response_metadata`` in
every shape providers use (OpenAI chat, OpenAI legacy completions, Google ``logprobs_result``,
Ollama). :class:`~adapters.openai_compat.OpenAIModel` reuses it for raw server responses.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import LogprobModel
from adapters.errors import InvalidRequestError, LogprobsUnavailableError, MalformedResponseError
from adapters.types import Capabilities, Generation, GenerationRequest, TokenLogprob, Usage, tokens_from_pairs

__all__ = ["ChatModelAdapter", "parse_logprobs", "reply_tokens", "trim_to_text"]

Pair = tuple[str, float, list[tuple[str, float]]]

_MAX_TOKENS_FIELDS = ("max_tokens", "max_output_tokens", "num_predict", "max_new_tokens")
_LENGTH_REASONS = {"length", "max_tokens", "MAX_TOKENS", "max_output_tokens"}


def parse_logprobs(
    response_metadata: Mapping[str, Any] | None, top_k: int | None = None
) -> list[TokenLogprob] | None:
    """Token logprobs from ``response_metadata``, or ``None`` if it holds none.

    Shapes: OpenAI chat ``{"logprobs": {"content": [{token, logprob, bytes, top_logprobs}]}}``;
    legacy ``{"logprobs": {"tokens", "token_logprobs", "top_logprobs"}}``; Google
    ``{"logprobs_result": {"chosen_candidates", "top_candidates"}}`` (or camelCase); Ollama
    ``{"logprobs": [{token, logprob, top_logprobs}]}``. Offsets are running character offsets
    of the concatenated tokens; alternatives are sorted most likely first and cut to ``top_k``.
    Raises :class:`MalformedResponseError` for a recognised key holding the wrong shape.
    """
    md = response_metadata or {}
    try:
        google = md.get("logprobs_result") or md.get("logprobsResult")
        if google:
            pairs = _google_pairs(google)
        else:
            lp = md.get("logprobs")
            if lp is None:
                return None
            if isinstance(lp, Mapping) and "content" in lp:
                if lp["content"] is None:
                    return None
                pairs = _chat_pairs(lp["content"])
            elif isinstance(lp, Mapping) and "tokens" in lp:
                pairs = _legacy_pairs(lp)
            elif isinstance(lp, Sequence) and not isinstance(lp, (str, bytes)):
                pairs = _chat_pairs(lp)  # Ollama: the content list itself
            else:
                raise TypeError(f"unknown logprobs shape {type(lp).__name__}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponseError(f"unreadable token logprobs ({exc})", dict(md)) from exc
    pairs = _checked(pairs, md)
    if top_k is not None:
        pairs = [(t, lp_, alts[:top_k]) for t, lp_, alts in pairs]
    return list(tokens_from_pairs(pairs))


LOGPROB_TOLERANCE = 1e-4
"""Largest positive logprob taken as rounding noise (and read as 0.0); anything above, or NaN,
is a malformed response: a probability above 1 must never be scored."""


def _valid_logprob(value: float) -> float | None:
    """``value`` (a positive rounding error clamped to 0.0), or ``None`` when it is no logprob."""
    if math.isnan(value) or value > LOGPROB_TOLERANCE:
        return None
    return min(value, 0.0)


def _checked(pairs: list[Pair], md: Mapping[str, Any]) -> list[Pair]:
    out = []
    for i, (token, lp, alts) in enumerate(pairs):
        if not lp <= 0.0 or any(not v <= 0.0 for _, v in alts):  # the rare case: check each value
            for name, value in [(token, lp), *alts]:
                if _valid_logprob(value) is None:
                    raise MalformedResponseError(
                        f"token {i} ({token!r}): logprob {value!r} for {name!r} is not <= 0 "
                        "(a probability above 1, or NaN); the server's logprobs cannot be trusted",
                        dict(md),
                    )
            lp, alts = min(lp, 0.0), [(a, min(v, 0.0)) for a, v in alts]
        out.append((token, lp, alts))
    return out


def _alts(items: Any) -> list[tuple[str, float]]:
    if not items:
        return []
    if isinstance(items, Mapping):  # legacy: {token: logprob}
        alts = [(str(t), float(v)) for t, v in items.items()]
    else:
        alts = [(a["token"], float(a["logprob"] if "logprob" in a else _google_lp(a))) for a in items or ()]
    return sorted(alts, key=lambda a: -a[1])


def _chat_pairs(content: Sequence[Mapping[str, Any]]) -> list[Pair]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out = []
    for item in content:
        raw = item.get("bytes")
        # Byte-level tokens may split a character: decode bytes incrementally so the tokens
        # concatenate to the text exactly (a partial character is "" until it completes).
        token = decoder.decode(bytes(raw)) if isinstance(raw, list) else item["token"]
        out.append((token, float(item["logprob"]), _alts(item.get("top_logprobs"))))
    return out


def _legacy_pairs(lp: Mapping[str, Any]) -> list[Pair]:
    tokens, values = lp["tokens"], lp["token_logprobs"]
    tops = lp.get("top_logprobs") or [None] * len(tokens)
    if not (len(tokens) == len(values) == len(tops)):
        raise ValueError("tokens, token_logprobs and top_logprobs differ in length")
    return [(t, float(v), _alts(top)) for t, v, top in zip(tokens, values, tops)]


def _google_lp(item: Mapping[str, Any]) -> float:
    for key in ("log_probability", "logProbability", "logprob"):
        if key in item:
            return float(item[key])
    raise KeyError("log_probability")


def _google_pairs(result: Mapping[str, Any]) -> list[Pair]:
    chosen = result.get("chosen_candidates") or result.get("chosenCandidates") or []
    tops = result.get("top_candidates") or result.get("topCandidates") or []
    out = []
    for i, item in enumerate(chosen):
        alts = _alts(tops[i].get("candidates") or []) if i < len(tops) else []
        out.append((item["token"], _google_lp(item), alts))
    return out


def reply_tokens(
    tokens: Sequence[TokenLogprob] | None, text: str, model: Any, *, required: bool = True
) -> tuple[TokenLogprob, ...] | None:
    """A reply's tokens trimmed to ``text``. Without logprobs: :class:`LogprobsUnavailableError`
    when ``required``, else ``None`` (callers that need them then check with
    :meth:`~adapters.base.LogprobModel.checked`, as LECO does)."""
    if tokens is None or (text and not tokens):
        if required:
            raise LogprobsUnavailableError(model.name, model.logprobs_hint)
        return None
    return trim_to_text(tokens, text)


def trim_to_text(tokens: Sequence[TokenLogprob], text: str) -> tuple[TokenLogprob, ...]:
    """Drop tokens that start at or after the end of ``text`` (e.g. a stop sequence the server cut)."""
    return tuple(t for t in tokens if t.offset < len(text))


class ChatModelAdapter(LogprobModel):
    """Adapts a LangChain chat model (a ``BaseChatModel``, or ``model.bind(...)`` of one) into a
    logprob model (the reverse of :class:`sc_chains.ChatLogprobModel`).

    Per call it sets ``max_tokens``/``temperature``/``top_p``/``seed`` and requests logprobs on
    the fields the model declares (``logprobs``/``top_logprobs`` for ChatOpenAI and Ollama,
    ``response_logprobs``/``logprobs`` for Google), then reads them with :func:`parse_logprobs`.
    ``require_logprobs=False``: a reply without logprobs has ``tokens=None`` instead of raising
    :class:`LogprobsUnavailableError` (for chains that need none).
    """

    def __init__(
        self, chat_model: Any, *, name: str | None = None, max_top_logprobs: int = 20, require_logprobs: bool = True
    ) -> None:
        from langchain_core.language_models import BaseChatModel
        from langchain_core.runnables import RunnableBinding

        if not isinstance(require_logprobs, bool):
            raise InvalidRequestError("require_logprobs", require_logprobs, "pass True or False")
        self.require_logprobs_in_replies = require_logprobs
        self._call_kwargs: dict[str, Any] = {}
        if isinstance(chat_model, RunnableBinding) and isinstance(chat_model.bound, BaseChatModel):
            self._call_kwargs = dict(chat_model.kwargs)
            chat_model = chat_model.bound
        if not isinstance(chat_model, BaseChatModel):
            raise InvalidRequestError(
                "chat_model", type(chat_model).__name__, "pass a LangChain BaseChatModel, e.g. ChatOpenAI(...)"
            )
        self.chat_model = chat_model
        self._fields = set(type(chat_model).model_fields)
        self.name = name or str(
            getattr(chat_model, "model_name", None) or getattr(chat_model, "model", None) or type(chat_model).__name__
        )
        self.capabilities = Capabilities(
            logprobs=True, full_distribution=False, prefill=False, max_top_logprobs=max_top_logprobs
        )
        self.logprobs_hint = (
            f"{type(chat_model).__name__} did not put logprobs in response_metadata. Enable them on the "
            "model, e.g. ChatOpenAI(logprobs=True) or model.bind(logprobs=True, top_logprobs=5); for "
            "Google use response_logprobs=True; for Ollama logprobs=True."
        )

    # -- one request: prepare (sync/async agnostic) and finish -----------------------------------
    def _prepare(self, request: GenerationRequest) -> tuple[Any, list[Any], dict[str, Any]]:
        from langchain_core.messages import convert_to_messages

        update: dict[str, Any] = {}
        limit_field = next((f for f in _MAX_TOKENS_FIELDS if f in self._fields), None)
        if limit_field:
            update[limit_field] = request.max_tokens
        for field_name in ("temperature", "top_p", "seed"):
            value = getattr(request, field_name)
            if field_name in self._fields and value is not None:
                update[field_name] = value
        if "response_logprobs" in self._fields:  # Google
            update["response_logprobs"] = True
            if request.top_logprobs and "logprobs" in self._fields:
                update["logprobs"] = request.top_logprobs
        elif "logprobs" in self._fields:
            update["logprobs"] = True
            if "top_logprobs" in self._fields:
                # llama.cpp-based servers return no logprobs at all for top_logprobs=0.
                update["top_logprobs"] = max(1, request.top_logprobs)
        base = str(getattr(self.chat_model, "openai_api_base", None) or "")
        if "extra_body" in self._fields and base and "api.openai.com" not in base:
            # ChatOpenAI sends max_completion_tokens, which llama.cpp and older vLLM ignore.
            update["extra_body"] = {**(self.chat_model.extra_body or {}), "max_tokens": request.max_tokens}
        model = self.chat_model.model_copy(update=update) if update else self.chat_model
        kwargs = dict(self._call_kwargs)
        if request.stop:
            kwargs["stop"] = list(request.stop)
        return model, convert_to_messages(list(request.messages)), kwargs

    def _finish(self, message: Any, request: GenerationRequest) -> Generation:
        content = message.content
        text = content if isinstance(content, str) else message.text
        if not isinstance(text, str):
            text = text()  # langchain-core < 1 exposed text() as a method
        md = getattr(message, "response_metadata", None) or {}
        tokens = reply_tokens(
            parse_logprobs(md, top_k=request.top_logprobs), text, self, required=self.require_logprobs_in_replies
        )
        um = getattr(message, "usage_metadata", None) or {}
        usage = Usage(
            prompt_tokens=int(um.get("input_tokens") or 0),
            completion_tokens=int(um.get("output_tokens") or 0),
            cached_tokens=int((um.get("input_token_details") or {}).get("cache_read") or 0),
        )
        reason = md.get("finish_reason") or md.get("done_reason") or "stop"
        return Generation(
            text=text,
            tokens=tokens,
            finish_reason="length" if reason in _LENGTH_REASONS else "stop",
            usage=usage,
            model=self.name,
        )

    def _generate(self, request: GenerationRequest) -> Generation:
        model, messages, kwargs = self._prepare(request)
        return self._finish(model.invoke(messages, **kwargs), request)

    async def _agenerate(self, request: GenerationRequest) -> Generation:
        model, messages, kwargs = self._prepare(request)
        return self._finish(await model.ainvoke(messages, **kwargs), request)
