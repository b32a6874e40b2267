"""Citations in a generated answer: [n] markers mapped to the passages shown, numbers that name no
passage dropped."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qa_app.models import Passage

_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
# [2]  [1, 3]  [1-3]  [1–3; 5] not preceded by a word or ")" (so x[0] and f()[1] stay code)
_NUM = r"\d{1,6}(?:\s*[-–]\s*\d{1,6})?"
_CITE = re.compile(rf"(\s*)(?<![\w)])\[\s*({_NUM}(?:\s*[,;]\s*{_NUM})*)\s*\]")
_MAX_RANGE = 50


@dataclass(frozen=True)
class Citation:
    number: int
    passage_id: str
    rank: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        bounds = [int(x) for x in re.split(r"\s*[-–]\s*", part)]
        if len(bounds) == 2:
            a, b = bounds
            numbers.extend(range(a, b + 1) if a <= b and b - a <= _MAX_RANGE else (a, b))
        else:
            numbers.extend(bounds)
    return numbers


def cited_numbers(text: str) -> list[int]:
    """The passage numbers the [n] markers of `text` name, in order, each once (code spans skipped)."""
    numbers: list[int] = []
    for match in _CITE.finditer(_CODE.sub(" ", text)):
        numbers.extend(n for n in _numbers(match.group(2)) if n not in numbers)
    return numbers


def strip_markers(text: str) -> str:
    """`text` without its [n] markers (and the space before each)."""
    return _CITE.sub("", text)


def extract_citations(text: str, passages_used: Sequence[Passage],
                      ) -> tuple[str, list[dict[str, Any]], int]:
    """(clean text, citations in order of first mention, count of numbers that named no passage).

    A marker keeps only the numbers of shown passages (`[2, 9]` becomes `[2]` with 3 passages);
    a marker left with none is removed with the space before it. Code spans are left alone.
    """
    by_number = {i: p for i, p in enumerate(passages_used, 1)}
    cited: dict[int, Citation] = {}
    invalid = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal invalid
        valid: list[int] = []
        for n in _numbers(match.group(2)):
            if n in by_number:
                if n not in valid:
                    valid.append(n)
                if n not in cited:
                    cited[n] = Citation(n, by_number[n].id, by_number[n].rank)
            else:
                invalid += 1
        if not valid:
            return ""
        return match.group(1) + "[" + ", ".join(map(str, valid)) + "]"

    parts: list[str] = []
    last = 0
    for code in _CODE.finditer(text):
        parts.append(_CITE.sub(replace, text[last:code.start()]))
        parts.append(code.group(0))
        last = code.end()
    parts.append(_CITE.sub(replace, text[last:]))
    clean = "".join(parts)
    clean = re.sub(r"[ \t]+([.,;:!?])", r"\1", clean) if invalid else clean
    return clean.strip(), [c.as_dict() for c in cited.values()], invalid

