"""LECO's prompts: numbered steps, one per line, ending "The answer is X" (methods.md, section 1)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.types import Message
from graphs.common import with_system

__all__ = ["SYSTEM_PROMPT", "USER_TEMPLATE", "CONTINUE_TEMPLATE", "chat_messages", "continue_message"]

SYSTEM_PROMPT = (
    "Solve the problem step by step. Write each step on its own line, starting with "
    "'Step 1:', 'Step 2:', and so on. End with a last line of the form 'The answer is X.', "
    "where X is the final answer."
)
"""The system message of every LECO call."""

USER_TEMPLATE = "Question: {question}"
"""The first attempt's user message (``{question}``: the user's full input)."""

CONTINUE_TEMPLATE = (
    "Here is the start of a solution. Continue it from Step {step}, one step per line, "
    "and end with 'The answer is X.'\n\n"
    "{prefix}Step {step}:"
)
"""Chat fallback for a rethink: a user message after the conversation (which holds the
question) with the kept prefix, verbatim, then ``Step {step}:``."""


def chat_messages(question: str, system_prompt: str = SYSTEM_PROMPT,
                  history: Sequence[Message] = ()) -> list[Message]:
    """Messages of the first attempt (also the base of a prefill rethink): the caller's
    ``history`` (its system prompt joined to LECO's), then the question."""
    return [
        *with_system(history, system_prompt),
        {"role": "user", "content": USER_TEMPLATE.format(question=question)},
    ]


def continue_message(prefix: str, step: int) -> Message:
    """The user message of a chat-fallback rethink (appended to the conversation)."""
    return {"role": "user", "content": CONTINUE_TEMPLATE.format(prefix=prefix, step=step)}
