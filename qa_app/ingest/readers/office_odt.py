"""OpenDocument text (ODT): headings (text:h and the Title style), paragraphs, lists with their
numbering, and tables as rows of cells; notes, comments, frames and tables of contents left out."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qa_app.errors import ReadError
from qa_app.ingest.readers.office_text import MAX_COLUMNS, _Counters, _document, _int, _marker, _row_line, table_blocks
from qa_app.ingest.readers.office_zip import _with_library, open_package, parse_xml, read_bytes, read_member
from qa_app.ingest.readers.sections import SectionBuilder
from qa_app.models import Document

_ODF = {
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
T = f"{{{_ODF['text']}}}"
TB = f"{{{_ODF['table']}}}"
OFFICE = f"{{{_ODF['office']}}}"
STYLE = f"{{{_ODF['style']}}}"
DRAW = f"{{{_ODF['draw']}}}"
_ODF_INLINE_SKIP = {f"{T}note", f"{OFFICE}annotation", f"{OFFICE}annotation-end", f"{T}tracked-changes",
                    f"{DRAW}frame", f"{DRAW}custom-shape", f"{T}number"}


class _OdfStyles:
    """Paragraph styles (name -> parent) and list styles (name -> {level: (format, start)})."""

    def __init__(self, *roots: Any) -> None:
        self.parents: dict[str, str] = {}
        self.display: dict[str, str] = {}
        self.lists: dict[str, dict[int, tuple[str, int]]] = {}
        self.paragraph_lists: dict[str, str] = {}
        for root in roots:
            if root is None:
                continue
            for style in root.iter(f"{STYLE}style"):
                name = style.get(f"{STYLE}name") or ""
                self.parents[name] = style.get(f"{STYLE}parent-style-name") or ""
                self.display[name] = style.get(f"{STYLE}display-name") or name
                if style.get(f"{STYLE}list-style-name"):
                    self.paragraph_lists[name] = style.get(f"{STYLE}list-style-name") or ""
            for list_style in root.iter(f"{T}list-style"):
                levels = {}
                for node in list_style:
                    level = _int(node.get(f"{T}level"), 1)
                    if node.tag == f"{T}list-level-style-number":
                        levels[level] = (node.get(f"{STYLE}num-format") or "1", _int(node.get(f"{T}start-value"), 1))
                    else:
                        levels[level] = ("bullet", 1)
                self.lists[list_style.get(f"{STYLE}name") or ""] = levels

    def names(self, name: str) -> Iterator[str]:
        for style in self._chain(name):
            yield self.display.get(style, style).replace("_20_", " ")

    def is_title(self, name: str) -> bool:
        return any(n.lower() == "title" for n in self.names(name))

    def paragraph_list(self, paragraph: Any) -> str:
        """The list style a paragraph's style gives it (lists whose text:list names none)."""
        for name in self._chain(paragraph.get(f"{T}style-name") or ""):
            if name in self.paragraph_lists:
                return self.paragraph_lists[name]
        return ""

    def _chain(self, name: str) -> Iterator[str]:
        seen: set[str] = set()
        while name and name not in seen:
            seen.add(name)
            yield name
            name = self.parents.get(name, "")

    def list_format(self, list_style: str, level: int) -> tuple[str, int]:
        return self.lists.get(list_style, {}).get(level, ("bullet", 1))


def _odf_text(el: Any) -> str:
    """Inline text of an ODF paragraph: spaces, tabs and line breaks as written; notes, comments and
    frames left out."""
    out: list[str] = [el.text or ""]
    for child in el:
        tag = child.tag
        if isinstance(tag, str) and tag not in _ODF_INLINE_SKIP:
            if tag == f"{T}s":
                out.append(" " * min(_int(child.get(f"{T}c"), 1), 100))
            elif tag == f"{T}tab":
                out.append(" ")
            elif tag == f"{T}line-break":
                out.append("\n")
            else:
                out.append(_odf_text(child))
        out.append(child.tail or "")
    return "".join(out)


def read_odt(path: Path, source: str) -> list[Document]:
    """An OpenDocument text: headings (text:h and the Title style), paragraphs, lists and tables."""
    data = read_bytes(path)
    archive = open_package(data, "ODT")
    names = set(archive.namelist())
    if "META-INF/manifest.xml" in names and b"encryption-data" in read_member(archive, "META-INF/manifest.xml", "ODT"):
        raise ReadError("encrypted ODT file (password-protected): save it without a password to read it")
    if "content.xml" not in names:
        raise ReadError("corrupt ODT file: no content.xml")
    content = parse_xml(read_member(archive, "content.xml", "ODT"), "ODT", "content.xml")
    styles_root = parse_xml(read_member(archive, "styles.xml", "ODT"), "ODT", "styles.xml") \
        if "styles.xml" in names else None
    meta_title = _meta_title(archive, names)
    styles = _OdfStyles(styles_root, content)
    body = content.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise ReadError("not an ODT file: no text body")
    text = _OdtBody(styles)
    _with_library("ODT", lambda: text.walk(body))
    title = text.first_title or meta_title or text.first_h1 or path.stem
    return _document(source, title, text.builder.finish(), "ODT")


def _meta_title(archive: zipfile.ZipFile, names: set[str]) -> str:
    """The title in meta.xml (dc:title), "" without one."""
    if "meta.xml" not in names:
        return ""
    meta = parse_xml(read_member(archive, "meta.xml", "ODT"), "ODT", "meta.xml")
    found = meta.find(f".//{{{_ODF['dc']}}}title")
    return re.sub(r"\s+", " ", found.text or "").strip() if found is not None else ""


class _OdtBody:
    """The text body of an ODT into sections; it remembers the first Title and level-1 heading (title
    candidates) and whether the last paragraph was a list item."""

    def __init__(self, styles: _OdfStyles) -> None:
        self.styles = styles
        self.builder = SectionBuilder()
        self.counters = _Counters()
        self.first_title = self.first_h1 = ""
        self.in_list = False

    def walk(self, parent: Any) -> None:
        for node in parent:
            tag = node.tag
            if tag == f"{T}h":
                self.heading(_int(node.get(f"{T}outline-level"), 1), _odf_text(node))
            elif tag == f"{T}p":
                text = _odf_text(node)
                if self.styles.is_title(node.get(f"{T}style-name") or ""):
                    self.heading(0, text)
                else:
                    self.paragraph(text)
            elif tag == f"{T}list":
                self.walk_list(node, 1, "")
            elif tag == f"{TB}table":
                self.table(node)
            elif tag in (f"{T}section", f"{T}index-body", f"{OFFICE}forms") or tag == f"{T}alphabetical-index":
                self.walk(node)
            # table of contents, tracked changes, variable declarations, frames: left out

    def heading(self, level: int, text: str) -> None:
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            self.first_title = self.first_title or (text if level == 0 else "")
            self.first_h1 = self.first_h1 or (text if level == 1 else "")
            self.builder.heading(level, text)
            self.in_list = False

    def paragraph(self, text: str) -> None:
        text = text.strip()
        if text:
            self.builder.add("")
            self.builder.add(text)
            self.builder.add("")
            self.in_list = False

    def table(self, node: Any) -> None:
        self.builder.add("")
        for text in table_blocks(_odf_rows(node)):
            self.builder.add(text)
            self.builder.add("")
        self.in_list = False

    def item(self, line: str) -> None:
        if not self.in_list:
            self.builder.add("")
        self.builder.add(line)
        self.in_list = True

    def walk_list(self, node: Any, depth: int, list_style: str) -> None:
        list_style = node.get(f"{T}style-name") or list_style
        key = list_style or "list"
        if depth == 1 and node.get(f"{T}continue-numbering") != "true" and not node.get(f"{T}continue-list"):
            self.counters.reset(key)
        for entry in node:
            if entry.tag not in (f"{T}list-item", f"{T}list-header"):
                continue
            for child in entry:
                if child.tag in (f"{T}p", f"{T}h"):
                    self.list_paragraph(entry, child, depth, list_style, key)
                elif child.tag == f"{T}list":
                    self.walk_list(child, depth + 1, list_style)

    def list_paragraph(self, entry: Any, child: Any, depth: int, list_style: str, key: str) -> None:
        """A paragraph (or heading) of list item `entry`: an item with its marker (a list header's
        without one), or a heading where the list has no style of its own."""
        text = re.sub(r"\s+", " ", _odf_text(child)).strip()
        if not text:
            return
        if child.tag == f"{T}h" and not list_style:
            self.heading(_int(child.get(f"{T}outline-level"), 1), text)
            return
        fmt, start = self.styles.list_format(list_style or self.styles.paragraph_list(child), depth)
        if entry.tag == f"{T}list-header":
            self.item("  " * (depth - 1) + text)
            return
        start = _int(entry.get(f"{T}start-value"), start) if entry.get(f"{T}start-value") else start
        number = self.counters.next(key, depth, start)
        self.item("  " * (depth - 1) + _marker(fmt, number) + text)


def _odf_rows(table: Any) -> list[str]:
    lines = []
    for row in table.iter(f"{TB}table-row"):
        if _odf_owner_table(row) is not table:
            continue  # a row of a table nested in a cell
        cells = []
        for cell in row:
            if cell.tag == f"{TB}table-cell":
                text = " ".join(t for p in cell.iter(f"{T}p", f"{T}h")
                                if (t := re.sub(r"\s+", " ", _odf_text(p)).strip()))
                repeat = min(_int(cell.get(f"{TB}number-columns-repeated"), 1), MAX_COLUMNS)
                cells.extend([text] * (repeat if text else min(repeat, 1)))
            if len(cells) >= MAX_COLUMNS:
                break
        line = _row_line(cells)
        repeat = min(_int(row.get(f"{TB}number-rows-repeated"), 1), 10) if line else 1
        lines.extend([line] * repeat)
    return lines


def _odf_owner_table(row: Any) -> Any:
    parent = row.getparent()
    while parent is not None and parent.tag != f"{TB}table":
        parent = parent.getparent()
    return parent

