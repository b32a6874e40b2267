"""Word (DOCX): sections under the heading path of its Heading/Title paragraphs, list items as lines
"- item" or "1. item", tables as rows of cells; text boxes after their paragraph. Deleted revisions,
field codes, hidden runs, tables of contents and the fallback copies of drawings are left out."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qa_app.ingest.readers.office_text import _Counters, _document, _int, _marker, _row_line, table_blocks
from qa_app.ingest.readers.office_zip import _with_library, open_package, read_bytes
from qa_app.ingest.readers.sections import SectionBuilder
from qa_app.models import Document

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_HEADING_NAME = re.compile(r"heading ([1-9])", re.I)


class _WordStyles:
    """Paragraph styles of a DOCX: name, parent, outline level and list numbering, by style id."""

    def __init__(self, root: Any, numbering: Any) -> None:
        self.styles: dict[str, dict[str, Any]] = {}
        self.default = ""
        for style in root.iter(f"{W}style"):
            if style.get(f"{W}type") != "paragraph":
                continue
            sid = style.get(f"{W}styleId") or ""
            ppr = style.find(f"{W}pPr")
            self.styles[sid] = {"name": _val(style.find(f"{W}name")) or sid,
                                "based": _val(style.find(f"{W}basedOn")),
                                "outline": _val(ppr.find(f"{W}outlineLvl")) if ppr is not None else None,
                                "num": _num_pr(ppr)}
            if style.get(f"{W}default") in ("1", "true", "on"):
                self.default = sid
        # numId -> {level: (format, start)}
        self.formats: dict[str, dict[int, tuple[str, int]]] = {}
        if numbering is not None:
            self.formats = _numbering_formats(numbering)

    def chain(self, sid: str | None) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        sid = sid if sid in self.styles else self.default
        while sid and sid in self.styles and sid not in seen:
            seen.add(sid)
            yield self.styles[sid]
            sid = self.styles[sid]["based"]

    def name(self, sid: str | None) -> str:
        for style in self.chain(sid):
            return str(style["name"]).lower()
        return ""

    def heading_level(self, ppr: Any, sid: str | None) -> int | None:
        """0 for a Title, 1-9 for headings, None for body text."""
        direct = _val(ppr.find(f"{W}outlineLvl")) if ppr is not None else None
        if direct is not None:
            return _int(direct, 9) + 1 if _int(direct, 9) < 9 else None
        name = self.name(sid)
        if name == "title":
            return 0
        if m := _HEADING_NAME.fullmatch(name):
            return int(m.group(1))
        for style in self.chain(sid):
            if style["outline"] is not None:
                level = _int(style["outline"], 9)
                return level + 1 if level < 9 else None
        return None

    def numbering(self, ppr: Any, sid: str | None) -> tuple[str, int, str, int] | None:
        """(numId, level, format, start) of a list paragraph, else None."""
        num = _num_pr(ppr)
        if num is None:
            for style in self.chain(sid):
                if style["num"] is not None:
                    num = style["num"]
                    break
        if num is None or num[0] in ("", "0"):
            return None
        num_id, level = num[0], num[1] if num[1] is not None else 0
        fmt, start = self.formats.get(num_id, {}).get(level, ("bullet", 1))
        return num_id, level, fmt, start


def _numbering_formats(numbering: Any) -> dict[str, dict[int, tuple[str, int]]]:
    """The list formats of each numbering (numId): its abstract numbering's levels, with their overrides."""
    formats: dict[str, dict[int, tuple[str, int]]] = {}
    abstract = _abstract_levels(numbering)
    for num in numbering.iter(f"{W}num"):
        levels = dict(abstract.get(_val(num.find(f"{W}abstractNumId")) or "", {}))
        for override in num.iter(f"{W}lvlOverride"):
            level = _int(override.get(f"{W}ilvl"), 0)
            start = _val(override.find(f"{W}startOverride"))
            if start is not None and level in levels:
                levels[level] = (levels[level][0], _int(start, 1))
        formats[num.get(f"{W}numId") or ""] = levels
    return formats


def _abstract_levels(numbering: Any) -> dict[str, dict[int, tuple[str, int]]]:
    """abstractNumId -> {level: (format, start)}"""
    abstract: dict[str, dict[int, tuple[str, int]]] = {}
    for node in numbering.iter(f"{W}abstractNum"):
        levels = {}
        for lvl in node.iter(f"{W}lvl"):
            levels[_int(lvl.get(f"{W}ilvl"), 0)] = (_val(lvl.find(f"{W}numFmt")) or "decimal",
                                                    _int(_val(lvl.find(f"{W}start")), 1))
        abstract[node.get(f"{W}abstractNumId") or ""] = levels
    return abstract


def _val(node: Any) -> str | None:
    return None if node is None else node.get(f"{W}val")


def _num_pr(ppr: Any) -> tuple[str, int | None] | None:
    if ppr is None or (num := ppr.find(f"{W}numPr")) is None:
        return None
    num_id = _val(num.find(f"{W}numId"))
    level = _val(num.find(f"{W}ilvl"))
    return (num_id or "", _int(level, 0) if level is not None else None)


def _word_text(node: Any, boxes: list[Any] | None = None) -> str:
    """The visible text of a paragraph (or run): deleted revisions, field codes, hidden runs and the
    fallback copies of drawings left out; text boxes collected in `boxes`."""
    out: list[str] = []

    def walk(el: Any) -> None:
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag == f"{W}t":
                out.append(child.text or "")
            elif tag in (f"{W}tab", f"{W}ptab"):
                out.append(" ")
            elif tag in (f"{W}br", f"{W}cr"):
                out.append(" " if child.get(f"{W}type") in ("page", "column") else "\n")
            elif tag == f"{W}noBreakHyphen":
                out.append("-")
            elif tag in (f"{W}del", f"{W}moveFrom", MC_FALLBACK, f"{W}rPr", f"{W}pPr"):
                continue
            elif tag == f"{W}txbxContent":
                if boxes is not None:
                    boxes.append(child)
            elif tag == f"{W}r" and (rpr := child.find(f"{W}rPr")) is not None \
                    and rpr.find(f"{W}vanish") is not None and _val(rpr.find(f"{W}vanish")) not in ("0", "false"):
                continue
            else:
                walk(child)

    walk(node)
    return "".join(out)


def _word_blocks(parent: Any) -> Iterator[Any]:
    """The paragraphs and tables of a body or cell, in order; content controls and custom XML opened,
    tables of contents left out."""
    for child in parent:
        tag = child.tag
        if tag in (f"{W}p", f"{W}tbl"):
            yield child
        elif tag == f"{W}sdt":
            gallery = child.find(f"{W}sdtPr/{W}docPartObj/{W}docPartGallery")
            if gallery is not None and (_val(gallery) or "").lower().startswith("table of contents"):
                continue
            content = child.find(f"{W}sdtContent")
            if content is not None:
                yield from _word_blocks(content)
        elif tag in (f"{W}customXml", f"{W}smartTag", f"{W}ins", f"{W}moveTo"):
            yield from _word_blocks(child)


def _word_rows(table: Any) -> list[str]:
    """One line a row; a vertically merged cell repeats its value in the rows it spans."""
    lines = []
    above: dict[int, str] = {}
    for tr in _word_children(table, f"{W}tr"):
        cells = []
        column = _int(_val(tr.find(f"{W}trPr/{W}gridBefore")), 0)
        for tc in _word_children(tr, f"{W}tc"):
            span = max(1, _int(_val(tc.find(f"{W}tcPr/{W}gridSpan")), 1))
            merge = tc.find(f"{W}tcPr/{W}vMerge")
            if merge is not None and _val(merge) != "restart":
                text = above.get(column, "")
            else:
                paragraphs = [_word_text(p) for p in tc.iter(f"{W}p") if not _inside_fallback(p, tc)]
                text = " ".join(t.strip() for t in paragraphs if t.strip())
            above[column] = text
            cells.append(text)
            column += span
        lines.append(_row_line(cells))
    return lines


def _word_children(parent: Any, tag: str) -> Iterator[Any]:
    for child in parent:
        if child.tag == tag:
            yield child
        elif child.tag in (f"{W}sdt", f"{W}sdtContent", f"{W}customXml"):
            yield from _word_children(child, tag)


def _inside_fallback(node: Any, stop: Any) -> bool:
    parent = node.getparent()
    while parent is not None and parent is not stop:
        if parent.tag == MC_FALLBACK:
            return True
        parent = parent.getparent()
    return False


def read_docx(path: Path, source: str) -> list[Document]:
    """A Word document: sections under the heading path of its Heading/Title paragraphs. No pages: a
    DOCX does not store its pagination (only the last one Word rendered, when Word saved it)."""
    data = read_bytes(path)
    open_package(data, "DOCX")
    import docx  # python-docx, imported when first needed

    document = _with_library("DOCX", lambda: docx.Document(io.BytesIO(data)))
    numbering = _with_library("DOCX", lambda: _docx_numbering(document))
    body = _DocxBody(_WordStyles(document.styles.element, numbering))
    _with_library("DOCX", lambda: body.walk(document.element.body))
    sections = body.builder.finish()
    core_title = _with_library("DOCX", lambda: (document.core_properties.title or "").strip())
    title = body.title_para or core_title or body.first_h1 or path.stem
    return _document(source, title, sections, "DOCX")


class _DocxBody:
    """The paragraphs and tables of a DOCX body into sections; it remembers the first Title and Heading 1
    (title candidates) and whether the last paragraph was a list item."""

    def __init__(self, styles: _WordStyles) -> None:
        self.styles = styles
        self.builder = SectionBuilder()
        self.counters = _Counters()
        self.title_para = self.first_h1 = ""
        self.in_list = False

    def walk(self, body: Any) -> None:
        for node in _word_blocks(body):
            self.block(node)

    def block(self, node: Any) -> None:
        if node.tag == f"{W}p":
            self.paragraph(node)
        else:
            self.builder.add("")
            for text in table_blocks(_word_rows(node)):
                self.builder.add(text)
                self.builder.add("")
            self.in_list = False

    def paragraph(self, p: Any) -> None:
        ppr = p.find(f"{W}pPr")
        sid = _val(ppr.find(f"{W}pStyle")) if ppr is not None else None
        if self.styles.name(sid).startswith("toc "):
            return  # a line of a table of contents
        boxes: list[Any] = []
        text = _word_text(p, boxes).strip()
        level = self.styles.heading_level(ppr, sid) if text else None
        if level is not None:
            self._heading(level, text)
        elif text and (numbered := self.styles.numbering(ppr, sid)) is not None:
            self._item(numbered, text)
        elif text:
            self._plain(text)
        for box in boxes:
            for inner in box.iter(f"{W}p"):
                if (inner_text := _word_text(inner).strip()):
                    self._plain(inner_text)

    def _heading(self, level: int, text: str) -> None:
        text = re.sub(r"\s+", " ", text)
        self.title_para = self.title_para or (text if level == 0 else "")
        self.first_h1 = self.first_h1 or (text if level == 1 else "")
        self.builder.heading(level, text)
        self.in_list = False

    def _item(self, numbered: tuple[str, int, str, int], text: str) -> None:
        num_id, depth, fmt, start = numbered
        number = self.counters.next(num_id, depth, start)
        if not self.in_list:
            self.builder.add("")
        self.builder.add("  " * depth + _marker(fmt, number) + text.replace("\n", " "))
        self.in_list = True

    def _plain(self, text: str) -> None:
        self.builder.add("")
        self.builder.add(text)
        self.builder.add("")
        self.in_list = False


def _docx_numbering(document: Any) -> Any:
    from docx.opc.constants import RELATIONSHIP_TYPE as RT

    try:
        return document.part.part_related_by(RT.NUMBERING).element
    except KeyError:
        return None

