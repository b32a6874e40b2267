"""The prompt: numbered passages [1]..[n] and the question, kept within a token budget; and the
clean-up of what a weak model echoes back of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa_app.answer.llm_client import Message
from qa_app.models import Passage
from qa_app.settings import DEFAULTS


def rough_token_count(text: str) -> int:
    """About four characters a token for English; pass a real tokenizer's count where it matters."""
    return len(text) // 4 + 1


# No digits in brackets here: a weak model that echoes the instructions must not cite every passage.
INSTRUCTIONS = (
    "Answer the question using only the numbered passages. After each statement, cite the passage it "
    "comes from by its number in square brackets. If the passages do not contain the answer, say plainly "
    "that the documents do not answer the question. Do not use outside knowledge and do not guess."
)


# The system message: instruction-tuned models (Qwen2.5, Llama 3) follow rules there best. The rules are
# repeated just before the question as well, for chat formats that drop system messages (gemma's) and
# because small models weigh the end of a prompt most.
SYSTEM_MESSAGE = ("You answer questions about the user's documents from the numbered passages you are given, "
                  "briefly and exactly. " + INSTRUCTIONS)


# ASCII between headings in a prompt: small models split "›" into odd byte tokens.
PROMPT_HEADING_SEPARATOR = " > "


def _passage_block(number: int, passage: Passage, text: str | None = None) -> str:
    label = PROMPT_HEADING_SEPARATOR.join(p for p in (passage.title, *passage.headings) if p) \
        or passage.source or passage.id
    body = passage.text if text is None else text
    return f"[{number}] {label}\n{body.strip()}\n"


def _render(question: str, blocks: list[str]) -> str:
    # Passages first, question last: small models echo the start of a prompt and answer its end.
    passages = "\n".join(blocks) if blocks else "(no passages)\n"
    return f"Passages:\n\n{passages}\n{INSTRUCTIONS}\n\nQuestion: {question.strip()}"


def strip_echo(text: str) -> str:
    """Drop leading lines a weak model copied from the prompt (the instructions, "Question: ..." lines,
    an "Answer:" label) and whatever follows a later "Question:" line (the model inventing the next
    exchange), so they are neither shown as the answer nor parsed for citations."""
    lines = text.strip().splitlines()
    while lines:
        line = lines[0].strip()
        echoed = len(line) >= 20 and line in INSTRUCTIONS  # a short answer may be a substring by chance
        if not line or echoed or line.startswith(("Question:", "Passages:")):
            lines.pop(0)
        elif line.startswith("Answer:"):
            lines[0] = line[len("Answer:"):]
            break
        else:
            break
    for i, line in enumerate(lines[1:], 1):
        if line.lstrip().startswith("Question:"):
            lines = lines[:i]
            break
    return "\n".join(lines).strip()


def build_prompt(question: str, passages: Sequence[Passage],
                 max_context_tokens: int = DEFAULTS.llm_context_tokens,
                 count_tokens: Callable[[str], int] = rough_token_count,
                 ) -> tuple[list[Message], list[Passage]]:
    """A system message with the rules, then one user message with the passages, the rules again and the
    question; and the passages it shows.

    `passages` come best first; they are numbered [1]..[n] in that order. While the prompt is over
    `max_context_tokens`, the last (lowest-ranked) passage is dropped; a lone passage still too long
    is cut short rather than dropped, so the model always sees the best one.
    """
    used = list(passages)
    blocks = [_passage_block(i, p) for i, p in enumerate(used, 1)]
    budget = max_context_tokens - count_tokens(SYSTEM_MESSAGE)
    while len(used) > 1 and count_tokens(_render(question, blocks)) > budget:
        used.pop()
        blocks.pop()
    if used and count_tokens(_render(question, blocks)) > budget:
        text = used[0].text
        low, high = 0, len(text)  # longest prefix that fits, by bisection
        while low < high:
            mid = (low + high + 1) // 2
            if count_tokens(_render(question, [_passage_block(1, used[0], text[:mid] + " …")])) <= budget:
                low = mid
            else:
                high = mid - 1
        blocks = [_passage_block(1, used[0], text[:low] + " …")]
    return [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": _render(question, blocks)}], used
