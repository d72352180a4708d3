"""LECO's prompts: numbered steps, one per line, ending "The answer is X" (methods.md, section 1)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.types import Message
from graphs.common import with_system
from graphs.sc.config import SC_INSTRUCTION

__all__ = ["CONTINUE_TEMPLATE", "PLAIN_FORMAT", "PLAIN_USER_TEMPLATE", "SYSTEM_PROMPT", "USER_TEMPLATE",
           "chat_messages", "continue_message"]

SYSTEM_PROMPT = (
    "Solve the problem step by step. Write each step on its own line, starting with "
    "'Step 1:', 'Step 2:', and so on. End with a last line of the form 'The answer is X.', "
    "where X is the final answer."
)
"""The system message of every LECO call."""

USER_TEMPLATE = "Question: {question}"
"""The first attempt's user message (``{question}``: the user's full input)."""

PLAIN_USER_TEMPLATE = "{question}\n\n" + SC_INSTRUCTION
"""The question with the plain chain-of-thought instruction self-consistency samples with (no
``Step N:`` labels: LECO splits the reply at its line breaks)."""

PLAIN_FORMAT = {"system_prompt": "", "user_template": PLAIN_USER_TEMPLATE}
"""LECO settings for the plain format: no system message, :data:`PLAIN_USER_TEMPLATE`. Measured
with Qwen2.5-Coder-0.5B on SVAMP (n = 200): the ``Step N:`` format's first attempt was 5.5-6
points below the plain chain-of-thought prompt (38.7-39.0% against 44.5-44.7%)."""

CONTINUE_TEMPLATE = (
    "Here is the start of a solution. Continue it from Step {step}, one step per line, "
    "and end with 'The answer is X.'\n\n"
    "{prefix}Step {step}:"
)
"""Chat fallback for a rethink: a user message after the conversation (which holds the
question) with the kept prefix, verbatim, then ``Step {step}:``."""


def chat_messages(question: str, system_prompt: str = SYSTEM_PROMPT,
                  history: Sequence[Message] = (), user_template: str = USER_TEMPLATE) -> list[Message]:
    """Messages of the first attempt (also the base of a prefill rethink): the caller's
    ``history`` (its system prompt joined to LECO's), then ``user_template`` with the question
    in place of ``{question}`` (no other braces are read)."""
    return [
        *with_system(history, system_prompt),
        {"role": "user", "content": user_template.replace("{question}", question)},
    ]


def continue_message(prefix: str, step: int) -> Message:
    """The user message of a chat-fallback rethink (appended to the conversation)."""
    return {"role": "user", "content": CONTINUE_TEMPLATE.format(prefix=prefix, step=step)}
