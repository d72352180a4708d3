"""HTTP attempts of :class:`adapters.openai_compat.OpenAIModel`: a reply read in full, the time
bounds of a call, and the verdict on one attempt (done, wait and retry, or raise). Split out of
``openai_compat`` so that module keeps the model's request and reply logic."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from adapters.errors import CallTimeoutError, InvalidRequestError, MalformedResponseError
from adapters.retry import AttemptLog, parse_retry_after
from adapters.secrets import scrub, scrub_record

log = logging.getLogger("adapters.openai_compat")


async def _close_with_loop(client: Any) -> Any:
    """Holds ``client`` until the loop finalises this generator, then closes it."""
    try:
        yield client
    finally:
        await client.aclose()


class _Reply:
    """A response read in full (status, headers, body bytes)."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Clock:
    """The time bounds of one call: each attempt ends by ``timeout``, the call by ``deadline``."""

    def __init__(self, timeout: float, deadline: float | None, attempts: AttemptLog) -> None:
        self.timeout = timeout
        self.deadline = deadline
        self.attempts = attempts
        self.end = time.monotonic() + deadline if deadline is not None else math.inf

    def attempt_end(self) -> float:
        """When the next attempt must be finished (monotonic clock)."""
        return min(time.monotonic() + self.timeout, self.end)

    def wait(self, seconds: float) -> float:
        """``seconds``, or raise :class:`CallTimeoutError` when waiting would pass the deadline."""
        if time.monotonic() + seconds >= self.end:
            assert self.deadline is not None
            raise CallTimeoutError(self.attempts.what, self.deadline, self.attempts.attempts)
        return seconds


def _checked_base_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host (credentials already removed), else a typed error."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise InvalidRequestError(
            "base_url", url, "pass the server's /v1 root as http(s)://HOST[:PORT]/v1, e.g. http://127.0.0.1:8000/v1"
        )
    return url


def _check_seconds(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
        raise InvalidRequestError(name, value, "pass a positive number of seconds")


def _timeout(end: float) -> Any:
    """httpx timeouts for an attempt that must end at ``end``: no single wait goes past it."""
    import httpx

    left = max(end - time.monotonic(), 0.001)
    return httpx.Timeout(left, connect=min(left, 10.0))


def _deadline_error(timeout: float) -> Exception:
    import httpx

    return httpx.ReadTimeout(f"no complete response within the attempt's time ({timeout:g}s)")


class _request_errors:
    """Turns errors of building the request (a header httpx refuses) into a typed error, at once.

    Such a request fails the same way on every try, so it is not retried; the message is
    scrubbed and the original exception (which may quote the header) is not chained.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        import httpx

        if isinstance(exc, (httpx.LocalProtocolError, UnicodeEncodeError)):
            raise InvalidRequestError(
                "request", type(exc).__name__,
                f"the HTTP client refused the request ({scrub(exc)}); check api_key, base_url and extra headers",
            ) from None
        return False


def _verdict(outcome: Any, attempts: AttemptLog) -> tuple[bool, Any]:
    """One attempt's result (a response, or the transport error it raised): ``(True, json_body)``
    to finish, or ``(False, seconds to wait)`` before the next try; raises when retries run out."""
    if isinstance(outcome, BaseException):
        wait = attempts.failed(None, _describe(outcome), connect=_is_connect(outcome))
    else:
        done, value = _check(outcome, attempts)
        if done:
            return True, value
        wait = value
    _log_retry(attempts)
    return False, wait


def _check(response: Any, attempts: AttemptLog) -> tuple[bool, Any]:
    """``(True, json_body)`` for a 2xx response, else ``(False, seconds to wait)`` (raises when done)."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            return True, response.json()
        except ValueError:
            raise MalformedResponseError("the response body is not JSON", scrub(response.text[:300])) from None
    try:
        body: Any = scrub_record(response.json())
    except ValueError:
        body = scrub(response.text[:300])
    error = body.get("error", body) if isinstance(body, dict) else body
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return False, attempts.failed(status, scrub(f"HTTP {status}: {error}")[:300], retry_after, body)


def _describe(exc: Exception) -> str:
    return scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _is_connect(exc: Exception) -> bool:
    import httpx

    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def _log_retry(attempts: AttemptLog) -> None:
    last = attempts.attempts[-1]
    log.warning("%s failed (%s); retry %d in %.2fs", attempts.what, scrub(last["error"]), last["attempt"], last["wait"])
