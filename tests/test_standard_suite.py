"""LangChain's own standard test suite (``langchain-tests``) for ChatLogprobModel.

Fast tier: ``hf:tiny-random`` (a real transformers model built in code; random weights, so it
writes random characters). Slow tier (``-m slow``): the embedded SmolLM2-135M-Instruct.
Capabilities are declared as they are: text in, text out, tool calling and structured output
through the chat template (:mod:`adapters.tools`), usage metadata, call-time ``model=``
override. Every skip below names a capability the model truly lacks.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests import ChatModelIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import ChatModelUnitTests  # noqa: E402

from adapters.hf.tiny import tiny_random_model  # noqa: E402
from sc_chains.chat_model import ChatLogprobModel  # noqa: E402

TINY_NAME = "hf:tiny-random-standard"
"""The fast tier's adapter name; the call-time override is the plain ``hf:tiny-random`` spec."""


class _Declared:
    """What ChatLogprobModel is, for both tiers."""

    @property
    def chat_model_class(self) -> type[ChatLogprobModel]:
        return ChatLogprobModel

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # No `timeout`/`max_retries`: a local model has no request timeout or retries, and
        # ChatLogprobModel rejects keyword arguments it does not use (a typed error).
        return {"temperature": 0, "max_tokens": 100, "stop": []}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return False  # no JSON mode: structured output goes through tool calling

    @property
    def supports_image_inputs(self) -> bool:
        return False  # text-only models

    @property
    def supports_model_override(self) -> bool:
        return True


class TestChatLogprobModelUnit(_Declared, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": tiny_random_model(name=TINY_NAME, coalesce=False)}

    @property
    def model_override_value(self) -> str:
        return "hf:tiny-random"

    @property
    def init_from_env_params(self) -> tuple[dict, dict, dict]:
        return {}, {}, {}  # nothing is read from the environment: the adapter is explicit


class TestChatLogprobModelIntegration(_Declared, ChatModelIntegrationTests):
    """Fast tier on tiny-random: everything that does not need a model that understands text."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": tiny_random_model(name=TINY_NAME, coalesce=False)}

    @property
    def model_override_value(self) -> str:
        return "hf:tiny-random"
