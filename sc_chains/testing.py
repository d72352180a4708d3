"""Scripted fakes for downstream tests (like langchain_core's ``GenericFakeChatModel``).

- :class:`FakeLogprobModel`: a logprob adapter with a reply queue, per-token logprobs, recorded
  calls, sync and async.
- :class:`FakeReply`: one scripted reply, with per-substring logprob overrides.
- :class:`FakeLogprobChatModel`: a scripted LangChain chat model whose replies carry per-token
  logprobs in ``response_metadata["logprobs"]`` and can call tools (for ``create_agent`` tests).
"""

from adapters.fake import FakeLogprobModel, FakeReply, split_tokens
from sc_chains.fake_chat import FakeLogprobChatModel

__all__ = ["FakeLogprobChatModel", "FakeLogprobModel", "FakeReply", "split_tokens"]
