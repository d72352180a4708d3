"""Raw datagen records -> TRL dataset rows. Pure functions, one per (generator, TRL format).

TRL field names (methods.md, "Data formats"): SFT ``{"prompt", "completion"}`` or
``{"messages"}``; preference ``{"prompt", "chosen", "rejected"}`` (conversational: lists of
messages); unpaired ``{"prompt", "completion", "label"}``; stepwise ``{"prompt", "completions",
"labels"}``. :func:`examples` applies the right one to a record and returns its rows (none for a
dropped record, or for a failed second attempt in the SFT formats of ``score``).

Every row passes :func:`clean_row` on the way out: model-written text (assistant messages,
``completion``/``completions``/``chosen``/``rejected``) loses any special token that leaked from
decoding (``<pad>``, ``<unk>``, ``</s>``, ``<|im_end|>``...; :data:`SPECIAL_TOKEN`); a stepwise
row loses its empty steps (with their labels); a row left with an empty model text, or a pair
whose chosen and rejected became equal, is dropped.
User text is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from adapters.errors import InvalidRequestError

__all__ = [
    "EXPORTERS",
    "SFT_SOURCES",
    "SPECIAL_TOKEN",
    "clean_row",
    "clean_steps",
    "examples",
    "score_kto",
    "score_messages",
    "score_prompt_completion",
    "self_reward_preference",
    "stepwise",
    "w2s_messages",
    "w2s_preference",
    "w2s_prompt_completion",
]

Record = Mapping[str, Any]
SFT_SOURCES = ("weak", "strong", "both")
"""Which stage-I solution(s) ``w2s`` SFT rows use."""


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def score_messages(record: Record) -> dict[str, Any]:
    """SFT ``messages``: the whole two-attempt conversation."""
    return {"messages": [dict(m) for m in record["messages"]]}


def score_prompt_completion(record: Record) -> dict[str, Any]:
    """SFT ``prompt``/``completion`` (conversational): the conversation up to the correction
    instruction, then attempt 2 (the model learns to correct)."""
    msgs = [dict(m) for m in record["messages"]]
    return {"prompt": msgs[:3], "completion": msgs[3:]}


def score_kto(record: Record) -> dict[str, Any]:
    """Unpaired ``prompt``/``completion``/``label``: attempt 2 labelled by its reward r2."""
    return {**score_prompt_completion(record), "label": bool(record["r2"])}


def self_reward_preference(record: Record) -> dict[str, Any]:
    """Preference (conversational): the best- and worst-judged responses."""
    return {"prompt": _user(record["prompt"]), "chosen": _assistant(record["chosen"]),
            "rejected": _assistant(record["rejected"])}


def w2s_prompt_completion(record: Record, source: str = "strong") -> dict[str, Any]:
    """Stage-I SFT ``prompt``/``completion`` (conversational) with the ``source`` model's solution."""
    return {"prompt": _user(record["prompt"]), "completion": _assistant(record[f"{source}_solution"])}


def w2s_messages(record: Record, source: str = "strong") -> dict[str, Any]:
    """Stage-I SFT ``messages`` with the ``source`` model's solution."""
    return {"messages": _user(record["prompt"]) + _assistant(record[f"{source}_solution"])}


def w2s_preference(record: Record) -> dict[str, Any]:
    """Stage-II preference (conversational): chosen and rejected as decided by confidence."""
    return {"prompt": _user(record["prompt"]), "chosen": _assistant(record["chosen_text"]),
            "rejected": _assistant(record["rejected_text"])}


def stepwise(record: Record, index: int = 0) -> dict[str, Any]:
    """Stepwise supervision: sequence ``index`` of a ``leco-steps`` record."""
    seq = record["sequences"][index]
    return {"prompt": record["question"], "completions": list(seq["steps"]), "labels": list(seq["labels"])}


EXPORTERS: dict[tuple[str, str], Callable[..., dict[str, Any]]] = {
    ("score", "messages"): score_messages,
    ("score", "prompt-completion"): score_prompt_completion,
    ("score", "kto"): score_kto,
    ("self-reward", "preference"): self_reward_preference,
    ("w2s", "prompt-completion"): w2s_prompt_completion,
    ("w2s", "messages"): w2s_messages,
    ("w2s", "preference"): w2s_preference,
    ("leco-steps", "stepwise"): stepwise,
}
"""``(kind, format) -> to_example``."""


SPECIAL_TOKEN = re.compile(
    r"<\|[^|<>\s]{1,40}\|>"  # <|im_end|>, <|endoftext|>, <|eot_id|>, <|start_header_id|>...
    r"|</?s>|<(?:pad|unk|eos|bos|mask|sep|cls|end_of_turn|start_of_turn)>"
    r"|\[(?:PAD|UNK|CLS|SEP|MASK)\]",
    re.IGNORECASE,
)
"""Tokenizer control tokens that must never reach a training row (checked on model-written text)."""

_MODEL_KEYS = ("completion", "chosen", "rejected")


def _clean_text(text: str) -> str:
    return SPECIAL_TOKEN.sub("", text).strip() if SPECIAL_TOKEN.search(text) else text


def _clean_value(value: Any, model_written: bool) -> Any:
    """Strip special tokens from model text: a string, or assistant messages of a message list."""
    if isinstance(value, str):
        return _clean_text(value) if model_written else value
    if isinstance(value, list):
        return [{**m, "content": _clean_text(m["content"])}
                if isinstance(m, Mapping) and m.get("role") == "assistant" and isinstance(m.get("content"), str)
                else m for m in value]
    return value


def _has_empty_model_text(row: Mapping[str, Any]) -> bool:
    for key, value in row.items():
        if key in _MODEL_KEYS and isinstance(value, str) and not value.strip():
            return True
        if isinstance(value, list) and any(isinstance(m, Mapping) and m.get("role") == "assistant"
                                           and not str(m.get("content") or "").strip() for m in value):
            return True
    return False


def clean_steps(steps: list[str], labels: list[bool]) -> tuple[list[str], list[bool]] | None:
    """Steps without special tokens or blank steps (their labels go with them).

    ``None`` when nothing is left, or when the only ``False`` steps were blank (the sequence
    would then claim a wrong solution is right).
    """
    kept = [(t, lab) for t, lab in ((_clean_text(t), lab) for t, lab in zip(steps, labels)) if t.strip()]
    if not kept or (not all(labels) and all(lab for _, lab in kept)):
        return None
    return [t for t, _ in kept], [lab for _, lab in kept]


def clean_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """``row`` with no special token in model-written text and no blank step; ``None`` to drop it."""
    if "completions" in row:
        cleaned = clean_steps(list(row["completions"]), list(row["labels"]))
        if cleaned is None:
            return None
        row = {**row, "completions": cleaned[0], "labels": cleaned[1]}
    row = {k: _clean_value(v, k in _MODEL_KEYS) if k != "completions" else v for k, v in row.items()}
    if "chosen" in row and row["chosen"] == row.get("rejected"):
        return None  # the pair differed only by special tokens: nothing to prefer
    return None if _has_empty_model_text(row) else row


def examples(record: Record, fmt: str, *, sft_source: str = "both") -> list[dict[str, Any]]:
    """The TRL rows of one raw record in format ``fmt`` (``[]`` when it yields none), cleaned by :func:`clean_row`."""
    rows = _rows(record, fmt, sft_source)
    return [r for r in map(clean_row, rows) if r is not None]


def _rows(record: Record, fmt: str, sft_source: str) -> list[dict[str, Any]]:
    kind = record.get("kind")
    fn = EXPORTERS.get((kind, fmt))
    if fn is None:
        valid = sorted(f for k, f in EXPORTERS if k == kind)
        raise InvalidRequestError("format", fmt, f"{kind} exports to one of {valid}")
    if record.get("status", "ok") != "ok" or record.get("drop"):
        return []
    if kind == "score":
        return [fn(record)] if fmt == "kto" or record["r2"] else []
    if kind == "w2s" and fmt != "preference":
        if sft_source not in SFT_SOURCES:
            raise InvalidRequestError("sft_source", sft_source, f"use one of {list(SFT_SOURCES)}")
        sources = ("weak", "strong") if sft_source == "both" else (sft_source,)
        return [fn(record, s) for s in sources]
    if kind == "leco-steps":
        return [fn(record, i) for i in range(len(record["sequences"]))]
    return [fn(record)]
