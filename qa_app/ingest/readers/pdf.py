"""Read a PDF into one document: sections under their heading path, each knowing the physical pages
(and printed page labels) its text comes from.

PDFium (pypdfium2) gives every character with its box, baseline, font size and font. From those this
module rebuilds what a person reads:

- lines from character positions, segments of a line where a wide gap cuts it (table cells, columns);
- reading order by XY-cut: a gutter between columns of prose splits a block into columns, read left to
  right, each top to bottom; otherwise empty horizontal bands split it into blocks, top to bottom;
- tables: lines with several segments become one row, cells joined by " | " (code keeps its spacing);
- running headers and footers: lines in the top or bottom band at a position shared by many pages that
  repeat (digits aside) or carry the page's number, and lines that are only a page number;
- paragraphs from vertical gaps, first-line indents, short closing lines and font changes; a paragraph
  cut by a page break is joined again (a page mark then points inside it);
- words hyphenated at a line end joined when the document knows the joined word (or the halves are no
  words of their own), identifiers cut after `_` or `-` joined without a space;
- footnote markers (smaller, raised digits after a word) dropped, exponents after a single letter kept
  as `^2`; NFKC (ligatures, math letters, odd spaces), ASCII quotes;
- headings from the outline (bookmarks) placed on the line that carries them, else from font size
  (and bold body-size lines standing alone);
- artifacts dropped: dot leaders, "(continues on next page)", Sphinx's "˓→" marks and \\spxentry,
  glyphs of music and symbol fonts;
- pages without a text layer OCRed with the `tesseract` binary when it is installed, else reported.

`page_text_boxes` and `render_page` serve a page view: where a passage lies on a page, and the page as
a PNG.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import re
import shutil
import struct
import subprocess
import threading
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, TypeVar, cast

from qa_app.errors import ReadError
from qa_app.models import Document, PageMark, Section

try:  # an optional dependency: without it PDFs cannot be read, everything else works
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
except ImportError:  # pragma: no cover - exercised only where the package is missing
    pdfium = None
    pdfium_c = None

MAX_PAGES = 5000  # more pages than this: refused as hostile (or not a document to answer questions from)
MAX_PAGE_CHARS = 2_000_000  # characters on one page (~2 MB of text): refused as hostile
OCR_DPI = 300
OCR_TIMEOUT_S = 120.0  # one page through tesseract
OCR_LANGUAGE = "eng"
_LOCK = threading.RLock()  # PDFium is not thread-safe: every use of it holds this lock
HEADER_FOOTER_BAND = 0.12  # top and bottom share of the page where running headers and footers live

Progress = Callable[[int, int], None]

# ---------------------------------------------------------------------------------------------------
# Text normalization

_TRANSLATE = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2212": "-",  # minus sign
    "\u00ad": "",  # soft hyphen inside a line
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "",
    "\u02d3": "", "\u2423": " ",  # Sphinx's marks of a wrapped code line: "␣" at the end, "˓→" below
})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# dot leaders of a table of contents or an index: ". . . ." or "....." (not R's "...")
_LEADERS = re.compile(r"\s*(?:\.\s){3,}\.?\s*|\s*\.{5,}\s*|\s\.(?:\s?\.)+\s+(?=\S+$)")
_SPHINX_MACRO = re.compile(r"\\spx[a-z]+")  # Sphinx index entries leak \spxentry into the text layer
_COPYRIGHT = re.compile(r"\bCopyright c(?=\s*\d)")  # TeX draws © as a c in a circle
_CONTINUED = re.compile(r"^\(?(continues on next page|continued from previous page|continued on next page)\)?$",
                        re.IGNORECASE)


def normalize(text: str) -> str:
    """The text as the reader emits it: NFKC, ASCII quotes, one space for any run of spaces."""
    text = unicodedata.normalize("NFKC", text.translate(_TRANSLATE))
    text = text.replace("\u2192", "->") if "\u2192" in text else text
    text = _CONTROL.sub("", text)
    return _SPACES.sub(" ", text)


def _clean_line(text: str) -> str:
    text = _SPHINX_MACRO.sub("", text) if "\\spx" in text else text
    if "Copyright c" in text:
        text = _COPYRIGHT.sub("Copyright \u00a9", text)
    return text.strip()


# ---------------------------------------------------------------------------------------------------
# Characters -> lines


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


_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi|cmbx|cmb\d|bx\d|-b$|,b$", re.IGNORECASE)
_MONO_NAME = re.compile(r"mono|courier|cmtt|typewriter|consol|menlo|tt\d*$|code", re.IGNORECASE)
# fonts whose glyphs are no text: music notation, dingbats, decorations (LilyPond's manuals draw notes)
_NO_TEXT_FONT = re.compile(r"emmentaler|feta|bravura|petaluma|music|lcircle|dingbat|zapf ?ding|wingding|webding|"
                           r"marvosym|fontawesome", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[\u2022\u25e6\u25aa\u25cf\u2023\u2043\u2219*\u2013\u2014-]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")


class _C:
    """PDFium's per-character calls with plain pointer arguments: ctypes' type checks on every call
    cost more than the calls themselves."""

    def __init__(self) -> None:
        void, cint = ctypes.c_void_p, ctypes.c_int

        def proto(function: Any, restype: Any, *argtypes: Any) -> Any:
            return ctypes.CFUNCTYPE(restype, *argtypes)(ctypes.cast(function, void).value or 0)

        self.unicode = proto(pdfium_c.FPDFText_GetUnicode, ctypes.c_uint, void, cint)
        self.loose_box = proto(pdfium_c.FPDFText_GetLooseCharBox, cint, void, cint, void)
        self.font_size = proto(pdfium_c.FPDFText_GetFontSize, ctypes.c_double, void, cint)
        self.text_object = proto(pdfium_c.FPDFText_GetTextObject, void, void, cint)
        self.is_generated = proto(pdfium_c.FPDFText_IsGenerated, cint, void, cint)


_CALLS: _C | None = None


def _calls() -> _C:
    global _CALLS
    if _CALLS is None:
        _CALLS = _C()
    return _CALLS


class _FontCache:
    """bold / monospace of a character's font, asked once per text object."""

    def __init__(self) -> None:
        self.by_obj: dict[int, tuple[bool, bool, bool]] = {}
        self.buffer = ctypes.create_string_buffer(256)
        self.flags = ctypes.c_int()

    def style(self, textpage: Any, handle: int, index: int) -> tuple[bool, bool, bool]:
        """(bold, monospace, a font of symbols that are no text)"""
        key = _calls().text_object(handle, index) or 0
        style = self.by_obj.get(key)
        if style is None:
            pdfium_c.FPDFText_GetFontInfo(textpage, index, self.buffer, 256, self.flags)
            name = self.buffer.value.decode("latin-1").split("+")[-1]
            weight = pdfium_c.FPDFText_GetFontWeight(textpage, index)
            flags = self.flags.value
            bold = weight >= 600 or bool(flags & (1 << 18)) or bool(_BOLD_NAME.search(name))
            mono = bool(flags & 1) or bool(_MONO_NAME.search(name))
            style = self.by_obj[key] = (bold, mono, bool(_NO_TEXT_FONT.search(name)))
        return style


_SPACE_CODES = frozenset((32, 9, 0xA0))


def _page_lines(textpage: Any, page_no: int, fonts: _FontCache, keep_chars: bool = False) -> list[_Line]:
    """The page's lines in content order, built from character geometry (PDFium's own line breaks
    are ignored: they also break at a raised footnote mark or a circled ©).

    Per character one box; the font (size, bold, monospace) is asked at the start of each word and
    for digits (footnote marks). With `keep_chars`, each segment also lists its characters with their
    PDFium index, to find where a passage lies on the page."""
    count = pdfium_c.FPDFText_CountChars(textpage)
    if count > MAX_PAGE_CHARS:
        raise ReadError(f"page {page_no} has {count:,} characters (more than {MAX_PAGE_CHARS:,}): refused")
    lines: list[_Line] = []
    seg_chars: list[tuple[int, str]] = []
    if count <= 0:
        return lines
    calls = _calls()
    handle = ctypes.cast(textpage, ctypes.c_void_p).value or 0
    get_unicode = calls.unicode  # (FPDFText_GetText skips some control characters: its units do not align)
    loose_box, font_size, is_generated = calls.loose_box, calls.font_size, calls.is_generated
    rect = (ctypes.c_float * 4)()  # FS_RECTF: left, top, right, bottom
    rect_at = ctypes.addressof(rect)

    parts: list[str] = []  # text of the segment being built
    segs: list[_Seg] = []
    seg_start = 0.0
    line_base = line_size = line_top = line_x0 = prev_x1 = 0.0
    sizes: dict[float, int] = {}
    bold_n = mono_n = n_chars = 0
    pending_space = generated_space = False
    word_start = True  # the next character starts a word: ask its font
    size, size_key, bold, mono, symbols = 10.0, 10.0, False, False, False
    prev_height = 1.0  # the loose box height of the last character whose font was asked
    prev_char = ""
    sup: list[str] = []  # a raised, smaller run of digits after a word (a footnote mark or exponent)
    sup_after = ""
    hyphen_mark = False
    high = 0  # the first half of a surrogate pair
    broken = False  # the last glyph was a figure's (so a hyphen mark after it is none)

    def flush_sup() -> None:
        if len(sup_after) == 1 or sup_after.isdigit() or sup_after[-1:] in ")]":
            parts.append("^" + "".join(sup))  # an exponent: x^2
        sup.clear()  # else a footnote mark after a word: dropped

    def end_line() -> None:
        if sup:
            flush_sup()
        text = "".join(parts)
        if text.strip():
            segs.append(_Seg(seg_start, prev_x1, text, seg_chars.copy() if keep_chars else None))
        seg_chars.clear()
        if segs:
            main = max(sizes, key=lambda key: sizes[key]) if sizes else line_size
            line = _Line(page_no, segs[0].x0, segs[-1].x1, line_base, line_top, main,
                         bold_n >= 0.8 * n_chars, mono_n >= 0.8 * n_chars, segs.copy(), ends_hyphen=hyphen_mark)
            lines.append(line)

    i = -1
    while i + 1 < count:
        i += 1
        code = get_unicode(handle, i)
        if code == 13 or code == 10:
            word_start = True
            continue
        if code in _SPACE_CODES:
            if is_generated(handle, i):
                generated_space = True  # PDFium saw a gap: a space if the gap is not tiny
            else:
                pending_space = True
            word_start = True
            continue
        if code == 0xFFFE or code == 2:  # PDFium's mark of a hyphen at a line end (or a glyph without text)
            if parts and not broken and prev_char.isalnum():
                parts.append("-")
                prev_char = "-"
                hyphen_mark = True
                if keep_chars:
                    seg_chars.append((i, "-"))
            continue
        if 0xD800 <= code < 0xE000:  # a character beyond the BMP comes as two UTF-16 halves
            if code < 0xDC00:
                high = code
                continue
            if not high:
                continue
            ch = chr(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00))
            high = 0
        else:
            ch = chr(code)
        loose_box(handle, i, rect_at)
        x0, top, x1, bottom = rect
        if x1 < x0:
            x0, x1 = x1, x0
        digit = "0" <= ch <= "9"
        height = top - bottom
        if word_start or digit or not (parts or segs) or abs(height - prev_height) > 0.1 * prev_height:
            prev_height = height
            size = font_size(handle, i) or (top - bottom) or 1.0
            size_key = round(size, 1)
            bold, mono, symbols = fonts.style(textpage, handle, i)
            word_start = False
        if symbols:  # a glyph of a figure (music, dingbats): no text
            word_start = broken = True
            continue
        base = bottom
        if parts or segs:
            if n_chars <= 3 and size > 1.15 * line_size and not segs and base < line_base \
                    and line_base - 0.8 * size < base and x0 > prev_x1 - 1:
                # a line that began with a small raised mark (a footnote's number): its text follows
                line_base, line_size = base, size
                pending_space = True
            # the same line while the character's bottom stays within the line's band
            if not (line_base - 0.45 * line_size < base < line_base + 0.8 * line_size) or x1 < line_x0 - line_size:
                end_line()
                parts.clear()
                segs.clear()
                sizes = {}
                bold_n = mono_n = n_chars = 0
                hyphen_mark = False
                pending_space = False
            else:
                if hyphen_mark:  # a hyphen mark in mid-line: a real hyphen after all
                    hyphen_mark = False
                gap = x0 - prev_x1
                if gap > 1.4 * line_size and prev_char:  # a wide gap: a new cell or column
                    if sup:
                        flush_sup()
                    text = "".join(parts)
                    if text.strip():
                        segs.append(_Seg(seg_start, prev_x1, text, seg_chars.copy() if keep_chars else None))
                    seg_chars.clear()
                    parts.clear()
                    seg_start = x0
                elif prev_char and (pending_space or gap > (0.08 if generated_space else 0.18)
                                    * (line_size if line_size < size else size)):
                    if sup:
                        flush_sup()
                    parts.append(" ")
                    prev_char = " "
        broken = False
        if not (parts or segs):  # the first character of a line
            line_base, line_size, line_top, line_x0 = base, size, top, x0
            seg_start = prev_x1 = x0
            prev_char = ""
        pending_space = generated_space = False
        if digit and size < 0.85 * line_size and base > line_base + 0.2 * line_size and \
                (sup or (prev_char and prev_char != " ")):
            if not sup:  # the word it follows decides: exponent or footnote mark
                tail = "".join(parts[-12:])
                sup_after = tail.rsplit(" ", 1)[-1]
            sup.append(ch)
        else:
            if sup:
                flush_sup()
            parts.append(ch)
            if code == 0xAD:
                hyphen_mark = True
            if base < line_base + 0.2 * line_size or size >= 0.85 * line_size:
                sizes[size_key] = sizes.get(size_key, 0) + 1
        if keep_chars:
            seg_chars.append((i, ch))
        bold_n += bold
        mono_n += mono
        n_chars += 1
        if top > line_top:
            line_top = top
        if x1 > prev_x1:
            prev_x1 = x1
        prev_char = ch
    if parts or segs:
        end_line()
    return lines


# ---------------------------------------------------------------------------------------------------
# Layout: columns, reading order, table rows


def _finish_line(line: _Line) -> None:
    """The line's text from its segments: cells of a row joined by " | ", code keeps its spacing."""
    texts: list[str] = []
    gaps: list[float] = []
    leaders = False
    prev_x1 = None
    first = line.segs[0].text.lstrip()
    if first.startswith("\u02d3"):  # Sphinx: this code line goes on the one before
        line.wrapped = True
        line.segs[0].text = first.lstrip("\u02d3").lstrip().removeprefix("\u2192")
    if line.segs[-1].text.rstrip().endswith("\u2423"):
        line.space_end = True
    for seg in line.segs:
        raw = seg.text
        if raw.endswith("\u00ad"):
            line.soft_hyphen = True
        text = normalize(raw)
        if ". ." in text or "...." in text or " .." in text:
            pieces = _LEADERS.split(text)  # an entry and its page: two cells
            leaders = leaders or len(pieces) > 1
        else:
            pieces = [text]
        for n, piece in enumerate(pieces):
            piece = _clean_line(piece)
            if piece:
                gaps.append(seg.x0 - prev_x1 if prev_x1 is not None and n == 0 else -1.0)
                texts.append(piece)
        prev_x1 = seg.x1
    if not texts:
        line.text = ""
    elif len(texts) == 1:
        line.text = texts[0]
    elif line.mono and not leaders:  # aligned code: the gap as spaces (a row if its neighbours are rows)
        line.cells = texts
        out = texts[0]
        for gap, text in zip(gaps[1:], texts[1:], strict=True):
            out += " " * (min(12, max(2, round(gap / (0.6 * line.size)))) if gap > 0 else 1) + text
        line.text = out
    else:
        line.text = " | ".join(texts)
        line.kind = "row"
    if line.kind == "body" and line.mono:
        line.kind = "code"
    if line.soft_hyphen or line.text.endswith("-"):
        line.ends_hyphen = True


def _split_segments(lines: list[_Line]) -> list[_Line]:
    """Each segment as its own line (for column analysis)."""
    out = []
    for line in lines:
        if len(line.segs) == 1:
            out.append(line)
            continue
        for seg in line.segs:
            out.append(_Line(line.page, seg.x0, seg.x1, line.base, line.top, line.size, line.bold, line.mono,
                             [seg], ends_hyphen=line.ends_hyphen and seg is line.segs[-1]))
    return out


def _find_gutter(parts: list[_Line], left: float, right: float) -> float | None:
    """x of a vertical gap between two columns of prose within [left, right], or None."""
    width = right - left
    if len(parts) < 8 or width < 100:
        return None
    bins = int(width // 2) + 1
    cover = [0] * bins
    for p in parts:
        a = max(0, int((p.x0 - left) // 2))
        b = min(bins - 1, int((p.x1 - left) // 2))
        for k in range(a, b + 1):
            cover[k] += 1
    limit = len(parts) // 30
    best = None
    k = int(bins * 0.2)
    stop = int(bins * 0.8)
    while k < stop:
        if cover[k] <= limit:
            j = k
            while j < bins and cover[j] <= limit:
                j += 1
            if (j - k) * 2 >= 8 and (best is None or j - k > best[1] - best[0]):
                best = (k, j)
            k = j
        else:
            k += 1
    if best is None:
        return None
    g0 = left + best[0] * 2
    g1 = left + best[1] * 2
    lefts = [p for p in parts if p.x1 <= g0 + 2]
    rights = [p for p in parts if p.x0 >= g1 - 2]
    if len(lefts) < 0.25 * len(parts) or len(rights) < 0.25 * len(parts):
        return None
    # prose fills its column: most segments are about as wide as the column and hold words, where
    # table cells are narrow or short
    for side, x_start, x_end in ((lefts, left, g0), (rights, g1, right)):
        widths = sorted(p.x1 - p.x0 for p in side)
        if widths[len(widths) // 2] < 0.6 * (x_end - x_start):
            return None
        if sum(len(p.segs[0].text) for p in side) < 12 * len(side):
            return None
    return (g0 + g1) / 2


def _group_lines(parts: list[_Line]) -> list[_Line]:
    """Segments of one flow back into lines (same baseline), top to bottom."""
    parts = sorted(parts, key=lambda p: (-p.base, p.x0))
    out: list[_Line] = []
    for p in parts:
        last = out[-1] if out else None
        if last is not None and abs(last.base - p.base) < 0.4 * max(last.size, p.size) and p.x0 > last.x1 - 1:
            last.segs.extend(p.segs)
            last.x1 = p.x1
            last.ends_hyphen = p.ends_hyphen
            last.bold = last.bold and p.bold
            last.mono = last.mono and p.mono
            last.top = max(last.top, p.top)
        else:
            out.append(_Line(p.page, p.x0, p.x1, p.base, p.top, p.size, p.bold, p.mono, list(p.segs),
                             ends_hyphen=p.ends_hyphen, soft_hyphen=p.soft_hyphen))
    return out


def _xy_cut(parts: list[_Line], depth: int = 0) -> list[list[_Line]]:
    """Flows of segments in reading order, by recursive XY-cut: a gutter between columns of prose
    splits a block into columns (separate flows, left to right); else empty horizontal bands split
    it into blocks top to bottom (one flow where they are plain text)."""
    if len(parts) < 2 or depth > 12:
        return [parts]
    if len(parts) >= 8:
        left = min(p.x0 for p in parts)
        right = max(p.x1 for p in parts)
        gutter = _find_gutter(parts, left, right)
        if gutter is not None:
            lefts = [p for p in parts if (p.x0 + p.x1) / 2 < gutter]
            rights = [p for p in parts if (p.x0 + p.x1) / 2 >= gutter]
            return _xy_cut(lefts, depth + 1) + _xy_cut(rights, depth + 1)
    # horizontal cuts where no segment lies in a band of at least half a line
    ordered = sorted(parts, key=lambda p: -p.top)
    blocks: list[list[_Line]] = [[ordered[0]]]
    low = ordered[0].base
    low_size = ordered[0].size
    for p in ordered[1:]:
        if p.top < low - 0.5 * max(low_size, p.size):
            blocks.append([p])
            low, low_size = p.base, p.size
        else:
            blocks[-1].append(p)
            if p.base < low:
                low, low_size = p.base, p.size
    if len(blocks) == 1:
        return [parts]
    flows: list[list[_Line]] = []
    plain = False  # the last flow is plain text that the next plain block continues
    for block in blocks:
        sub = _xy_cut(block, depth + 1)
        if len(sub) == 1 and plain:
            flows[-1].extend(sub[0])
        else:
            flows.extend(sub)
        plain = len(sub) == 1
    return flows


def _reading_order(lines: list[_Line], page_height: float) -> list[list[_Line]]:
    """Flows of lines in reading order: columns left to right, each top to bottom."""
    if len(lines) < 8 and all(len(ln.segs) == 1 for ln in lines):
        return [sorted(lines, key=lambda ln: -ln.base)]
    flows = _xy_cut(_split_segments(lines))
    return [_group_lines(f) for f in flows if f]


# ---------------------------------------------------------------------------------------------------
# Pages


@dataclass(slots=True)
class _Page:
    number: int  # physical, 1-based
    label: str
    width: float
    height: float
    blocks: list[list[_Line]] = field(default_factory=list)
    ocred: bool = False
    no_text: bool = False


def _page_has_image(page: Any) -> bool:
    for k in range(pdfium_c.FPDFPage_CountObjects(page.raw)):
        obj = pdfium_c.FPDFPage_GetObject(page.raw, k)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE or kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            return True
    return False


def _open(path: Path) -> Any:
    if pdfium is None:
        raise ReadError("PDF support is not installed (pip install pypdfium2)")
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 2048))
            tail = fh.read()
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    if b"%PDF-" not in head:
        raise ReadError(f"not a PDF: starts with {head[:16]!r}" if head else "not a PDF: the file is empty")
    if b"%%EOF" not in tail:
        raise ReadError("truncated or corrupt PDF: no end-of-file marker (%%EOF) at its end")
    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise ReadError("encrypted PDF: it needs a password") from None
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise ReadError("encrypted PDF: unsupported security handler") from None
        raise ReadError(f"corrupt PDF: {exc}") from None
    return doc


def _layout(record: _Page, lines: list[_Line]) -> None:
    """The page's lines into flows in reading order, each line's text finished."""
    if not lines:
        return
    record.blocks = _reading_order(lines, record.height)
    for col, block in enumerate(record.blocks):
        x0 = min(ln.x0 for ln in block)
        x1 = max(ln.x1 for ln in block)
        for ln in block:
            ln.col, ln.col_x0, ln.col_x1 = col, x0, x1
            _finish_line(ln)
        block[:] = [ln for ln in block if ln.text]
        _rows_among_rows(block)
    record.blocks = [b for b in record.blocks if b]


def _rows_among_rows(block: list[_Line]) -> None:
    """A monospaced line cut by wide gaps is aligned code, unless it sits among table rows (a table
    whose cells are in a typewriter font): then it is a row too."""
    changed = True
    while changed:
        changed = False
        for k, ln in enumerate(block):
            if ln.kind == "code" and ln.cells:
                near = [block[j] for j in (k - 1, k + 1) if 0 <= j < len(block)]
                if any(n.kind == "row" for n in near):
                    ln.kind, ln.text = "row", " | ".join(ln.cells)
                    changed = True


def _extract(doc: Any, progress: Progress | None) -> tuple[list[_Page], int, int]:
    """Every page's lines in reading order; pages without a text layer that show an image are OCRed
    when tesseract is installed. Returns the pages, how many were OCRed and how many were left
    without text (scans that could not be OCRed)."""
    n = len(doc)
    if n > MAX_PAGES:
        raise ReadError(f"{n:,} pages (more than {MAX_PAGES:,}): refused")
    if n == 0:
        raise ReadError("corrupt PDF: no pages")
    fonts = _FontCache()
    pages: list[_Page] = []
    ocr = tesseract_available()
    ocred = skipped = 0
    for index in range(n):
        scan: tuple[bytes, int, int] | None = None
        with _LOCK:  # PDFium is not thread-safe: one page at a time, so that a page view can go between
            try:
                page = doc[index]
            except pdfium.PdfiumError as exc:
                raise ReadError(f"corrupt PDF: page {index + 1} cannot be loaded ({exc})") from None
            try:
                width, height = page.get_size()
                try:
                    label = doc.get_page_label(index)
                except Exception:  # a broken label tree is no reason to refuse the file
                    label = ""
                record = _Page(index + 1, label, width, height)
                textpage = page.get_textpage()
                try:
                    fonts.by_obj.clear()
                    lines = _page_lines(textpage.raw, index + 1, fonts)
                finally:
                    textpage.close()
                if not lines and _page_has_image(page):  # a scan
                    scan = _render_gray(page, OCR_DPI) if ocr else None
                    if not ocr:
                        skipped += 1
            finally:
                page.close()
        _layout(record, lines)
        if scan is not None:
            _layout(record, _ocr_lines(*scan, index + 1, height))
            record.ocred = bool(record.blocks)
            ocred += record.ocred
            skipped += not record.ocred
        record.no_text = not record.blocks
        pages.append(record)
        if progress is not None:
            progress(index + 1, n)
    return pages, ocred, skipped


# ---------------------------------------------------------------------------------------------------
# Running headers and footers

_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-\u2013(]?\s*([0-9]{1,4}|[ivxlcdm]{1,7})\s*[-\u2013)]?"
                          r"(?:\s*(?:/|of)\s*[0-9]{1,4})?$", re.IGNORECASE)


def _is_page_number(text: str) -> bool:
    return bool(_PAGE_NUMBER.match(text.strip()))


def _digits_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", text.lower())).strip()


def _remove_running(pages: list[_Page]) -> None:
    """Mark running headers, footers and page-number lines as dropped."""
    candidates: list[tuple[str, _Line, _Page]] = []
    for page in pages:
        lines = [ln for block in page.blocks for ln in block]
        if not lines:
            continue
        by_y = sorted(lines, key=lambda ln: -ln.base)
        for zone, chosen in (("top", by_y[:2]), ("bottom", by_y[-2:])):
            for ln in chosen:
                in_band = ln.base > (1 - HEADER_FOOTER_BAND) * page.height if zone == "top" \
                    else ln.base < HEADER_FOOTER_BAND * page.height
                if in_band:
                    candidates.append((zone, ln, page))
    text_pages = sum(1 for p in pages if p.blocks)
    if text_pages < 2:
        for _, ln, _ in candidates:
            if _is_page_number(ln.text):
                ln.kind = "drop"
        return
    # positions (zone, baseline to 2 pt) shared by the bands of many pages
    band_pages: dict[tuple[str, int], set[int]] = {}
    for zone, ln, page in candidates:
        band_pages.setdefault((zone, round(ln.base / 2)), set()).add(page.number)

    def band_count(zone: str, base: float) -> int:
        k = round(base / 2)
        found: set[int] = set()
        for kk in (k - 1, k, k + 1):
            found |= band_pages.get((zone, kk), set())
        return len(found)

    keys = Counter((zone, _digits_key(ln.text)) for zone, ln, _ in candidates)
    need = max(2, math.ceil(0.3 * text_pages))
    for zone, ln, page in candidates:
        text = ln.text
        if _is_page_number(text):
            ln.kind = "drop"
            continue
        repeated = keys[(zone, _digits_key(text))] >= max(2, min(3, text_pages // 2))
        if repeated and band_count(zone, ln.base) >= 2:
            ln.kind = "drop"
            continue
        if band_count(zone, ln.base) >= need:
            tokens = text.replace("|", " ").split()
            numbers = {str(page.number), page.label} - {""}
            if tokens and (tokens[0] in numbers or tokens[-1] in numbers):
                ln.kind = "drop"


# ---------------------------------------------------------------------------------------------------
# Headings

_NUMBER_PREFIX = re.compile(r"^(?:(?:chapter|appendix|section|part)\s+)?(?:[0-9a-z]{1,3}(?:[.\-][0-9]{1,3})*)?[.:]?\s*$",
                            re.IGNORECASE)


def _norm_title(text: str) -> str:
    return re.sub(r"\s+", " ", normalize(text)).strip().lower()


def _outline(doc: Any) -> list[tuple[int, str, int, float | None]]:
    """(level, title, page index, y or None) for each bookmark that points into the document."""
    out = []
    try:
        for mark in doc.get_toc(max_depth=16):
            title = normalize(mark.get_title() or "").strip()
            dest = mark.get_dest()
            if not title or dest is None:
                continue
            index = dest.get_index()
            if index is None or not 0 <= index < len(doc):
                continue
            y = None
            try:
                _mode, view = dest.get_view()
                if view and len(view) >= 2 and view[1] and not math.isnan(view[1]):
                    y = float(view[1])
            except Exception:
                y = None
            out.append((mark.level, title, index, y))
    except Exception:
        return []
    return out


def _heading_item(level: int, title: str) -> _Line:
    """A heading in the list of lines: where it stands, its section begins."""
    return _Line(0, 0.0, 0.0, 0.0, 0.0, 0.0, False, False, [], text=title, kind="heading", heading=(level, title))


_NOTE_NUMBER = re.compile(r"^(?:\d{1,3}|[*\u2020\u2021])\s")  # a footnote's first line: its text hangs after it
_NOTE_START = re.compile(r"^(\d{1,3}|[*\u2020\u2021])(?=[A-Z][a-z])")


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


def _heading_match(text: str, want: str) -> bool:
    """Is `text` (a line, normalized) the bookmark title `want`, maybe after its number ("1.2", "B.1")?"""
    return text == want or (text.endswith(want) and bool(_NUMBER_PREFIX.match(text[: -len(want)])))


def _heading_prefix(text: str, want: str) -> bool:
    """Could `text` be the first line of the title `want` broken over several lines?"""
    if len(text) < 3:
        return False
    if want.startswith(text):
        return True
    rest = _strip_number(text)
    return bool(rest) and want.startswith(rest)


def _find_heading_line(items: list[_Line], candidates: list[int], want: str) -> tuple[int, list[int], str] | None:
    """(position among candidates, items consumed, heading text) of the lines that carry title `want`."""
    for n, k in enumerate(candidates):
        line = items[k]
        text = _norm_title(line.text)
        if _heading_match(text, want):
            return n, [k], line.text
        if _heading_prefix(text, want):
            joined, consumed = line.text, [k]
            for k2 in candidates[n + 1: n + 4]:
                joined += " " + items[k2].text
                consumed.append(k2)
                nj = _norm_title(joined)
                if _heading_match(nj, want):
                    return n, consumed, joined
                if not _heading_prefix(nj, want):
                    break
    return None


def _place_outline(items: list[_Line], outline: list[tuple[int, str, int, float | None]], body_size: float) -> list[_Line]:
    """Insert the outline's headings where their lines are (those lines become the headings); a
    bookmark without such a line starts its section at its position on the page."""
    by_page: dict[int, list[int]] = {}
    for k, item in enumerate(items):
        if item.kind != "heading":
            by_page.setdefault(item.page, []).append(k)
    inserts: dict[int, list[tuple[int, str]]] = {}
    used: set[int] = set()
    for level, title, index, y in outline:
        page_no = index + 1
        positions = [k for k in by_page.get(page_no, []) if k not in used]
        want = _norm_title(title)
        near = [k for k in positions
                if y is None or y - 220 <= items[k].top <= y + 2 * items[k].size][:12]
        found = _find_heading_line(items, near, want)
        if found is not None:
            n, consumed, heading_text = found
            # display lines between the bookmark's position and its line ("CHAPTER", "ONE")
            for k0 in near[:n]:
                ln0 = items[k0]
                if ln0.size > 1.1 * body_size or (ln0.bold and len(ln0.text) < 30):
                    ln0.kind = "drop"
        else:
            found = _find_heading_line(items, positions, want)  # a bookmark pointing elsewhere on the page
        if found is not None:
            n, consumed, heading_text = found
            used.update(consumed)
            for k2 in consumed:
                items[k2].kind = "drop"
            heading_text = re.sub(r"\s+", " ", heading_text).strip()
            # the line's wording keeps the section number; a title in capitals reads better as bookmarked
            use = title if heading_text.isupper() and not title.isupper() else heading_text
            inserts.setdefault(consumed[0], []).append((level, use))
            continue
        # no line carries it: the heading starts at its position on the page
        target = None
        for k in by_page.get(page_no, []):
            if y is None or items[k].top <= y + 1:
                target = k
                break
        if target is None:  # below every line of its page: before the first line of a later page
            later = [k for p, ks in by_page.items() if p > page_no for k in ks]
            target = min(later) if later else len(items)
        inserts.setdefault(target, []).append((level, title))
    out: list[_Line] = []
    for k, item in enumerate(items):
        for level, title in inserts.get(k, []):
            out.append(_heading_item(level, title))
        if item.kind == "heading" or item.kind != "drop":
            out.append(item)
    for level, title in inserts.get(len(items), []):
        out.append(_heading_item(level, title))
    return out


def _strip_number(text: str) -> str:
    parts = text.split(" ", 1)
    if len(parts) == 2 and _NUMBER_PREFIX.match(parts[0] + " "):
        return parts[1]
    return ""


def _font_headings(items: list[_Line], body_size: float) -> list[_Line]:
    """Headings from fonts: short lines clearly larger (or bold at body size, standing alone)."""
    lines = [it for it in items if it.kind != "heading"]

    def looks_like_heading(ln: _Line) -> bool:
        text = ln.text
        return (ln.kind == "body" and len(text) <= 150 and len(text.split()) <= 18
                and not text.endswith((".", ",", ";", "-")) and any(c.isalpha() for c in text)
                and not _BULLET.match(text))

    def larger(ln: _Line) -> bool:  # OCRed sizes are rough: they must stand out more
        return ln.size >= (1.3 if ln.ocr_par is not None else 1.15) * body_size

    big = [ln for ln in lines if larger(ln) and looks_like_heading(ln)]
    sizes = sorted({round(ln.size * 2) / 2 for ln in big}, reverse=True)[:5]
    level_of = {s: n + 1 for n, s in enumerate(sizes)}
    out: list[_Line] = []
    k = 0
    prev_line: _Line | None = None
    while k < len(items):
        item = items[k]
        if item.kind == "heading":
            out.append(item)
            prev_line = None
            k += 1
            continue
        ln = item
        level = None
        if larger(ln) and looks_like_heading(ln):
            level = level_of.get(round(ln.size * 2) / 2)
        elif ln.bold and looks_like_heading(ln) and abs(ln.size - body_size) < 0.1 * body_size \
                and len(ln.text.split()) <= 10 and ln.x1 < ln.col_x1 - 0.2 * (ln.col_x1 - ln.col_x0) \
                and (prev_line is None or prev_line.page != ln.page or prev_line.base - ln.base > 1.6 * ln.size):
            nxt = items[k + 1] if k + 1 < len(items) and items[k + 1].kind != "heading" else None
            if nxt is None or not nxt.bold:
                level = len(sizes) + 1
        if level is None:
            out.append(item)
            prev_line = ln
            k += 1
            continue
        # a heading, maybe over several lines of the same size
        text = ln.text
        j = k + 1
        while j < len(items) and items[j].kind != "heading":
            nxt = items[j]
            if nxt.page != ln.page or abs(nxt.size - ln.size) > 0.05 * ln.size or nxt.bold != ln.bold \
                    or not looks_like_heading(nxt) or (ln.base - nxt.base) > 1.6 * ln.size or len(text) > 150:
                break
            text += " " + nxt.text
            ln = nxt
            j += 1
        out.append(_heading_item(level, text))
        prev_line = None
        k = j
    return out


# ---------------------------------------------------------------------------------------------------
# Paragraphs and sections

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def _vocabulary(items: list[_Line]) -> tuple[Counter[str], Counter[str]]:
    """Words and hyphenated compounds of the document, without the halves of line-end breaks."""
    words: Counter[str] = Counter()
    compounds: Counter[str] = Counter()
    after_break = False
    for item in items:
        if item.kind == "heading":
            after_break = False
            continue
        ln = item
        found = _WORD.findall(ln.text.lower())
        if after_break and found:
            found = found[1:]
        if ln.ends_hyphen and found:
            found = found[:-1]
        for word in found:
            if "-" in word:
                compounds[word] += 1
                for part in word.split("-"):
                    words[part] += 1
            else:
                words[word] += 1
        after_break = ln.ends_hyphen
    return words, compounds


# endings a hyphenation leaves on the next line that are also words of their own ("success-fully")
_SUFFIXES = frozenset("fully ment ments ness able ably ible ing ings tion tions sion sions ly less ful ized izes "
                      "ised ises ity ities ance ence ous ship ward wards".split())


class _Builder:
    """Paragraphs into sections under the heading path, with a page mark where each page begins."""

    def __init__(self, pages: list[_Page], pitch: float, words: Counter[str], compounds: Counter[str]) -> None:
        self.labels = {p.number: p.label for p in pages}
        self.pitch = pitch  # line pitch as a multiple of the font size
        self.words = words
        self.compounds = compounds
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
                joiner = self._joiner_for("".join(self.para[-3:]), text, soft=prev.soft_hyphen, code=prev.mono)
            self._append(text, ln.page, joiner)
        self.prev = ln

    def _joiner_for(self, left: str, right: str, soft: bool, code: bool) -> str:
        """What joins the next line `right` to the paragraph so far (ending with `left`): a space, nothing
        (an identifier or URL cut at "_", "-" or "/"), or "-strip" (drop the hyphen of a broken word)."""
        if not left or not right:
            return " "
        if left.endswith("_"):
            return ""
        if left.endswith("/"):
            return "" if re.search(r"(?:https?|ftp)://\S*$", left) else " "
        if not left.endswith("-") or len(left) < 2:
            return " "
        if soft:
            return "-strip"
        m = re.search(r"(\S*?)([^\W\d_]*)-$", left)
        head_all, head = (m.group(1) + m.group(2), m.group(2)) if m else ("", "")
        m2 = re.match(r"([^\W\d_]*)(\S*)", right)
        tail, tail_rest = (m2.group(1), m2.group(2)) if m2 else ("", right)
        if not head or re.search(r"[_\d]", head_all) or code or head_all.startswith("-") or left.endswith("--"):
            return ""  # an identifier or option cut at "-": one token again, hyphen kept
        if not tail or not tail[0].islower() or re.match(r"[_\d]", tail_rest or "x") and tail_rest:
            return ""  # "S-" + "Plus": a real hyphen
        joined = (head + tail).lower()
        compound = f"{head.lower()}-{tail.lower()}"
        n_joined = self.words.get(joined, 0)
        n_compound = self.compounds.get(compound, 0)
        if n_joined or n_compound:
            return "-strip" if n_joined >= n_compound else ""
        if tail.lower() in _SUFFIXES:
            return "-strip"
        if self.words.get(head.lower(), 0) and self.words.get(tail.lower(), 0) and len(head) >= 2 and len(tail) >= 3 \
                and len(head) + len(tail) >= 7:
            return ""  # both halves are words of the document: a compound ("well-known")
        return "-strip"

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
        indent = 0.7 * ln.size
        if ln.kind == "row":
            return same_flow and prev.base - ln.base > 2.6 * self.pitch * ln.size
        if ln.kind == "code":
            return same_flow and prev.base - ln.base > 2.2 * self.pitch * ln.size
        if _BULLET.match(ln.text):
            return True
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


def _build_sections(pages: list[_Page], items: list[_Line], pitch: float) -> list[Section]:
    words, compounds = _vocabulary(items)
    builder = _Builder(pages, pitch, words, compounds)
    for item in items:
        if item.heading is not None:
            builder.heading(*item.heading)
        else:
            builder.add_line(item)
    builder.flush_section()
    return builder.sections


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
    pitches = []
    for page in pages:
        for block in page.blocks:
            for a, b in zip(block, block[1:], strict=False):
                if abs(a.size - body) < 0.3 and abs(b.size - body) < 0.3 and a.kind == b.kind == "body":
                    gap = a.base - b.base
                    if 0.8 * body < gap < 2.5 * body:
                        pitches.append(gap / body)
    return body, (median(pitches) if pitches else 1.2)


# ---------------------------------------------------------------------------------------------------
# OCR


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


def _render_gray(page: Any, dpi: int) -> tuple[bytes, int, int]:
    bitmap = page.render(scale=dpi / 72, grayscale=True)
    try:
        width, height, stride = bitmap.width, bitmap.height, bitmap.stride
        data = bytes(bitmap.buffer)
        channels = bitmap.n_channels
    finally:
        bitmap.close()
    if channels != 1:  # PDFium may refuse 8-bit output for some pages
        rows = []
        for y in range(height):
            row = data[y * stride: y * stride + width * channels]
            rows.append(row[1::channels])  # green channel
        return b"".join(rows), width, height
    if stride != width:
        data = b"".join(data[y * stride: y * stride + width] for y in range(height))
    return data, width, height


def _ocr_lines(pixels: bytes, width: int, height: int, page_no: int, page_height: float) -> list[_Line]:
    """The lines tesseract reads on a page rendered at OCR_DPI (8-bit gray pixels), in PDF points like
    the text layer's lines so that the rest of the reader treats them alike; [] when it fails."""
    image = b"P5\n%d %d\n255\n" % (width, height) + pixels
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # one thread: the machine's other work goes on
    try:
        done = subprocess.run(["tesseract", "stdin", "stdout", "-l", OCR_LANGUAGE, "--dpi", str(OCR_DPI), "tsv"],
                              input=image, capture_output=True, timeout=OCR_TIMEOUT_S, env=env, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return []
    if done.returncode != 0:
        return []
    k = 72.0 / OCR_DPI
    words: dict[tuple[int, int, int], list[tuple[float, float, float, float, str]]] = {}
    for row in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        left, top, w, h = (int(c) for c in cols[6:10])
        key = (int(cols[2]), int(cols[3]), int(cols[4]))
        words.setdefault(key, []).append((left * k, (left + w) * k, page_height - (top + h) * k,
                                          page_height - top * k, cols[11]))
    # one size per paragraph: word heights vary with ascenders and descenders
    par_heights: dict[tuple[int, int], list[float]] = {}
    for (block, par, _line), found in words.items():
        par_heights.setdefault((block, par), []).extend(t - b for _, _, b, t, _ in found)
    par_size = {key: max(1.0, sorted(h)[(3 * len(h)) // 4]) for key, h in par_heights.items()}
    lines: list[_Line] = []
    for key in sorted(words):
        found = words[key]
        size = par_size[key[:2]]
        segs: list[_Seg] = []
        for x0, x1, _b, _t, text in found:
            if segs and x0 - segs[-1].x1 <= 1.4 * size:
                segs[-1].text += " " + text
                segs[-1].x1 = x1
            else:
                segs.append(_Seg(x0, x1, text))
        line = _Line(page_no, segs[0].x0, segs[-1].x1, min(b for _, _, b, _, _ in found),
                     max(t for _, _, _, t, _ in found), round(size * 2) / 2, False, False, segs)
        line.ends_hyphen = segs[-1].text.endswith("-")
        line.ocr_par = key[:2]
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------------
# The reader


def _metadata_title(doc: Any) -> str:
    """The Title of the document information, unless it is empty or a placeholder."""
    try:
        title = normalize(doc.get_metadata_value("Title") or "").strip()
    except Exception:  # a broken information dictionary: no title from it
        return ""
    lowered = title.lower()
    if lowered in {"untitled", "untitled document"} or lowered.startswith("microsoft word") \
            or re.search(r"\.(docx?|odt|tex|dvi|pdf)$", lowered):
        return ""
    return title


def _cover_title(pages: list[_Page], body_size: float) -> str:
    """The largest short line on the first page with text, when it stands out from the body text."""
    for page in pages[:3]:
        lines = [ln for block in page.blocks for ln in block if ln.kind != "drop" and 0 < len(ln.text.split()) <= 15]
        if not page.blocks:
            continue
        if lines:
            best = max(lines, key=lambda ln: ln.size)
            if best.size >= 1.3 * body_size:
                return best.text
        return ""
    return ""


def read_pdf(path: Path, source: str, *, progress: Progress | None = None) -> list[Document]:
    """One document: its sections with heading paths and page marks. Raises ReadError with the reason
    for encrypted, corrupt, truncated or hostile files, and for files without any text."""
    with _LOCK:
        doc = _open(path)
    try:
        pages, ocred, skipped = _extract(doc, progress)
        with _LOCK:
            title = _metadata_title(doc)
            outline = _outline(doc)
    finally:
        with _LOCK:
            doc.close()
    without_text = [p for p in pages if p.no_text]
    if len(without_text) == len(pages):
        raise ReadError(f"no text layer: {len(without_text)} pages without text"
                        + ("" if tesseract_available() else " (tesseract is not installed for OCR)"))
    _remove_running(pages)
    body_size, pitch = _body_stats(pages)
    title = title or _cover_title(pages, body_size) or path.stem
    items = _items(pages, body_size)
    items = _place_outline(items, outline, body_size) if outline else _font_headings(items, body_size)
    sections = _build_sections(pages, items, pitch)
    if not sections:
        raise ReadError(f"no text layer: {len(without_text)} pages without text")
    notes = []
    if ocred:
        notes.append(f"{ocred} pages OCRed")
    if skipped:
        notes.append(f"{skipped} pages without text skipped")
    return [Document(source, "", title, tuple(sections), format="pdf", page_unit="page",
                     page_count=len(pages), notes=tuple(notes))]


# ---------------------------------------------------------------------------------------------------
# For the page view

Box = tuple[float, float, float, float]
_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(function: _F) -> _F:
    """Run `function` holding the PDFium lock."""
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return function(*args, **kwargs)
    return cast(_F, run)


def _key(text: str) -> str:
    return "".join(c for c in normalize(text).lower() if c.isalpha())


@_locked
def page_count(path: Path) -> int:
    """How many physical pages the PDF has (ReadError when it cannot be opened)."""
    doc = _open(path)
    try:
        return len(doc)
    finally:
        doc.close()


@_locked
def page_size(path: Path, page: int) -> tuple[float, float]:
    """Width and height of physical page `page` (1-based) in PDF points."""
    doc = _open(path)
    try:
        if not 1 <= page <= len(doc):
            raise ReadError(f"no page {page} (the PDF has {len(doc)})")
        return tuple(doc.get_page_size(page - 1))
    finally:
        doc.close()


@_locked
def page_text_boxes(path: Path, page: int, needle: str, words: int = 30) -> list[Box]:
    """Rectangles (left, bottom, right, top) in PDF points, origin at the page's bottom-left corner as
    PDFium gives them, one per line, covering where `needle` (a passage as this reader emits it) lies on
    physical page `page`. Matching ignores case, spaces, punctuation, hyphenation and digits: the
    passage's first `words` words locate it (for a passage that began on the page before, the first
    run of eight of its words found on this page), and the boxes cover it from there for as long as the
    page's text goes on with it. [] when it is not found."""
    doc = _open(path)
    try:
        if not 1 <= page <= len(doc):
            return []
        pdf_page = doc[page - 1]
        textpage = pdf_page.get_textpage()
        try:
            width, height = pdf_page.get_size()
            record = _Page(page, "", width, height)
            _layout(record, _page_lines(textpage.raw, page, _FontCache(), keep_chars=True))
            key_chars: list[int] = []  # position in the page key -> char index
            key_parts: list[str] = []
            for block in record.blocks:  # in reading order, as the passages were made
                for line in block:
                    if _is_page_number(line.text):  # ("Page 3" must not match a passage's "page")
                        continue
                    for seg in line.segs:
                        for index, ch in seg.chars or ():
                            for c in normalize(ch).lower():
                                if c.isalpha():
                                    key_parts.append(c)
                                    key_chars.append(index)
            page_key = "".join(key_parts)
            found = _match(page_key, needle.split(), words)
            if found is None:
                return []
            start, end = found
            return _char_rects(textpage.raw, sorted(set(key_chars[start:end])))
        finally:
            textpage.close()
            pdf_page.close()
    finally:
        doc.close()


def _match(page_key: str, needle_words: list[str], words: int) -> tuple[int, int] | None:
    """Where the passage lies in the page's key: its first `words` words located, then followed for as
    long as the page goes on with the passage's text. A passage that began on an earlier page is
    located by the first run of eight of its words found on the page."""
    full = _key(" ".join(needle_words))
    head = _key(" ".join(needle_words[:words]))
    if not head:
        return None
    starts = [(page_key.find(head), 0)]
    if starts[0][0] < 0:
        starts = []
        for k in range(0, max(1, len(needle_words) - 7), 4):
            window = _key(" ".join(needle_words[k:k + 8]))
            at = page_key.find(window) if len(window) >= 12 else -1
            if at >= 0:
                starts = [(at, len(_key(" ".join(needle_words[:k]))))]
                break
    if not starts:
        return None
    at, offset = starts[0]
    end = at
    while end < len(page_key) and offset + end - at < len(full) and page_key[end] == full[offset + end - at]:
        end += 1
    return at, end


def _char_rects(textpage: Any, indices: list[int]) -> list[Box]:
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    rects: list[list[float]] = []
    for index in indices:
        pdfium_c.FPDFText_GetCharBox(textpage, index, ctypes.byref(left), ctypes.byref(right),
                                     ctypes.byref(bottom), ctypes.byref(top))
        box = [left.value, bottom.value, right.value, top.value]
        if rects:
            last = rects[-1]
            mid = (box[1] + box[3]) / 2
            if last[1] - 2 <= mid <= last[3] + 2 and box[0] >= last[0] - 2:
                last[0] = min(last[0], box[0])
                last[1] = min(last[1], box[1])
                last[2] = max(last[2], box[2])
                last[3] = max(last[3], box[3])
                continue
        rects.append(box)
    return [(r[0], r[1], r[2], r[3]) for r in rects]


@_locked
def render_page(path: Path, page: int, scale: float = 1.5) -> bytes:
    """Physical page `page` (1-based) as PNG bytes, `scale` pixels per PDF point (1 = 72 dpi)."""
    if not 0.05 <= scale <= 8:
        raise ValueError("scale must be between 0.05 and 8")
    doc = _open(path)
    try:
        if not 1 <= page <= len(doc):
            raise ReadError(f"no page {page} (the PDF has {len(doc)})")
        pdf_page = doc[page - 1]
        try:
            bitmap = pdf_page.render(scale=scale, rev_byteorder=True)
            try:
                return _png(bytes(bitmap.buffer), bitmap.width, bitmap.height, bitmap.stride, bitmap.n_channels)
            finally:
                bitmap.close()
        finally:
            pdf_page.close()
    finally:
        doc.close()


def _png(data: bytes, width: int, height: int, stride: int, channels: int) -> bytes:
    """A PNG of raw 8-bit pixels: 1 channel gray, 3 RGB, 4 RGBX (the fourth byte dropped)."""
    row_bytes = width * channels
    rows = [data[y * stride: y * stride + row_bytes] for y in range(height)]
    if channels == 4:
        for y, row in enumerate(rows):
            rgb = bytearray(width * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = row[0::4], row[1::4], row[2::4]
            rows[y] = bytes(rgb)
        channels = 3
    raw = b"".join(b"\x00" + row for row in rows)
    color = {1: 0, 3: 2}[channels]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
