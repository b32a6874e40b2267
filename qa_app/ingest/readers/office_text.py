"""What the Office readers share: table rows as lines of cells and long tables in blocks, list
markers and their numbering, and the document a reader returns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from qa_app.errors import ReadError
from qa_app.models import Document, Section

MAX_COLUMNS = 200  # cells a row
TABLE_BLOCK_CHARS = 500  # rows of a long table go in paragraphs of about this size, each with the header


def _document(source: str, title: str, sections: list[Section], kind: str, **extra: Any) -> list[Document]:
    if not any(s.text.strip() for s in sections):
        raise ReadError("no text found")
    return [Document(source, "", title, tuple(sections), format=kind.lower(), **extra)]


def table_blocks(rows: list[str], repeat_header: bool = True) -> list[str]:
    """Table rows (one line each) as paragraphs: the whole table when it is short, else blocks of about
    TABLE_BLOCK_CHARS, each after the first starting with the header row (when it is not itself long)."""
    rows = [r for r in rows if r.strip()]
    if not rows:
        return []
    if sum(len(r) + 1 for r in rows) <= TABLE_BLOCK_CHARS:
        return ["\n".join(rows)]
    header = rows[0] if repeat_header and len(rows[0]) <= TABLE_BLOCK_CHARS // 2 else None
    blocks: list[str] = []
    current = [rows[0]]
    size = len(rows[0])
    for row in rows[1:]:
        if size + 1 + len(row) > TABLE_BLOCK_CHARS and (len(current) > 1 or header is None):
            blocks.append("\n".join(current))
            current = [header] if header is not None else []
            size = len(header) if header is not None else 0
        current.append(row)
        size += 1 + len(row)
    blocks.append("\n".join(current))
    return blocks


def _row_line(cells: Iterable[str]) -> str:
    values = [re.sub(r"\s+", " ", c).strip() for c in cells]
    while values and not values[-1]:
        values.pop()
    return " | ".join(values)


def _marker(fmt: str, number: int) -> str:
    """A list item's marker: "- " for bullets, "3. ", "c. ", "iv. " for numbered formats."""
    if fmt in ("decimal", "decimalZero", "1"):
        return f"{number}. "
    if fmt in ("lowerLetter", "a"):
        return f"{_letters(number)}. "
    if fmt in ("upperLetter", "A"):
        return f"{_letters(number).upper()}. "
    if fmt in ("lowerRoman", "i"):
        return f"{_roman(number).lower()}. "
    if fmt in ("upperRoman", "I"):
        return f"{_roman(number)}. "
    if fmt in ("bullet", "none", ""):
        return "- "
    return f"{number}. "


def _letters(n: int) -> str:
    out = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        out = chr(ord("a") + r) + out
    return out or "a"


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                           (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += letters
            n -= value
    return out or str(n)


class _Counters:
    """Numbers of the items of numbered lists, by list and level (deeper levels restart)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def next(self, key: str, level: int, start: int) -> int:
        for other in [k for k in self.counts if k[0] == key and k[1] > level]:
            del self.counts[other]
        number = self.counts.get((key, level), start - 1) + 1
        self.counts[(key, level)] = number
        return number

    def reset(self, key: str) -> None:
        for other in [k for k in self.counts if k[0] == key]:
            del self.counts[other]


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default

