"""A question as the search runs it, read and checked from JSON or form values; and its result."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qa_app.errors import BadRequest, FilterError
from qa_app.models import FILTER_FIELDS, Passage, TextFilter
from qa_app.search.followup import Turn, parse_history
from qa_app.settings import Settings
from qa_app.store.expressions import check_corpus, check_value

MODES = ("hybrid", "dense", "sparse")
QUERY_FIELDS = ("question", "q", "top_k", "mode", "filter", "answer", "history")


@dataclass(frozen=True)
class Query:
    question: str
    top_k: int = 5
    mode: str = "hybrid"
    filter: TextFilter = field(default_factory=TextFilter)
    history: tuple[Turn, ...] = ()  # earlier turns of the conversation, oldest first
    standalone: str = ""  # a follow-up made a standalone question from the history: what is searched

    @property
    def searched(self) -> str:
        """The text the retrievers search for."""
        return self.standalone or self.question


@dataclass(frozen=True)
class SearchResult:
    query: Query
    passages: list[Passage]
    timings_ms: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        rewritten = self.query.searched if self.query.searched != self.query.question else None
        return {
            "question": self.query.question,
            "searched_question": rewritten,
            "mode": self.query.mode,
            "top_k": self.query.top_k,
            "filter": self.query.filter.as_dict(),
            "passages": [p.as_dict() for p in self.passages],
            "timings_ms": self.timings_ms,
        }


def parse_answer_flag(data: Mapping[str, Any]) -> bool:
    value = data.get("answer", False)
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no", ""):
        return value.lower() in ("1", "true", "yes")
    if not isinstance(value, bool):
        raise BadRequest("'answer' must be true or false", field="answer")
    return value


def parse_query(data: Mapping[str, Any], settings: Settings) -> Query:
    """A Query from JSON or form values; BadRequest names the first field that is wrong."""
    unknown = sorted(set(data) - set(QUERY_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; expected question, top_k, mode, filter, answer, history",
                         field=unknown[0])
    question = data.get("question", data.get("q"))
    if not isinstance(question, str):
        raise BadRequest("'question' is required and must be a string", field="question")
    question = question.strip()
    if not question:
        raise BadRequest("'question' is empty", field="question")
    if len(question) > settings.max_question_chars:
        raise BadRequest(f"'question' is longer than {settings.max_question_chars} characters", field="question")
    top_k = data.get("top_k", settings.top_k)
    if isinstance(top_k, str) and re.fullmatch(r"[0-9]{1,6}", top_k.strip()):
        top_k = int(top_k.strip())  # str.strip drops more kinds of space than int() accepts (\x1f)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= settings.max_top_k:
        raise BadRequest(f"'top_k' must be a whole number from 1 to {settings.max_top_k}", field="top_k")
    mode = data.get("mode") or "hybrid"
    if mode == "keyword":
        mode = "sparse"
    if mode not in MODES:
        raise BadRequest(f"'mode' must be one of {', '.join(MODES)}", field="mode")
    return Query(question, top_k, mode, parse_filter(data.get("filter") or {}, settings),
                 parse_history(data.get("history")))


def parse_filter(raw: Any, settings: Settings) -> TextFilter:
    if not isinstance(raw, Mapping):
        raise BadRequest("'filter' must be an object with contains, source or title", field="filter")
    values: dict[str, str] = {}
    corpora: tuple[str, ...] = ()
    for key, value in raw.items():
        if key == "corpus":
            corpora = parse_corpora(value)
            continue
        if key not in FILTER_FIELDS:
            raise BadRequest(f"unknown filter {key!r}; expected one of {', '.join([*FILTER_FIELDS, 'corpus'])}",
                             field=key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f"filter {key!r} must be a string", field=key)
        values[key] = check_value(key, value, settings.max_filter_chars)
    return TextFilter(**values, corpora=corpora)


def parse_corpora(value: Any) -> tuple[str, ...]:
    """One corpus name, a comma-separated list, or a JSON list of names."""
    if value is None or value == "":
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) > 50:
        raise BadRequest("filter 'corpus' must be a corpus name or a list of at most 50 names", field="corpus")
    try:
        return tuple(dict.fromkeys(check_corpus(n.strip()) for n in names if n.strip()))
    except FilterError as exc:
        raise BadRequest(exc.message, field="corpus") from None
