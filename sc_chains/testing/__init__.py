"""Test helpers for sc-chains and its users: scripted fakes and a real local server.

- :class:`FakeLogprobModel`: a logprob adapter with a reply queue, per-token logprobs, recorded
  calls, sync and async.
- :class:`FakeReply`: one scripted reply, with per-substring logprob overrides.
- :class:`FakeLogprobChatModel`: a scripted LangChain chat model whose replies carry per-token
  logprobs in ``response_metadata["logprobs"]`` and can call tools (for ``create_agent`` tests).
- :func:`llama_server`: a real llama.cpp server on 127.0.0.1 running the embedded SmolLM2, for
  tests against an OpenAI-compatible API.
"""

from adapters.fake import FakeLogprobModel, FakeReply, split_tokens
from sc_chains.testing.fake_chat import FakeLogprobChatModel
from sc_chains.testing.llama_server import LLAMA_MODEL_NAME, llama_server, smollm2_gguf

__all__ = [
    "LLAMA_MODEL_NAME",
    "FakeLogprobChatModel",
    "FakeLogprobModel",
    "FakeReply",
    "llama_server",
    "smollm2_gguf",
    "split_tokens",
]
