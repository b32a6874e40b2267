"""What the PDF reader builds from a page: segments, lines and pages (PDF points, origin bottom-left)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Seg:
    """A run of a line's characters without a wide gap: a cell, a column's part, or the whole line."""

    x0: float
    x1: float
    text: str
    chars: list[tuple[int, str]] | None = None  # (PDFium's char index, char), for page_text_boxes


@dataclass(slots=True)
class _Line:
    page: int  # physical, 1-based
    x0: float
    x1: float
    base: float  # bottom of the line's first character box (PDF points, origin bottom-left)
    top: float
    size: float  # dominant font size
    bold: bool
    mono: bool
    segs: list[_Seg]
    text: str = ""  # normalized; cells joined by " | "
    kind: str = "body"  # body | row | code | heading | drop
    col_x0: float = 0.0
    col_x1: float = 0.0
    col: int = 0  # which column block of its page (reading order), for paragraph breaks
    wrapped: bool = False  # a code line that goes on the line before (Sphinx's "˓→" mark)
    space_end: bool = False  # ... and the line before ended with a visible space ("␣")
    ocr_par: tuple[int, int] | None = None  # OCRed: tesseract's (block, paragraph)
    cells: list[str] | None = None  # a code line with wide gaps: its parts, should it be a table row
    heading: tuple[int, str] | None = None  # kind "heading": (level, title)
    ends_hyphen: bool = False  # the line ended with a hyphen (a visible "-" or PDFium's hyphen mark)
    soft_hyphen: bool = False  # ... with a soft hyphen (U+00AD): always join without it


@dataclass(slots=True)
class _Page:
    number: int  # physical, 1-based
    label: str
    width: float
    height: float
    blocks: list[list[_Line]] = field(default_factory=list)
    ocred: bool = False
    no_text: bool = False
