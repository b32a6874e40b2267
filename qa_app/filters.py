"""Turn a user's filter into a Milvus boolean expression, with every value escaped.

Values never reach the expression unescaped and field names come from a fixed table, so no input
can change the expression's structure (Milvus Lite crashes on some malformed expressions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# filter key -> the VARCHAR field it searches (substring match).
FILTER_FIELDS = {"contains": "text", "source": "source", "title": "title"}

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"\s*[\r\n\t]+\s*")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """Line breaks and tabs included: no Milvus string literal can carry them."""
    return bool(_ANY_CONTROL.search(value))


class FilterError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TextFilter:
    contains: str = ""
    source: str = ""
    title: str = ""

    def values(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in FILTER_FIELDS if getattr(self, key)}

    def is_empty(self) -> bool:
        return not self.values()


def check_value(field: str, value: str, max_chars: int) -> str:
    """The value to search for, or FilterError naming what is wrong with it."""
    if len(value) > max_chars:
        raise FilterError(field, f"filter {field!r} is longer than {max_chars} characters")
    if _CONTROL.search(value):
        raise FilterError(field, f"filter {field!r} contains control characters")
    return value


def string_literal(value: str) -> str:
    """A quoted Milvus string; control characters cannot be expressed in one (STACK.md), so they raise."""
    if has_control_characters(value):
        raise ValueError(f"cannot put control characters in a Milvus string: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def like_pattern(needle: str) -> str:
    """A `like` pattern matching `needle` anywhere; the backslash is escaped first, then % and _."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped + "%"


def like_parts(needle: str) -> list[str]:
    """The needle split at line breaks and tabs, which a Milvus expression cannot carry."""
    return [part for part in _LINE_BREAKS.split(needle) if part]


def build_expression(text_filter: TextFilter) -> str:
    """`field like "%...%"` clauses joined by `and`; empty when nothing restricts."""
    clauses = []
    for key, value in text_filter.values().items():
        parts = like_parts(value)
        if not parts:
            continue
        # Parts joined by % must appear in order; `matches` then checks the exact spacing.
        pattern = "%".join(like_pattern(p)[1:-1] for p in parts)
        clauses.append(f"{FILTER_FIELDS[key]} like {string_literal('%' + pattern + '%')}")
    return " and ".join(clauses)


def needs_recheck(text_filter: TextFilter) -> bool:
    """True when the expression is looser than the filter (a value had line breaks)."""
    return any(len(like_parts(v)) > 1 or like_parts(v) != [v] for v in text_filter.values().values())


def matches(text_filter: TextFilter, fields: dict[str, str]) -> bool:
    """Whether a row satisfies the filter exactly: line breaks and tabs in a value match any whitespace."""
    for key, value in text_filter.values().items():
        parts = like_parts(value)
        if not parts:
            continue
        pattern = r"\s+".join(re.escape(p) for p in parts) if len(parts) > 1 else re.escape(parts[0])
        if not re.search(pattern, fields.get(FILTER_FIELDS[key], "")):
            return False
    return True
