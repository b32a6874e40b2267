"""Read a PDF into one document: sections under their heading path, each knowing the physical pages
(and printed page labels) its text comes from.

PDFium (pypdfium2) gives every character with its box, baseline, font size and font. From those the
reader rebuilds what a person reads, one step a module:

- `pdf_file`: opening the file, refusing ones that are no PDF, truncated, encrypted or corrupt;
- `pdf_chars`, `pdf_lines`: lines from character positions, segments of a line where a wide gap cuts
  it (table cells, columns); footnote markers (smaller, raised digits after a word) dropped, exponents
  after a single letter kept as `^2`; glyphs of music and symbol fonts dropped;
- `pdf_layout`: reading order by XY-cut (a gutter between columns of prose splits a block into
  columns, read left to right, each top to bottom; otherwise empty horizontal bands split it into
  blocks, top to bottom); lines with several segments become one table row, cells joined by " | "
  (code keeps its spacing);
- `pdf_text`: NFKC (ligatures, math letters, odd spaces), ASCII quotes; artifacts dropped: dot leaders,
  Sphinx's "˓→" marks and \\spxentry;
- `pdf_running`: running headers and footers: lines in the top or bottom band at a position shared by
  many pages that repeat (digits aside) or carry the page's number, and lines that are only a page number;
- `pdf_headings`: headings from the outline (bookmarks) placed on the line that carries them, else
  from font size (and bold body-size lines standing alone); the title;
- `pdf_sections`, `pdf_joins`: paragraphs from vertical gaps, first-line indents, short closing lines
  and font changes; a paragraph cut by a page break is joined again (a page mark then points inside
  it); words hyphenated at a line end joined when the document knows the joined word (or the halves are
  no words of their own), identifiers cut after `_` or `-` joined without a space; "(continues on next
  page)" dropped;
- `pdf_ocr`: pages without a text layer OCRed with the `tesseract` binary when it is installed, else
  reported.

`page_text_boxes` and `render_page` serve a page view (`pdf_view`): where a passage lies on a page,
and the page as a PNG.

The limits against hostile files live here: they are read from this module when a file is read, so
that setting them on it (as the tests do) takes effect.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa_app.errors import ReadError
from qa_app.ingest.readers.pdf_chars import _FontCache
from qa_app.ingest.readers.pdf_file import _LOCK, _locked, _open, pdfium
from qa_app.ingest.readers.pdf_headings import _cover_title, _font_headings, _metadata_title, _outline, _place_outline
from qa_app.ingest.readers.pdf_layout import _layout
from qa_app.ingest.readers.pdf_lines import _page_lines
from qa_app.ingest.readers.pdf_model import _Line, _Page
from qa_app.ingest.readers.pdf_ocr import (
    OCR_DPI,
    OCR_LANGUAGE,
    OCR_TIMEOUT_S,
    _ocr_lines,
    _page_has_image,
    _render_gray,
    tesseract_available,
)
from qa_app.ingest.readers.pdf_running import HEADER_FOOTER_BAND, _remove_running
from qa_app.ingest.readers.pdf_sections import _body_stats, _build_sections, _items
from qa_app.ingest.readers.pdf_text import normalize
from qa_app.ingest.readers.pdf_view import Box, _passage_boxes, _png
from qa_app.models import Document

__all__ = ["HEADER_FOOTER_BAND", "MAX_PAGES", "MAX_PAGE_CHARS", "OCR_DPI", "OCR_LANGUAGE", "OCR_TIMEOUT_S", "Box",
           "Progress", "normalize", "page_count", "page_size", "page_text_boxes", "read_pdf", "render_page",
           "tesseract_available"]

MAX_PAGES = 5000  # more pages than this: refused as hostile (or not a document to answer questions from)
MAX_PAGE_CHARS = 2_000_000  # characters on one page (~2 MB of text): refused as hostile

Progress = Callable[[int, int], None]
_Scan = tuple[bytes, int, int]  # a page rendered for OCR: 8-bit gray pixels, width, height

# ---------------------------------------------------------------------------------------------------
# The reader


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
    return [Document(source, "", title, tuple(sections), format="pdf", page_unit="page",
                     page_count=len(pages), notes=_notes(ocred, skipped))]


def _notes(ocred: int, skipped: int) -> tuple[str, ...]:
    notes = []
    if ocred:
        notes.append(f"{ocred} pages OCRed")
    if skipped:
        notes.append(f"{skipped} pages without text skipped")
    return tuple(notes)


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
        record, lines, is_scan, scan = _load_page(doc, index, fonts, ocr)
        skipped += is_scan and not ocr
        _layout(record, lines)
        if scan is not None:
            _layout(record, _ocr_lines(*scan, index + 1, record.height))
            record.ocred = bool(record.blocks)
            ocred += record.ocred
            skipped += not record.ocred
        record.no_text = not record.blocks
        pages.append(record)
        if progress is not None:
            progress(index + 1, n)
    return pages, ocred, skipped


def _load_page(doc: Any, index: int, fonts: _FontCache, ocr: bool) -> tuple[_Page, list[_Line], bool, _Scan | None]:
    """Page `index`: its record, the lines of its text layer, whether it is a scan (no text, an image),
    and, for a scan when `ocr`, the page rendered for OCR."""
    scan: _Scan | None = None
    with _LOCK:  # PDFium is not thread-safe: one page at a time, so that a page view can go between
        try:
            page = doc[index]
        except pdfium.PdfiumError as exc:
            raise ReadError(f"corrupt PDF: page {index + 1} cannot be loaded ({exc})") from None
        try:
            record = _page_record(doc, page, index)
            lines = _text_lines(page, index + 1, fonts, keep_chars=False)
            is_scan = not lines and _page_has_image(page)
            if is_scan and ocr:
                scan = _render_gray(page, OCR_DPI)
        finally:
            page.close()
    return record, lines, is_scan, scan


def _page_record(doc: Any, page: Any, index: int) -> _Page:
    width, height = page.get_size()
    try:
        label = doc.get_page_label(index)
    except Exception:  # a broken label tree is no reason to refuse the file
        label = ""
    return _Page(index + 1, label, width, height)


def _text_lines(page: Any, page_no: int, fonts: _FontCache, keep_chars: bool) -> list[_Line]:
    """The lines of the page's text layer (a page of more than MAX_PAGE_CHARS characters is refused)."""
    textpage = page.get_textpage()
    try:
        fonts.by_obj.clear()
        return _page_lines(textpage.raw, page_no, fonts, MAX_PAGE_CHARS, keep_chars)
    finally:
        textpage.close()


# ---------------------------------------------------------------------------------------------------
# For the page view


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
            _layout(record, _page_lines(textpage.raw, page, _FontCache(), MAX_PAGE_CHARS, keep_chars=True))
            return _passage_boxes(textpage.raw, record, needle, words)
        finally:
            textpage.close()
            pdf_page.close()
    finally:
        doc.close()


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
