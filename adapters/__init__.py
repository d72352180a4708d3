"""Model I/O with token logprobs: one vocabulary, one interface, many backends.

Light names (types, errors, the base class, the scripted fake) import eagerly; backends that need
torch/transformers/openai load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from adapters.base import LogprobModel
from adapters.errors import (
    CallTimeoutError,
    ContextWindowExceededError,
    EmbeddedModelCorruptError,
    EmbeddedModelMissingError,
    InvalidRequestError,
    InvalidSecretError,
    LogprobsUnavailableError,
    MalformedResponseError,
    ModelNotFoundError,
    RetriesExhaustedError,
    SCChainsError,
    ServerRejectedRequestError,
    ServerUnreachableError,
    UnknownModelSpecError,
    UnreachableAfterRetriesError,
)
from adapters.fake import FakeLogprobModel, FakeReply
from adapters.specs import resolve_model
from adapters.types import (
    Capabilities,
    Generation,
    GenerationRequest,
    TokenLogprob,
    TopLogprob,
    Usage,
    normalize_messages,
)

if TYPE_CHECKING:
    from adapters.hf import HFModel
    from adapters.langchain import ChatModelAdapter
    from adapters.openai_compat import OpenAIModel

_LAZY = {
    "HFModel": "adapters.hf",
    "ChatModelAdapter": "adapters.langchain",
    "OpenAIModel": "adapters.openai_compat",
    "RetryPolicy": "adapters.retry",
}

__all__ = [
    "CallTimeoutError",
    "Capabilities",
    "ContextWindowExceededError",
    "EmbeddedModelCorruptError",
    "EmbeddedModelMissingError",
    "FakeLogprobModel",
    "FakeReply",
    "Generation",
    "GenerationRequest",
    "HFModel",
    "InvalidRequestError",
    "ChatModelAdapter",
    "InvalidSecretError",
    "LogprobModel",
    "LogprobsUnavailableError",
    "MalformedResponseError",
    "ModelNotFoundError",
    "OpenAIModel",
    "RetriesExhaustedError",
    "RetryPolicy",
    "SCChainsError",
    "ServerRejectedRequestError",
    "ServerUnreachableError",
    "TokenLogprob",
    "TopLogprob",
    "UnknownModelSpecError",
    "UnreachableAfterRetriesError",
    "Usage",
    "normalize_messages",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'adapters' has no attribute {name!r}")
