"""A follow-up question rewritten into a standalone one by the language model, before retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing

from qa_app.answer.llm_client import LLMClient, Message
from qa_app.errors import LLMError

REWRITE_MAX_TOKENS = 64
REWRITE_INSTRUCTIONS = (
    "Rewrite the user's last question so that it can be understood without the conversation: replace words "
    "like 'it', 'that' or 'and for ...' with what they refer to. Keep the user's own words where possible. "
    "Reply with the rewritten question only, on one line, without an answer.")


def rewrite_messages(question: str, turns: Sequence[tuple[str, str]]) -> list[Message]:
    """A system message with the instructions, then the conversation, then the question to rewrite."""
    lines = []
    for earlier, answer in turns:
        lines.append(f"User: {earlier}")
        if answer:
            lines.append(f"Assistant: {answer[:600]}")
    conversation = "\n".join(lines)
    return [{"role": "system", "content": REWRITE_INSTRUCTIONS},
            {"role": "user", "content": f"Conversation:\n{conversation}\n\nLast question: {question}\n\n"
                                        f"{REWRITE_INSTRUCTIONS}"}]


def clean_rewrite(text: str, question: str) -> str | None:
    """The model's question, or None when what it wrote is not a usable question (empty, several
    lines of answer, far longer than a question)."""
    first = next((line.strip() for line in text.strip().splitlines() if line.strip()), "")
    for label in ("Rewritten question:", "Question:", "Standalone question:"):
        if first.lower().startswith(label.lower()):
            first = first[len(label):].strip()
    first = first.strip("\"'` ")
    if not first or len(first) > max(300, 4 * len(question)):
        return None
    return first


async def rewrite_with_llm(client: LLMClient, question: str, turns: Sequence[tuple[str, str]],
                           temperature: float = 0.0) -> str | None:
    """The standalone question as the model writes it, or None when it fails or writes no question."""
    pieces: list[str] = []
    try:
        async with aclosing(client.stream_chat(rewrite_messages(question, turns), max_tokens=REWRITE_MAX_TOKENS,
                                               temperature=temperature)) as deltas:
            async for delta in deltas:
                pieces.append(delta)
    except LLMError:
        return None
    return clean_rewrite("".join(pieces), question)
