"""Text under its heading path: the builder the text readers share."""

from __future__ import annotations

import re

from qa_app.models import Section


def clean_text(text: str) -> str:
    """Trailing spaces dropped, runs of blank lines made one, the ends trimmed."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class SectionBuilder:
    """Collects text under the current heading path."""

    def __init__(self) -> None:
        self.path: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.sections: list[Section] = []

    def heading(self, level: int, title: str) -> None:
        self.flush()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, title.strip()))

    def add(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        text = clean_text("\n".join(self.lines))
        if text:
            self.sections.append(Section(tuple(t for _, t in self.path), text))
        self.lines = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections
