"""Scripted fakes for downstream tests (like langchain_core's ``GenericFakeChatModel``).

- :class:`FakeLogprobModel`: a logprob adapter with a reply queue, per-token logprobs, recorded
  calls, sync and async.
- :class:`FakeReply`: one scripted reply, with per-substring logprob overrides.
"""

from adapters.fake import FakeLogprobModel, FakeReply, split_tokens

__all__ = ["FakeLogprobModel", "FakeReply", "split_tokens"]
