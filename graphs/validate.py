"""One validation module and one override mechanism for every config.

Checks raise :class:`adapters.errors.InvalidRequestError` naming the field, the bad value and the
fix. Configs are frozen dataclasses that subclass :class:`Options`: they validate in
``__post_init__`` and get :meth:`Options.from_options` / :meth:`Options.replace`, which accept
any field of the config *or of a nested Options field* (``LecoMiddlewareConfig.from_options(
{"max_rethinks": 2})`` reaches ``config.leco.max_rethinks``), turn lists into tuples (JSON/CLI
friendly) and reject unknown names with the list of accepted ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from adapters.errors import InvalidRequestError

__all__ = [
    "Options",
    "check_bool",
    "check_choice",
    "check_instance",
    "check_int",
    "check_number",
    "check_history",
    "check_question",
    "check_str",
    "start_input",
    "finite",
]

O = TypeVar("O", bound="Options")


def finite(x: Any) -> bool:
    """Whether ``x`` is a real, finite number (bools are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_int(name: str, value: Any, *, minimum: int = 0, maximum: int | None = None,
              allow_none: bool = False, why: str = "") -> None:
    """An int in ``[minimum, maximum]`` (or None when ``allow_none``)."""
    if value is None and allow_none:
        return
    if (not isinstance(value, int) or isinstance(value, bool) or value < minimum
            or (maximum is not None and value > maximum)):
        span = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        extra = " or None (no limit)" if allow_none else ""
        raise InvalidRequestError(name, value, f"pass an integer {span}{extra}{why}")


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, allow_none: bool = False, hint: str = "") -> None:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if value is None and allow_none:
        return
    ok = finite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "" if low is None else f"{'(' if low_open else '['}{low}"
        span = f"in {lo}, {high}]" if high is not None and lo else (f"> {low}" if low_open else f">= {low}")
        if low is None:
            span = f"<= {high}" if high is not None else "finite"
        raise InvalidRequestError(name, value, f"pass a number {span}{hint}")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """One of ``choices``."""
    if value not in choices:
        raise InvalidRequestError(name, value, f"use one of {', '.join(repr(c) for c in choices)}")


def check_bool(name: str, value: Any) -> None:
    """``True`` or ``False`` (not a truthy stand-in)."""
    if not isinstance(value, bool):
        raise InvalidRequestError(name, value, "pass True or False")


def check_str(name: str, value: Any, *, nonempty: bool = False) -> None:
    """A string (non-blank with ``nonempty``)."""
    if not isinstance(value, str) or (nonempty and not value.strip()):
        raise InvalidRequestError(name, value, "pass a non-empty string" if nonempty else "pass a string ('' for none)")


def check_instance(name: str, value: Any, kind: type | tuple[type, ...], fix: str) -> None:
    """An instance of ``kind``."""
    if not isinstance(value, kind):
        raise InvalidRequestError(name, value, fix)


def check_question(value: Any) -> str:
    """A chain's input question: a non-blank string. Returns it."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(
            "question", value, 'invoke with {"question": "<the user\'s text>"} (a non-empty string)'
        )
    return value


def check_history(value: Any) -> list[dict[str, str]]:
    """A chain's optional ``history``: the conversation before the question (system prompt and
    earlier turns), as ``{"role", "content"}`` messages. Returns it normalised (``[]`` for None)."""
    if value is None:
        return []
    from adapters.types import normalize_messages

    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidRequestError("history", value, 'pass a list of {"role", "content"} messages (or leave it out)')
    return [dict(m) for m in normalize_messages(value)] if value else []


def start_input(state: Mapping[str, Any]) -> dict[str, Any]:
    """A chain graph's ``start``: the checked question, the checked ``history`` moved to
    ``conversation`` (and cleared, so a later question on the thread without one gets none)."""
    return {"question": check_question(state.get("question")),
            "conversation": check_history(state.get("history")), "history": None}


class Options:
    """Mixin for frozen config dataclasses: one way to build a config from overrides."""

    @classmethod
    def option_names(cls) -> list[str]:
        """Every name :meth:`from_options` accepts (own fields, then nested configs' fields)."""
        names: list[str] = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            names.append(f.name)
        for sub in _nested(cls):
            names += [n for n in sub.option_names() if n not in names]
        return names

    @classmethod
    def from_options(cls: type[O], options: Mapping[str, Any] | None = None, base: O | None = None) -> O:
        """``base`` (default: the defaults) with ``options`` applied; unknown names raise."""
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(options or {}).items()}
        cfg = base if base is not None else cls()
        if not opts:
            return cfg
        own = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        top = {k: v for k, v in opts.items() if k in own}
        rest = {k: v for k, v in opts.items() if k not in own}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            current = top.get(f.name, getattr(cfg, f.name))
            if not rest or not isinstance(current, Options):
                continue
            mine = {k: rest.pop(k) for k in list(rest) if k in type(current).option_names()}
            if mine:
                top[f.name] = type(current).from_options(mine, base=current)
        if rest:
            name = sorted(rest)[0]
            raise InvalidRequestError(name, rest[name], f"{cls.__name__} accepts {', '.join(cls.option_names())}")
        return dataclasses.replace(cfg, **top)  # type: ignore[type-var]

    def replace(self: O, **overrides: Any) -> O:
        """A copy with ``overrides`` applied (see :meth:`from_options`)."""
        return type(self).from_options(overrides, base=self)


def _nested(cls: type) -> list[type[Options]]:
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, Options):
            out.append(type(default))
    return out
