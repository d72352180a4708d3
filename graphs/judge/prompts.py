"""Judge prompts: the self-rewarding additive 5-point rubric and a position-swapped pairwise one."""

from __future__ import annotations

from adapters.types import Message

__all__ = ["PAIRWISE_PROMPT", "POINTWISE_PROMPT", "pairwise_messages", "pointwise_messages"]

POINTWISE_PROMPT = """Review the user's question and the corresponding response using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:
- Add 1 point if the response is relevant and provides some information related to the user's inquiry, even if it is incomplete or contains some irrelevant content.
- Add another point if the response addresses a substantial portion of the user's question, but does not completely resolve the query or provide a direct answer.
- Award a third point if the response answers the basic elements of the user's question in a useful way, regardless of whether it seems to have been written by an AI Assistant or if it has elements typically found in blogs or search results.
- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, addressing the user's question directly and comprehensively, and is well-organized and helpful, even if there is slight room for improvement in clarity, conciseness or focus.
- Bestow a fifth point for a response that is impeccably tailored to the user's question by an AI Assistant, without extraneous information, reflecting expert knowledge, and demonstrating a high-quality, engaging, and insightful answer.

User: {question}
<response>{response}</response>

After examining the user's instruction and the response:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Score: <total points>"

Remember to assess from the AI Assistant perspective, utilizing web search knowledge as necessary. To evaluate the response in alignment with this additive scoring model, we'll systematically attribute points based on the outlined criteria."""
"""The LLM-as-a-judge prompt of Self-Rewarding Language Models (Yuan et al., 2024, fig. 2)."""

PAIRWISE_PROMPT = """Please act as an impartial judge and compare the two responses to the user question below. Choose the response that follows the user's instructions and answers the question better: consider correctness, helpfulness, relevance, depth and level of detail. Do not let the order of the responses, their length or the assistants' names influence you.

[User question]
{question}

[Response A]
{a}

[Response B]
{b}

After a brief explanation (up to 100 words), end with exactly one line: "Winner: A" if response A is better, "Winner: B" if response B is better, or "Winner: tie"."""
"""Pairwise comparison prompt; it is asked twice, with A and B swapped."""


def pointwise_messages(question: str, response: str) -> list[Message]:
    """The pointwise rubric prompt for one (question, response)."""
    return [{"role": "user", "content": POINTWISE_PROMPT.format(question=question, response=response)}]


def pairwise_messages(question: str, a: str, b: str) -> list[Message]:
    """The pairwise prompt with ``a`` shown as Response A and ``b`` as Response B."""
    return [{"role": "user", "content": PAIRWISE_PROMPT.format(question=question, a=a, b=b)}]
