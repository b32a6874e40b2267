"""The kept lines of a PDF into paragraphs and sections under the heading path, with a page mark where
each page begins: paragraphs from vertical gaps, first-line indents, short closing lines and font
changes; a paragraph cut by a page break is joined again (a page mark then points inside it)."""

from __future__ import annotations

import re
from collections import Counter
from statistics import median

from qa_app.ingest.readers.pdf_joins import _Joiner, _vocabulary
from qa_app.ingest.readers.pdf_model import _Line, _Page
from qa_app.ingest.readers.pdf_text import _BULLET
from qa_app.models import PageMark, Section

_NOTE_NUMBER = re.compile(r"^(?:\d{1,3}|[*\u2020\u2021])\s")  # a footnote's first line: its text hangs after it
_NOTE_START = re.compile(r"^(\d{1,3}|[*\u2020\u2021])(?=[A-Z][a-z])")
_CONTINUED = re.compile(r"^\(?(continues on next page|continued from previous page|continued on next page)\)?$",
                        re.IGNORECASE)


def _items(pages: list[_Page], body_size: float) -> list[_Line]:
    """The kept lines of all pages in reading order (and OCRed pages)."""
    items: list[_Line] = []
    for page in pages:
        for block in page.blocks:
            for ln in block:
                if ln.kind == "drop":
                    continue
                if ln.size < 0.95 * body_size and _NOTE_START.match(ln.text):
                    ln.text = _NOTE_START.sub(r"\1 ", ln.text, count=1)  # a footnote: "1Commands" -> "1 Commands"
                items.append(ln)
    return items


def _body_stats(pages: list[_Page]) -> tuple[float, float]:
    """The body font size (most characters) and the line pitch as a multiple of it."""
    sizes: Counter[float] = Counter()
    for page in pages:
        for block in page.blocks:
            for ln in block:
                sizes[round(ln.size, 1)] += len(ln.text)
    if not sizes:
        return 10.0, 1.2
    body = sizes.most_common(1)[0][0]
    return body, _line_pitch(pages, body)


def _line_pitch(pages: list[_Page], body: float) -> float:
    """The median distance between consecutive body lines, as a multiple of the body size."""
    pitches = []
    for page in pages:
        for block in page.blocks:
            for a, b in zip(block, block[1:], strict=False):
                if abs(a.size - body) < 0.3 and abs(b.size - body) < 0.3 and a.kind == b.kind == "body":
                    gap = a.base - b.base
                    if 0.8 * body < gap < 2.5 * body:
                        pitches.append(gap / body)
    return median(pitches) if pitches else 1.2


def _build_sections(pages: list[_Page], items: list[_Line], pitch: float) -> list[Section]:
    builder = _Builder(pages, pitch, _Joiner(*_vocabulary(items)))
    for item in items:
        if item.heading is not None:
            builder.heading(*item.heading)
        else:
            builder.add_line(item)
    builder.flush_section()
    return builder.sections


class _Builder:
    """Paragraphs into sections under the heading path, with a page mark where each page begins."""

    def __init__(self, pages: list[_Page], pitch: float, joiner: _Joiner) -> None:
        self.labels = {p.number: p.label for p in pages}
        self.pitch = pitch  # line pitch as a multiple of the font size
        self.joiner = joiner
        self.path: list[tuple[int, str]] = []
        self.sections: list[Section] = []
        self.paragraphs: list[str] = []
        self.sec_len = 0
        self.marks: list[PageMark] = []
        self.last_page = 0
        self.para: list[str] = []
        self.para_len = 0
        self.para_start = 0
        self.prev: _Line | None = None

    # sections -------------------------------------------------------------------------------------
    def heading(self, level: int, title: str) -> None:
        self.flush_section()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, title))

    def flush_section(self) -> None:
        self.end_paragraph()
        text = "\n\n".join(self.paragraphs)
        if text.strip():
            self.sections.append(Section(tuple(t for _, t in self.path), text, tuple(self.marks)))
        self.paragraphs = []
        self.sec_len = 0
        self.marks = []
        self.last_page = 0
        self.prev = None

    # paragraphs -----------------------------------------------------------------------------------
    def end_paragraph(self) -> None:
        if self.para:
            text = "".join(self.para)
            self.paragraphs.append(text)
            self.sec_len = self.para_start + len(text)
        self.para = []
        self.para_len = 0

    def _start_paragraph(self) -> None:
        self.end_paragraph()
        self.para_start = self.sec_len + (2 if self.paragraphs else 0)

    def _append(self, text: str, page: int, joiner: str) -> None:
        if not self.para:
            self._start_paragraph()
            joiner = ""
        if joiner == "-strip":  # drop the hyphen at the end of the paragraph so far
            self.para[-1] = self.para[-1][:-1]
            self.para_len -= 1
            joiner = ""
        if joiner:
            self.para.append(joiner)
            self.para_len += len(joiner)
        if page != self.last_page:
            offset = self.para_start + self.para_len
            self.marks.append(PageMark(0 if not self.marks else offset, page, self.labels.get(page, "")))
            self.last_page = page
        self.para.append(text)
        self.para_len += len(text)

    def add_line(self, ln: _Line) -> None:
        prev = self.prev
        text = ln.text
        if ln.kind == "code" and prev is not None and prev.kind == "code" and ln.wrapped:
            self._append(text, ln.page, " " if prev.space_end else "")  # a code line wrapped by Sphinx: one again
            self.prev = ln
            return
        if _CONTINUED.match(text):  # "(continues on next page)" under a code block cut by a page break
            return
        if ln.kind == "code" and prev is not None and prev.kind == "body" and self._inline_code(prev, ln):
            ln.kind = "body"  # a word in a typewriter font that happens to fill a line of its own
        if prev is None or self._breaks(prev, ln):
            self._start_paragraph()
            self._append(text, ln.page, "")
        else:
            if ln.kind in ("code", "row"):
                joiner = "\n"
            else:
                joiner = self.joiner.joiner_for("".join(self.para[-3:]), text, soft=prev.soft_hyphen, code=prev.mono)
            self._append(text, ln.page, joiner)
        self.prev = ln

    @staticmethod
    def _inline_code(prev: _Line, ln: _Line) -> bool:
        """Is the code line `ln` the end of a sentence that `prev` (a full line of prose) began?"""
        return (ln.page == prev.page and ln.col == prev.col and len(ln.text.split()) <= 3
                and not prev.text.endswith((".", "!", "?", ":")) and prev.x1 >= prev.col_x1 - 2 * prev.size
                and ln.x0 <= prev.col_x0 + 0.5 * ln.size and 0 < prev.base - ln.base < 1.45 * 1.3 * prev.size)

    def _breaks(self, prev: _Line, ln: _Line) -> bool:
        """Does `ln` start a new paragraph after `prev`?"""
        if ln.kind != prev.kind:
            return True
        if abs(ln.size - prev.size) > 0.12 * prev.size:
            return True
        same_flow = ln.page == prev.page and ln.col == prev.col
        if same_flow and ln.ocr_par is not None and prev.ocr_par is not None:
            return ln.ocr_par != prev.ocr_par  # tesseract found the paragraphs
        if ln.kind == "row":
            return same_flow and prev.base - ln.base > 2.6 * self.pitch * ln.size
        if ln.kind == "code":
            return same_flow and prev.base - ln.base > 2.2 * self.pitch * ln.size
        if _BULLET.match(ln.text):
            return True
        return self._prose_breaks(prev, ln, same_flow)

    def _prose_breaks(self, prev: _Line, ln: _Line, same_flow: bool) -> bool:
        """Does the prose line `ln` start a new paragraph after `prev` (of the same kind and size)?"""
        indent = 0.7 * ln.size
        if not same_flow:
            # a page or column break: the paragraph goes on unless it ended or the next one is indented
            if prev.text.endswith((".", "!", "?", ":")) and not prev.ends_hyphen:
                return True
            return ln.x0 > ln.col_x0 + indent
        gap = prev.base - ln.base
        if gap > 1.45 * self.pitch * max(ln.size, prev.size) or gap < -0.5 * ln.size:
            return True
        if ln.x0 > prev.x0 + indent:  # indented: a new paragraph, unless the second line of a list item
            return not ((_BULLET.match(prev.text) or _NOTE_NUMBER.match(prev.text)) and ln.x0 < prev.x0 + 4 * ln.size)
        return prev.text.endswith((".", "!", "?", ":")) and prev.x1 < prev.col_x1 - 3 * prev.size
