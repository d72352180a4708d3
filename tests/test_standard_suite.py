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

from adapters.errors import InvalidRequestError  # noqa: E402
from adapters.fake import FakeLogprobModel  # noqa: E402
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


TINY_CANNOT = (
    "hf:tiny-random has random weights and writes random characters: it cannot choose a tool or "
    "write arguments that parse (the tool path itself is tested in tests/test_tools.py and in "
    "the slow tier on the embedded model)"
)


def _cannot(reason: str) -> Any:
    """A standard test this model cannot pass, marked as langchain-tests asks (an ``xfail`` with
    the reason) and not run (``run=False``): the reason names what the model lacks."""

    @pytest.mark.xfail(reason=reason, run=False)
    def test(self: Any, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - not run
        raise AssertionError(reason)

    return test


TINY_MAX_TOKENS = 24
"""The fast tier's cap: random weights seldom write the end-of-turn token, so every call runs to
the cap (the suite's 100, or the class default of 256 where a test builds its own model), and a
few dozen tokens check the same contract in a fraction of the time."""


class TestChatLogprobModelIntegration(_Declared, ChatModelIntegrationTests):
    """Fast tier on tiny-random: everything that does not need a model that understands text."""

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {**super().standard_chat_model_params, "max_tokens": TINY_MAX_TOKENS}

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": tiny_random_model(name=TINY_NAME, coalesce=False), "max_tokens": TINY_MAX_TOKENS}

    @property
    def model_override_value(self) -> str:
        return "hf:tiny-random"

    # random weights: no tool choice, no arguments, no structured output, no agent loop
    test_tool_calling = _cannot(TINY_CANNOT)
    test_tool_calling_async = _cannot(TINY_CANNOT)
    test_bind_runnables_as_tools = _cannot(TINY_CANNOT)
    test_tool_choice = _cannot(TINY_CANNOT)
    test_tool_calling_with_no_arguments = _cannot(TINY_CANNOT)
    test_structured_output = _cannot(TINY_CANNOT)
    test_structured_output_async = _cannot(TINY_CANNOT)
    test_structured_output_pydantic_2_v1 = _cannot(TINY_CANNOT)
    test_structured_output_optional_param = _cannot(TINY_CANNOT)
    test_agent_loop = _cannot(TINY_CANNOT)
    test_unicode_tool_call_integration = _cannot(TINY_CANNOT)


SMALL_CANNOT_CHOOSE = (
    "SmolLM2-135M does not decide on its own to call a tool (tool_choice='auto'), nor which of "
    "several tools to call: forced calls (tool_choice='any' with one tool, or a tool's name) work"
)


SMALL_CANNOT_FILL = (
    "SmolLM2-135M does not write a tool call that fills every required field of the Joke schema "
    "(measured on SmolLM2-135M-Instruct, greedy: the pydantic / TypedDict parsers yield no chunk, "
    "an int where a string is required, a Unicode call cut off at 100 tokens)"
)


@pytest.mark.slow
class TestChatLogprobModelEmbedded(_Declared, ChatModelIntegrationTests):
    """Slow tier on the embedded SmolLM2-135M-Instruct (its template has no tools section: the
    documented text prompt of adapters.tools is used)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "hf:default"}

    @property
    def model_override_value(self) -> str:
        return "hf:tiny-random"

    test_agent_loop = _cannot(SMALL_CANNOT_CHOOSE)
    test_tool_choice = _cannot(SMALL_CANNOT_CHOOSE)  # tool_choice="any" over two tools: it names neither
    # the Joke schema (two required strings): SmolLM2-135M's greedy tool call does not fill both
    # fields in the pydantic / TypedDict renderings, so the strict parsers yield no chunk while
    # streaming ("Stream returned no chunks"); the json_schema rendering passes. The
    # structured-output path itself: tests/test_tools.py::test_with_structured_output.
    test_structured_output = _cannot(SMALL_CANNOT_FILL)
    test_structured_output_async = _cannot(SMALL_CANNOT_FILL)
    test_structured_output_pydantic_2_v1 = _cannot(SMALL_CANNOT_FILL)
    test_structured_output_optional_param = _cannot(SMALL_CANNOT_FILL)  # measured: setup=1 (an int)
    # measured: the forced call with a Unicode argument runs past the suite's 100 tokens, so its
    # JSON is cut off and lands in invalid_tool_calls (the parser's contract), not tool_calls
    test_unicode_tool_call_integration = _cannot(SMALL_CANNOT_FILL)


# -- the conventions the suite checks, as plain tests too ------------------------------------------
@pytest.mark.parametrize("kw", [{"timeout": 60}, {"foo": 1}, {"max_retries": 2}])
def test_unknown_constructor_kwargs_are_a_typed_error(kw):
    with pytest.raises(InvalidRequestError) as info:
        ChatLogprobModel(FakeLogprobModel(default="x"), **kw)
    assert info.value.param == next(iter(kw)) and "ChatLogprobModel takes" in str(info.value)
    ChatLogprobModel(FakeLogprobModel(default="x"), tags=["a"], metadata={"k": 1}, streaming=True)  # LangChain's own


def test_call_time_model_override_runs_that_adapter_and_names_it():
    first, second = FakeLogprobModel(default="from first", name="first"), FakeLogprobModel(default="from second", name="second")
    chat = ChatLogprobModel(first)
    assert chat.invoke("q").content == "from first"
    msg = chat.invoke("q", model=second)
    assert msg.content == "from second" and msg.response_metadata["model_name"] == "second"
    assert chat._get_ls_params(model="hf:tiny-random")["ls_model_name"] == "hf:tiny-random"
    assert chat._get_ls_params()["ls_model_name"] == "first"
    assert chat.invoke("q", model="first").content == "from first"  # its own name: the same adapter
    assert "".join(c.content for c in chat.stream("q", model=second)) == "from second"
