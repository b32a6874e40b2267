"""Follow-up questions: "and for a dict?" means nothing alone. Before retrieval a follow-up is made a
standalone question from the conversation so far; this module is the deterministic way (no model)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qa_app.errors import BadRequest

MAX_TURNS = 6  # earlier turns a request may carry; the rewrite reads the last ones
MAX_TURN_CHARS = 2000
# Openings that lean on what came before: "and for a dict?", "what about X", "how about Y".
_LEANING_START = re.compile(r"^\s*(and|also|but|or|what about|how about|same for|then|so)\b[\s,]*", re.IGNORECASE)
_REFERRING = re.compile(r"\b(it|its|it's|that|this|those|these|they|them|their|there|one|ones|same)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9_.]+")
_LITTLE_WORDS = frozenset(
    "a an the and or but of for to in on at by with from as is are was were be do does did how what why when "
    "where which who can could should would will i you we my your it its this that these those about".split())


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of the conversation."""

    question: str
    answer: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer}


def parse_history(raw: Any) -> tuple[Turn, ...]:
    """`history: [{"question", "answer"?}, ...]`, oldest first; BadRequest names what is wrong."""
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list) or len(raw) > 50:
        raise BadRequest("'history' must be a list of at most 50 {\"question\", \"answer\"} objects", field="history")
    turns = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("question"), str) \
                or not isinstance(item.get("answer", ""), str) or set(item) - {"question", "answer"}:
            raise BadRequest("each 'history' item must be {\"question\": str, \"answer\": str}", field="history")
        question, answer = item["question"].strip(), str(item.get("answer", "")).strip()
        if len(question) > MAX_TURN_CHARS or len(answer) > 4 * MAX_TURN_CHARS:
            raise BadRequest(f"a 'history' question is longer than {MAX_TURN_CHARS} characters", field="history")
        if question:
            turns.append(Turn(question, answer))
    return tuple(turns[-MAX_TURNS:])


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _LITTLE_WORDS and len(w) > 1]


def leans_on_context(question: str) -> bool:
    """Whether a question reads as a follow-up: it opens like one, or it is short and refers back."""
    if _LEANING_START.match(question):
        return True
    words = content_words(question)
    return len(words) <= 3 and bool(_REFERRING.search(question)) or len(words) <= 1


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """The question with what it leans on from the last turn: "and for a dict?" after "how do I sort a
    list by a key?" becomes "for a dict? (how do I sort a list by a key?)". A question that stands
    alone, or one with no history, is returned as it is."""
    if not history or not leans_on_context(question):
        return question
    own = _LEANING_START.sub("", question).strip() or question.strip()
    return f"{own} ({history[-1].question.strip()})"
