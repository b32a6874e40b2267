"""Turn a user's filter into a Milvus boolean expression, with every value escaped.

Values never reach the expression unescaped and field names come from a fixed table, so no input
can change the expression's structure (Milvus Lite crashes on some malformed expressions).
"""

from __future__ import annotations

import re

from qa_app.errors import FilterError
from qa_app.models import FILTER_FIELDS, TextFilter

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"\s*[\r\n\t]+\s*")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """Line breaks and tabs included: no Milvus string literal can carry them."""
    return bool(_ANY_CONTROL.search(value))


CORPUS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def check_corpus(name: str) -> str:
    """A corpus name, which also names its partition: a letter, then letters, digits or _ (64 at most)."""
    if not CORPUS_NAME.fullmatch(name):
        raise FilterError("corpus", f"corpus name {name[:80]!r} must start with a letter and hold only letters, "
                                    f"digits and _ (64 at most)")
    return name


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


# Where a value is cut for the server, which then matches the pieces in order with anything between:
# line breaks and tabs (no Milvus string can carry them), and \ % _ (Milvus 2.5 and Lite 3.x unescape
# them differently in `like`, and Lite 3.x's search ignores escaped ones). `matches` then checks the
# whole value exactly, so results are exact on every backend.
_LOOSE = re.compile(r"\s*[\r\n\t]+\s*|[\\%_]")


def like_parts(needle: str) -> list[str]:
    """The pieces of a value that the server matches, in order, with anything between them."""
    return [part for part in _LOOSE.split(needle) if part]


def like_clause(field: str, value: str) -> str | None:
    """`field like "%piece%piece%"`, or None when no piece is left to match."""
    parts = like_parts(value)
    return f"{field} like {string_literal('%' + '%'.join(parts) + '%')}" if parts else None


def build_expression(text_filter: TextFilter) -> str:
    """`field like "%...%"` clauses joined by `and`; empty when nothing restricts."""
    clauses = [like_clause(FILTER_FIELDS[key], value) for key, value in text_filter.values().items()]
    if text_filter.corpora:
        names = ", ".join(string_literal(check_corpus(c)) for c in text_filter.corpora)
        clauses.append(f"corpus in [{names}]")
    return " and ".join(c for c in clauses if c)


def needs_recheck(text_filter: TextFilter) -> bool:
    """True when the expression is looser than the filter (a value was cut into pieces)."""
    return any(like_parts(v) != [v] for v in text_filter.values().values())


def matches(text_filter: TextFilter, fields: dict[str, str]) -> bool:
    """Whether a row satisfies the filter exactly: line breaks and tabs in a value match any whitespace."""
    for key, value in text_filter.values().items():
        parts = [part for part in _LINE_BREAKS.split(value) if part]
        if not parts:
            continue
        if not re.search(r"\s+".join(re.escape(p) for p in parts), fields.get(FILTER_FIELDS[key], "")):
            return False
    return True
