"""Retries for HTTP model servers: a frozen policy, ``Retry-After`` parsing and the attempt log.

The policy is pure (no I/O): :meth:`RetryPolicy.wait` decides how long to wait before the next
attempt, and :class:`AttemptLog` records every try (status, error, wait) and raises the typed
error when the policy says stop. The sync and async HTTP loops in
:mod:`adapters.openai_compat` share all of it and differ only in how they sleep.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.errors import (
    InvalidRequestError,
    RetriesExhaustedError,
    ServerRejectedRequestError,
    UnreachableAfterRetriesError,
)

__all__ = [
    "AttemptLog",
    "MAX_RETRIES",
    "MAX_WAIT_S",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "capped_backoff",
    "parse_retry_after",
]

MAX_WAIT_S = 120.0
"""Hard ceiling, in seconds, of any single wait between retries (a computed backoff or a
server's ``Retry-After``). No argument lifts it: :class:`RetryPolicy` refuses larger
``max_backoff``/``max_retry_after`` values."""

MAX_RETRIES = 50
"""Hard ceiling of ``max_retries``: with :data:`MAX_WAIT_S` it bounds the time a call can spend
waiting."""

_MAX_MULTIPLIER = 10.0

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses worth another try: timeouts, conflicts, rate limits and server errors."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``Retry-After`` from the server wins over the backoff."""

    max_retries: int = 3
    """Retries after the first attempt (0 = try once)."""
    initial_backoff: float = 0.5
    """Seconds to wait before the first retry (before jitter)."""
    multiplier: float = 2.0
    """Each further retry waits ``multiplier`` times longer."""
    max_backoff: float = 20.0
    """Upper bound of a computed backoff, in seconds (at most :data:`MAX_WAIT_S`)."""
    jitter: float = 0.25
    """Fraction of the backoff drawn at random and taken off (0 = no jitter, 1 = full jitter)."""
    max_retry_after: float = 60.0
    """Longest ``Retry-After`` honoured, in seconds; a longer one is cut to this (at most
    :data:`MAX_WAIT_S`)."""
    retry_statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)
    """HTTP statuses that are retried; any other error status fails at once."""

    def __post_init__(self) -> None:
        retries = self.max_retries
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
            raise InvalidRequestError("max_retries", retries, f"pass an integer between 0 and {MAX_RETRIES}")
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= MAX_WAIT_S:
                raise InvalidRequestError(name, value, f"pass a number of seconds between 0 and {MAX_WAIT_S:g}")
        if not isinstance(self.multiplier, (int, float)) or not 1 <= self.multiplier <= _MAX_MULTIPLIER:
            raise InvalidRequestError("multiplier", self.multiplier, f"pass a number between 1 and {_MAX_MULTIPLIER:g}")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise InvalidRequestError("jitter", self.jitter, "pass a fraction in [0, 1]")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds before retry number ``retry`` (0-based) without a ``Retry-After``."""
        base = capped_backoff(self.initial_backoff, retry, self.multiplier, self.max_backoff)
        draw = (rng or random).random()
        return base * (1.0 - self.jitter * draw)

    def wait(self, retry: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds before retry ``retry``: the server's ``Retry-After`` if given, else the backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(retry, rng)

    def retryable(self, status: int | None) -> bool:
        """Whether a failure is retried (``status=None``: connection-level failure, retried)."""
        return status is None or status in self.retry_statuses


def capped_backoff(initial: float, retry: int, multiplier: float = 2.0, cap: float = MAX_WAIT_S) -> float:
    """``initial * multiplier**retry`` seconds, but never more than ``cap`` nor :data:`MAX_WAIT_S`
    (and never an overflow, however large ``retry`` is)."""
    cap = min(cap, MAX_WAIT_S)
    if initial <= 0:
        return 0.0
    if initial >= cap:
        return cap
    if multiplier <= 1:
        return initial
    if retry >= math.log(cap / initial, multiplier):  # initial * multiplier**retry >= cap
        return cap
    return min(cap, initial * multiplier**retry)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    Returns ``None`` for a missing or unparsable header; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN -> None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    now = time.time() if now is None else now
    return max(when.timestamp() - now, 0.0)


@dataclass
class AttemptLog:
    """The trajectory of one call: one dict per failed attempt (``attempt, status, error, wait``)."""

    policy: RetryPolicy
    """The policy deciding whether and how long to wait."""
    what: str
    """What is being attempted, e.g. ``"POST http://host/v1/chat/completions"``."""
    base_url: str = ""
    """Server root, named by :class:`UnreachableAfterRetriesError`."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Failed attempts so far."""
    rng: random.Random | None = None
    """Jitter source (``None``: the module's ``random``)."""

    def failed(
        self,
        status: int | None,
        error: str,
        retry_after: float | None = None,
        body: Any = None,
        *,
        connect: bool = False,
    ) -> float:
        """Record a failed attempt; return seconds to wait, or raise when the policy says stop.

        ``status=None`` is a transport failure (dropped connection, timeout); ``connect=True``
        marks one where no connection was made at all.
        """
        entry: dict[str, Any] = {
            "attempt": len(self.attempts) + 1,
            "status": status,
            "error": error,
            "wait": None,
            "connect": connect,
        }
        self.attempts.append(entry)
        if not self.policy.retryable(status):
            raise ServerRejectedRequestError(self.what, status or 0, body if body is not None else error)
        retry = len(self.attempts) - 1
        if retry >= self.policy.max_retries:
            if all(a["connect"] for a in self.attempts):
                raise UnreachableAfterRetriesError(self.base_url, error, self.attempts)
            raise RetriesExhaustedError(self.what, self.attempts)
        entry["wait"] = self.policy.wait(retry, retry_after, self.rng)
        if retry_after is not None:
            entry["retry_after"] = retry_after
        return entry["wait"]
