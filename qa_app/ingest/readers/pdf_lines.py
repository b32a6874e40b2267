"""A page's characters into lines, from their geometry: PDFium's own line breaks are ignored (they also
break at a raised footnote mark or a circled ©).

A line goes on while a character's bottom stays within the line's band; a wide gap cuts it into
segments (table cells, columns); a small gap becomes a space. Raised, smaller digits after a word are a
footnote mark (dropped) or, after a single letter, digit or bracket, an exponent (kept as "^2")."""

from __future__ import annotations

import ctypes
from typing import Any

from qa_app.errors import ReadError
from qa_app.ingest.readers.pdf_chars import _calls, _FontCache
from qa_app.ingest.readers.pdf_file import pdfium_c
from qa_app.ingest.readers.pdf_model import _Line, _Seg

_SPACE_CODES = frozenset((32, 9, 0xA0))


def _page_lines(textpage: Any, page_no: int, fonts: _FontCache, max_chars: int,
                keep_chars: bool = False) -> list[_Line]:
    """The page's lines in content order, built from character geometry; a page of more than
    `max_chars` characters is refused.

    Per character one box; the font (size, bold, monospace) is asked at the start of each word and
    for digits (footnote marks). With `keep_chars`, each segment also lists its characters with their
    PDFium index, to find where a passage lies on the page."""
    count = pdfium_c.FPDFText_CountChars(textpage)
    if count > max_chars:
        raise ReadError(f"page {page_no} has {count:,} characters (more than {max_chars:,}): refused")
    if count <= 0:
        return []
    reader = _LineReader(textpage, page_no, fonts, keep_chars)
    for index in range(count):
        reader.feed(index)
    return reader.finish()


class _LineReader:
    """The lines of one page, fed its characters in content order by PDFium index. It holds the line
    being built (its finished segments, the text of the current one, baseline, size and extent) and
    the font of the current word."""

    __slots__ = ("textpage", "handle", "page_no", "fonts", "keep_chars", "get_unicode", "loose_box", "font_size",
                 "is_generated", "rect", "rect_at", "lines", "parts", "segs", "seg_chars", "seg_start", "line_base",
                 "line_size", "line_top", "line_x0", "prev_x1", "sizes", "bold_n", "mono_n", "n_chars",
                 "pending_space", "generated_space", "hyphen_mark", "prev_char", "sup", "sup_after", "word_start",
                 "size", "size_key", "bold", "mono", "symbols", "prev_height", "high", "broken")

    def __init__(self, textpage: Any, page_no: int, fonts: _FontCache, keep_chars: bool) -> None:
        calls = _calls()
        self.textpage = textpage
        self.handle = ctypes.cast(textpage, ctypes.c_void_p).value or 0
        self.page_no = page_no
        self.fonts = fonts
        self.keep_chars = keep_chars
        self.get_unicode = calls.unicode  # (FPDFText_GetText skips some control characters: its units do not align)
        self.loose_box, self.font_size, self.is_generated = calls.loose_box, calls.font_size, calls.is_generated
        self.rect = (ctypes.c_float * 4)()  # FS_RECTF: left, top, right, bottom
        self.rect_at = ctypes.addressof(self.rect)
        self.lines: list[_Line] = []
        # the line being built
        self.parts: list[str] = []  # text of the segment being built
        self.segs: list[_Seg] = []
        self.seg_chars: list[tuple[int, str]] = []
        self.seg_start = 0.0
        self.line_base = self.line_size = self.line_top = self.line_x0 = self.prev_x1 = 0.0
        self.sizes: dict[float, int] = {}
        self.bold_n = self.mono_n = self.n_chars = 0
        self.pending_space = self.generated_space = False
        self.hyphen_mark = False
        self.prev_char = ""
        self.sup: list[str] = []  # a raised, smaller run of digits after a word (a footnote mark or exponent)
        self.sup_after = ""
        # the font of the current character
        self.word_start = True  # the next character starts a word: ask its font
        self.size, self.size_key = 10.0, 10.0
        self.bold = self.mono = self.symbols = False
        self.prev_height = 1.0  # the loose box height of the last character whose font was asked
        self.high = 0  # the first half of a surrogate pair
        self.broken = False  # the last glyph was a figure's (so a hyphen mark after it is none)

    def feed(self, i: int) -> None:
        """Take PDFium's character `i`."""
        code = self.get_unicode(self.handle, i)
        if code == 13 or code == 10:
            self.word_start = True
        elif code in _SPACE_CODES:
            self._space(i)
        elif code == 0xFFFE or code == 2:  # PDFium's mark of a hyphen at a line end (or a glyph without text)
            self._hyphen_mark(i)
        else:
            ch = self._decode(code)
            if ch is not None:
                self._glyph(i, code, ch)

    def finish(self) -> list[_Line]:
        """The page's lines, once every character was fed."""
        if self.parts or self.segs:
            self._end_line()
        return self.lines

    # characters that are no glyphs -----------------------------------------------------------------
    def _space(self, i: int) -> None:
        if self.is_generated(self.handle, i):
            self.generated_space = True  # PDFium saw a gap: a space if the gap is not tiny
        else:
            self.pending_space = True
        self.word_start = True

    def _hyphen_mark(self, i: int) -> None:
        if self.parts and not self.broken and self.prev_char.isalnum():
            self.parts.append("-")
            self.prev_char = "-"
            self.hyphen_mark = True
            if self.keep_chars:
                self.seg_chars.append((i, "-"))

    def _decode(self, code: int) -> str | None:
        """The character of a UTF-16 unit: one beyond the BMP comes as two halves (None for the first,
        kept until the second comes; None for a second half without a first)."""
        if not 0xD800 <= code < 0xE000:
            return chr(code)
        if code < 0xDC00:
            self.high = code
            return None
        if not self.high:
            return None
        ch = chr(0x10000 + ((self.high - 0xD800) << 10) + (code - 0xDC00))
        self.high = 0
        return ch

    # glyphs ----------------------------------------------------------------------------------------
    def _glyph(self, i: int, code: int, ch: str) -> None:
        self.loose_box(self.handle, i, self.rect_at)
        x0, top, x1, bottom = self.rect
        if x1 < x0:
            x0, x1 = x1, x0
        digit = "0" <= ch <= "9"
        height = top - bottom
        # the font is asked at a word's start, for digits, a line's first character and when the box
        # height changes (a new font within a word)
        if self.word_start or digit or not (self.parts or self.segs) or abs(height - self.prev_height) > 0.1 * self.prev_height:
            self._ask_font(i, height)
        if self.symbols:  # a glyph of a figure (music, dingbats): no text
            self.word_start = self.broken = True
            return
        base = bottom
        if self.parts or self.segs:
            self._place(x0, x1, base)
        self.broken = False
        if not (self.parts or self.segs):  # the first character of a line
            self._start_line(x0, top, base)
        self.pending_space = self.generated_space = False
        self._add_text(code, ch, digit, base)
        self._count(i, ch, top, x1)

    def _ask_font(self, i: int, height: float) -> None:
        self.prev_height = height
        self.size = self.font_size(self.handle, i) or height or 1.0
        self.size_key = round(self.size, 1)
        self.bold, self.mono, self.symbols = self.fonts.style(self.textpage, self.handle, i)
        self.word_start = False

    def _place(self, x0: float, x1: float, base: float) -> None:
        """A glyph after others: on the same line while its bottom stays within the line's band, after
        a gap (a new segment or a space) or none; else the line ends before it."""
        self._raised_start(x0, base)
        if not (self.line_base - 0.45 * self.line_size < base < self.line_base + 0.8 * self.line_size) \
                or x1 < self.line_x0 - self.line_size:
            self._break_line()
        else:
            self.hyphen_mark = False  # a hyphen mark in mid-line: a real hyphen after all
            self._gap(x0)

    def _raised_start(self, x0: float, base: float) -> None:
        size = self.size
        if self.n_chars <= 3 and size > 1.15 * self.line_size and not self.segs and base < self.line_base \
                and self.line_base - 0.8 * size < base and x0 > self.prev_x1 - 1:
            # a line that began with a small raised mark (a footnote's number): its text follows
            self.line_base, self.line_size = base, size
            self.pending_space = True

    def _gap(self, x0: float) -> None:
        gap = x0 - self.prev_x1
        if gap > 1.4 * self.line_size and self.prev_char:  # a wide gap: a new cell or column
            self._new_segment(x0)
        elif self.prev_char and (self.pending_space or gap > (0.08 if self.generated_space else 0.18)
                                 * (self.line_size if self.line_size < self.size else self.size)):
            if self.sup:
                self._flush_sup()
            self.parts.append(" ")
            self.prev_char = " "

    def _start_line(self, x0: float, top: float, base: float) -> None:
        self.line_base, self.line_size, self.line_top, self.line_x0 = base, self.size, top, x0
        self.seg_start = self.prev_x1 = x0
        self.prev_char = ""

    def _add_text(self, code: int, ch: str, digit: bool, base: float) -> None:
        """The glyph's character into the segment's text, or into a raised run of digits."""
        if digit and self.size < 0.85 * self.line_size and base > self.line_base + 0.2 * self.line_size and \
                (self.sup or (self.prev_char and self.prev_char != " ")):
            if not self.sup:  # the word it follows decides: exponent or footnote mark
                tail = "".join(self.parts[-12:])
                self.sup_after = tail.rsplit(" ", 1)[-1]
            self.sup.append(ch)
            return
        if self.sup:
            self._flush_sup()
        self.parts.append(ch)
        if code == 0xAD:
            self.hyphen_mark = True
        if base < self.line_base + 0.2 * self.line_size or self.size >= 0.85 * self.line_size:
            self.sizes[self.size_key] = self.sizes.get(self.size_key, 0) + 1

    def _count(self, i: int, ch: str, top: float, x1: float) -> None:
        """The glyph in the line's tallies (bold, monospace, characters) and extent."""
        if self.keep_chars:
            self.seg_chars.append((i, ch))
        self.bold_n += self.bold
        self.mono_n += self.mono
        self.n_chars += 1
        if top > self.line_top:
            self.line_top = top
        if x1 > self.prev_x1:
            self.prev_x1 = x1
        self.prev_char = ch

    # segments and lines ----------------------------------------------------------------------------
    def _flush_sup(self) -> None:
        if len(self.sup_after) == 1 or self.sup_after.isdigit() or self.sup_after[-1:] in ")]":
            self.parts.append("^" + "".join(self.sup))  # an exponent: x^2
        self.sup.clear()  # else a footnote mark after a word: dropped

    def _close_segment(self) -> None:
        text = "".join(self.parts)
        if text.strip():
            self.segs.append(_Seg(self.seg_start, self.prev_x1, text, self.seg_chars.copy() if self.keep_chars else None))
        self.seg_chars.clear()

    def _new_segment(self, x0: float) -> None:
        if self.sup:
            self._flush_sup()
        self._close_segment()
        self.parts.clear()
        self.seg_start = x0

    def _end_line(self) -> None:
        if self.sup:
            self._flush_sup()
        self._close_segment()
        if self.segs:
            sizes = self.sizes
            main = max(sizes, key=lambda key: sizes[key]) if sizes else self.line_size
            n_chars = self.n_chars
            self.lines.append(_Line(self.page_no, self.segs[0].x0, self.segs[-1].x1, self.line_base, self.line_top,
                                    main, self.bold_n >= 0.8 * n_chars, self.mono_n >= 0.8 * n_chars, self.segs.copy(),
                                    ends_hyphen=self.hyphen_mark))

    def _break_line(self) -> None:
        self._end_line()
        self.parts.clear()
        self.segs.clear()
        self.sizes = {}
        self.bold_n = self.mono_n = self.n_chars = 0
        self.hyphen_mark = False
        self.pending_space = False
