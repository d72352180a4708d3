"""The server's settings: one frozen, validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.errors import InvalidRequestError

__all__ = ["HARD_MAX_REQUEST_TIMEOUT_S", "ServerConfig"]

HARD_MAX_REQUEST_TIMEOUT_S = 3600.0
"""No request runs longer than this, whatever ``request_timeout_s`` says."""


@dataclass(frozen=True)
class ServerConfig:
    """How ``sc-chains serve`` listens, authenticates and limits requests."""

    host: str = "127.0.0.1"
    """Interface to bind; the default keeps the server on this machine."""
    port: int = 8000
    """TCP port (0: any free port, see :func:`sc_chains.server.running_server`)."""
    api_key: str | None = None
    """The key clients must send as ``Authorization: Bearer KEY``; ``None``: no authentication.
    Compared in constant time, never logged nor shown in ``repr``."""
    max_body_bytes: int = 1_048_576
    """Largest request body accepted (bytes); bigger bodies get HTTP 413."""
    max_prompt_chars: int = 100_000
    """Most characters over all messages of one request; longer prompts get HTTP 400."""
    max_tokens_limit: int = 8192
    """Largest ``max_tokens`` (per model call) a request may ask for."""
    max_concurrency: int = 256
    """Most requests running a chain at once; the others wait (within ``request_timeout_s``)."""
    request_timeout_s: float = 600.0
    """Most seconds one request may take (waiting included); then HTTP 504. At most 3600."""
    graceful_timeout_s: float = 30.0
    """On SIGINT/SIGTERM: seconds in-flight requests get to finish before they are cancelled."""
    keepalive_s: float = 10.0
    """While a streamed request's chain runs, an SSE comment is sent this often."""
    graph_cache_size: int = 128
    """Compiled chains kept per (chain, settings); each is reused by later requests."""
    log_level: str = "info"
    """uvicorn's log level (``critical``, ``error``, ``warning``, ``info``, ``debug``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise InvalidRequestError("host", self.host, "pass an interface, e.g. 127.0.0.1")
        _int_in("port", self.port, 0, 65535)
        if self.api_key is not None:
            from adapters.secrets import clean_api_key

            if not isinstance(self.api_key, str) or clean_api_key(self.api_key, "api_key") != self.api_key:
                raise InvalidRequestError("api_key", "<hidden>", "pass a non-empty key without surrounding "
                                          "whitespace, or None")
        _int_in("max_body_bytes", self.max_body_bytes, 1024, 1 << 30)
        _int_in("max_prompt_chars", self.max_prompt_chars, 1, 10_000_000)
        _int_in("max_tokens_limit", self.max_tokens_limit, 1, 1_000_000)
        _int_in("max_concurrency", self.max_concurrency, 1, 100_000)
        _int_in("graph_cache_size", self.graph_cache_size, 1, 100_000)
        for name, high in (("request_timeout_s", HARD_MAX_REQUEST_TIMEOUT_S), ("graceful_timeout_s", 3600.0),
                           ("keepalive_s", 600.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= high:
                raise InvalidRequestError(name, v, f"pass seconds in (0, {high:g}]")
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise InvalidRequestError("log_level", self.log_level, "use critical, error, warning, info or debug")

    def __repr__(self) -> str:  # the key never shows
        shown = "None" if self.api_key is None else "'<hidden>'"
        return f"ServerConfig(host={self.host!r}, port={self.port}, api_key={shown}, ...)"


def _int_in(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidRequestError(name, value, f"pass an integer in [{low}, {high}]")
