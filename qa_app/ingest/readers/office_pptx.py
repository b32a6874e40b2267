"""PowerPoint (PPTX): one section a slide, headed by its title, its page the slide number; shapes in
reading order (bullets "- item", numbered items, tables as rows), then the speaker notes."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qa_app.ingest.readers.office_text import _Counters, _document, _int, _row_line, table_blocks
from qa_app.ingest.readers.office_zip import _with_library, open_package, read_bytes
from qa_app.models import Document, PageMark, Section

A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_DEFAULT_DECK_TITLES = {"powerpoint presentation", "presentation", "powerpoint-präsentation", ""}


def read_pptx(path: Path, source: str) -> list[Document]:
    """A presentation: one section a slide, headed by its title ("Slide N" when it has none), its page
    the slide number; body text (bullets "- item"), tables (rows), then the speaker notes."""
    data = read_bytes(path)
    open_package(data, "PPTX")
    import pptx  # python-pptx

    deck = _with_library("PPTX", lambda: pptx.Presentation(io.BytesIO(data)))
    sections: list[Section] = []
    first_title = ""
    empty = 0
    slides = _with_library("PPTX", lambda: list(deck.slides))
    for number, slide in enumerate(slides, 1):
        title, text = _with_library("PPTX", _slide_text, slide)
        if number == 1:
            first_title = title
        if not text:
            empty += 1
            continue
        sections.append(Section((title or f"Slide {number}",), text, (PageMark(0, number),)))
    core = _with_library("PPTX", lambda: (deck.core_properties.title or "").strip())
    title = first_title or (core if core.lower() not in _DEFAULT_DECK_TITLES else "") or path.stem
    notes = (f"{empty} slide{'s' if empty > 1 else ''} without body text skipped",) if empty and sections else ()
    return _document(source, title, sections, "PPTX", page_unit="slide", page_count=len(slides), notes=notes)


def _slide_text(slide: Any) -> tuple[str, str]:
    from pptx.enum.shapes import PP_PLACEHOLDER

    title_shape = slide.shapes.title
    title = ""
    if title_shape is not None and title_shape.has_text_frame:
        title = re.sub(r"\s+", " ", title_shape.text_frame.text).strip()
    skipped = {PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.HEADER}
    blocks = []
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if shape.is_placeholder and shape.placeholder_format.type in skipped:
            continue
        blocks.extend(_shape_blocks(shape))
    if slide.has_notes_slide:
        frame = slide.notes_slide.notes_text_frame
        notes = "\n".join(t for p in frame.paragraphs if (t := _pptx_paragraph(p))) if frame is not None else ""
        if notes:
            blocks.append("Notes: " + notes)
    return title, "\n\n".join(b for b in blocks if b.strip())


def _reading_order(shapes: Iterable[Any]) -> list[Any]:
    """Shapes top to bottom, left to right (their order in the file is the drawing order)."""
    return sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))


def _shape_blocks(shape: Any) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [b for inner in _reading_order(shape.shapes) for b in _shape_blocks(inner)]
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = []
        for row in shape.table.rows:
            rows.append(_row_line(re.sub(r"\s+", " ", c.text_frame.text) for c in row.cells if not c.is_spanned))
        return table_blocks(rows)
    if not shape.has_text_frame:
        return []
    bulleted = shape.is_placeholder and shape.placeholder_format.type in (
        PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.VERTICAL_BODY, PP_PLACEHOLDER.VERTICAL_OBJECT)
    return _frame_blocks(shape.text_frame, bulleted)


def _frame_blocks(frame: Any, bulleted: bool) -> list[str]:
    """A text frame's paragraphs as one block of lines: bullets "- item", numbered items "1. item"
    (indented by level), other paragraphs as they are."""
    lines = []
    counters = _Counters()
    for paragraph in frame.paragraphs:
        text = _pptx_paragraph(paragraph)
        if not text:
            continue
        ppr = paragraph._p.pPr
        level = paragraph.level
        kind, start = _bullet_kind(ppr, "bullet" if bulleted else "")
        if kind == "number":
            lines.append("  " * level + f"{counters.next('', level, start)}. {text}")
        elif kind == "bullet":
            counters.reset("")
            lines.append("  " * level + "- " + text)
        else:
            counters.reset("")
            lines.append(text)
    return ["\n".join(lines)] if lines else []


def _bullet_kind(ppr: Any, kind: str) -> tuple[str, int]:
    """("number", its start), ("bullet", 1) or ("", 1) for a paragraph's properties; `kind` where they
    say nothing."""
    start = 1
    if ppr is not None:
        if ppr.find(f"{A}buNone") is not None:
            kind = ""
        elif (auto := ppr.find(f"{A}buAutoNum")) is not None:
            kind = "number"
            start = _int(auto.get("startAt"), 1)
        elif ppr.find(f"{A}buChar") is not None or ppr.find(f"{A}buBlip") is not None:
            kind = "bullet"
    return kind, start


def _pptx_paragraph(paragraph: Any) -> str:
    return re.sub(r"\s+", " ", paragraph.text.replace("\v", " ")).strip()
