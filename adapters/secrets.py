"""Keeping credentials inside the process: key validation, a registry of live secrets, scrubbing.

Every API key an adapter accepts goes through :func:`clean_api_key` (surrounding whitespace
stripped, control and non-ASCII characters refused with an error that does not show the key)
and is then registered with :func:`register_secret`. Anything that may carry server text, a URL
or an exception message on its way to a log, an error or a file is passed through
:func:`scrub`, which replaces

- every registered secret (and the forms it takes in ``repr``/JSON/bytes reprs), and
- the credentials of any URL (``scheme://user:password@host`` -> ``scheme://***@host``)

with ``***``. :func:`scrub_record` does the same through a JSON-like record (dicts, lists,
strings), for code that writes records to disk (eval ``results.jsonl``, datagen ``raw.jsonl``
and ``manifest.json``). :class:`ScrubFilter` is a :mod:`logging` filter that scrubs log records;
:func:`install_log_scrubbing` puts it on the loggers that may see URLs or server text (``httpx``,
``httpcore``, ``adapters``).

Usage in code that writes records::

    from adapters.secrets import scrub, scrub_record
    line = json.dumps(scrub_record(record))
    print(scrub(str(exc)), file=sys.stderr)
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from adapters.errors import InvalidRequestError, InvalidSecretError

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "ScrubFilter",
    "clean_api_key",
    "install_log_scrubbing",
    "live_secrets",
    "register_env_secrets",
    "register_secret",
    "scrub",
    "scrub_record",
    "split_url_credentials",
]

MASK = "***"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 6
"""Registered secrets shorter than this are not scrubbed from text (a key such as ``"x"`` or
``"none"``, used with local servers that need none, would otherwise mangle every message)."""

_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@'\"<>]+@")
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?=[^\s]*[\d_\-])[A-Za-z0-9._~+/=\-]{8,}")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Add ``value`` to the process-wide set of live secrets that :func:`scrub` removes."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


SECRET_ENV_VARS = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "ANTHROPIC_API_KEY",
                   "GOOGLE_API_KEY", "GEMINI_API_KEY")
"""Environment variables whose values are registered as secrets when this module loads (as set,
and stripped), so they are scrubbed even if no adapter has read them yet."""


def register_env_secrets(names: Iterable[str] = SECRET_ENV_VARS) -> None:
    """Register the values of the named environment variables (and their stripped forms)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            register_secret(value)
            register_secret(value.strip())


def live_secrets() -> frozenset[str]:
    """The registered secrets (for :func:`scrub`'s default)."""
    with _lock:
        return frozenset(_secrets)


def _forms(secret: str) -> list[str]:
    """The ways a secret can appear in text: as is, inside a repr, a JSON string, a bytes repr."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    forms.add(repr(secret.encode("utf-8", "backslashreplace"))[2:-1])
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def scrub(text: Any, secrets: Iterable[str] | None = None) -> str:
    """``text`` (made a string) with every secret and every URL credential replaced by ``***``.

    ``secrets`` defaults to the registered ones (:func:`register_secret`); pass extra values to
    scrub those too. Also masks ``Bearer <token>`` header values (a token of 8+ characters with
    a digit, ``-`` or ``_``), so an echoed ``Authorization`` header never shows a key that was
    not registered.
    """
    out = text if isinstance(text, str) else str(text)
    values = set(live_secrets())
    if secrets is not None:
        values.update(s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH)
    for value in sorted(values, key=len, reverse=True):
        for form in _forms(value):
            if form in out:
                out = out.replace(form, MASK)
    out = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", out)
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)


def scrub_record(record: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of a JSON-like record (dicts, lists, tuples, strings) with every string scrubbed.

    Keys are scrubbed too; numbers, booleans and ``None`` pass unchanged.
    """
    extra = list(secrets) if secrets is not None else None
    if isinstance(record, str):
        return scrub(record, extra)
    if isinstance(record, Mapping):
        return {scrub(k, extra) if isinstance(k, str) else k: scrub_record(v, extra) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return type(record)(scrub_record(v, extra) for v in record)
    return record


def clean_api_key(key: Any, name: str = "api_key") -> str | None:
    """``key`` with surrounding whitespace stripped, or ``None`` when empty/missing.

    Raises :class:`InvalidSecretError` (which never shows the key) when the key still holds a
    control character (``\\r``, ``\\n``, tab, ...) or a non-ASCII character: no HTTP header can
    carry it. A valid key is registered for scrubbing.
    """
    if key is None:
        return None
    if not isinstance(key, str):
        raise InvalidRequestError(name, type(key).__name__, "pass the key as a string")
    register_secret(key)  # also the raw form, in case it reaches a message before validation
    stripped = key.strip()
    for i, ch in enumerate(stripped):
        if not 0x21 <= ord(ch) <= 0x7E:
            raise InvalidSecretError(name, len(stripped), i, ch)
    if not stripped:
        return None
    register_secret(stripped)
    return stripped


def split_url_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``(url without userinfo, (user, password) or None)``; the credentials are registered."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    user, password = unquote(user), unquote(password)
    for value in (userinfo, user, password):
        register_secret(value)
    return urlunsplit(parts._replace(netloc=host)), (user, password)


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's message (arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: scrub what is there
            message = str(record.msg)
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_FILTER = ScrubFilter()
SCRUBBED_LOGGERS = ("httpx", "httpcore", "adapters", "adapters.openai_compat", "adapters.hf", "sc_chains", "graphs")
"""Loggers :func:`install_log_scrubbing` filters (a logger's filter sees only its own records)."""


def install_log_scrubbing(names: Iterable[str] = SCRUBBED_LOGGERS, *, handlers: bool = False) -> None:
    """Add :class:`ScrubFilter` to the named loggers (idempotent).

    A logger's filter sees only records logged on that very logger, not its children's; pass
    ``handlers=True`` (e.g. from a CLI, after logging is configured) to also filter every
    handler of the root logger, which every propagated record passes through.
    """
    targets: list[Any] = [logging.getLogger(name) for name in names]
    if handlers:
        targets += logging.getLogger().handlers
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)


register_env_secrets()
