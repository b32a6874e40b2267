"""Office files: Word (DOCX), PowerPoint (PPTX), OpenDocument text (ODT), Excel (XLSX) and CSV.

Every zip-based file is checked before a library opens it (`open_package`): its size, the number of
members, their declared unpacked sizes and compression ratios (zip bombs), that it is the kind of file
its name says (not a renamed PPTX, text file or password-protected OLE container), and that no XML part
declares a DTD (entity-expansion "billion laughs" attacks): OOXML and ODF never use one. zipfile stops
a member at its declared size (a lying header fails its CRC), so the declared sizes bound the work.

Headings become a heading path as in Markdown (a Title paragraph is the level above Heading 1),
paragraphs are separated by blank lines, list items are lines "- item" or "1. item", and table rows
lines of cells joined by " | " (long tables in blocks that repeat the header row, so that a passage
keeps its column names). Slides are pages: one section a slide, cited as "slide N".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree  # type: ignore[import-untyped]  # no type information

from qa_app.errors import ReadError
from qa_app.ingest.readers.sections import SectionBuilder, clean_text
from qa_app.models import Document, PageMark, Section

# Hostile or absurd files are refused before any library parses them.
MAX_FILE_BYTES = 100 * 2**20  # the file itself
MAX_UNPACKED_BYTES = 200 * 2**20  # all members of a zip, as their headers declare
MAX_MEMBERS = 10_000  # members of a zip
MAX_RATIO = 100  # unpacked / packed size of one member ...
RATIO_MIN_BYTES = 2 * 2**20  # ... that unpacks to more than this (small parts compress well legitimately)
MAX_XML_PROLOG_BYTES = 2**20  # XML before the root element: where a DTD would be
# Spreadsheets and CSV: what is read of them.
MAX_ROWS = 10_000  # non-empty rows a sheet (a CSV file)
MAX_SCANNED_ROWS = 100_000  # rows looked at a sheet, empty ones included
MAX_COLUMNS = 200  # cells a row
TABLE_BLOCK_CHARS = 500  # rows of a long table go in paragraphs of about this size, each with the header

_R = TypeVar("_R")

SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=True, remove_pis=True)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # the stream of a password-protected OOXML file
_ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": "ODT",
    "application/vnd.oasis.opendocument.text-template": "ODT",
    "application/vnd.oasis.opendocument.presentation": "ODP",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "application/vnd.oasis.opendocument.graphics": "ODG",
    "application/epub+zip": "EPUB",
}
_OOXML_MAIN = [  # the content type of the main part says what an OOXML package is
    ("DOCX", re.compile(rb"(wordprocessingml\.(document|template)|ms-word\.[A-Za-z.]+)\.main\+xml")),
    ("PPTX", re.compile(rb"(presentationml\.(presentation|slideshow|template)|ms-powerpoint\.[A-Za-z.]+)"
                        rb"\.main\+xml")),
    ("XLSX", re.compile(rb"(spreadsheetml\.(sheet|template)|ms-excel\.[A-Za-z.]+)\.main\+xml")),
]
# Encodings an XML part may declare: those in which "<!DOCTYPE" is plain ASCII (or UTF-16/32, decoded).
_XML_ENCODINGS = re.compile(r"(utf-?(8|16|32)(-?[lb]e)?|(us-)?ascii|iso-?8859-\d+|latin-?1|(windows|cp)-?125\d|"
                            r"shift_jis|euc-jp|euc-kr|gb2312|gbk|big5)", re.I)


# ---------------------------------------------------------------------------------------------------
# Safety: the checks every zip-based reader runs first


def read_bytes(path: Path) -> bytes:
    """The file's bytes; too large or unreadable files raise ReadError."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ReadError(f"file too large ({size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB)")
        return path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None


def open_package(data: bytes, kind: str, *, allow_doctype: bool = False) -> zipfile.ZipFile:
    """The zip archive of a `kind` file ("DOCX", "PPTX", "XLSX", "ODT", "EPUB"), after the checks
    against renamed, encrypted, corrupt and hostile files. `allow_doctype` lets XML parts declare a DTD
    without an internal subset (XHTML in EPUB does); entity declarations are always refused."""
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise ReadError(f"encrypted {kind} file (password-protected): save it without a password to read it")
        raise ReadError(f"not {_a(kind)} file: it is a legacy binary Office file (.doc/.xls/.ppt); save it as {kind}")
    if not data.startswith(b"PK"):
        raise ReadError(f"not {_a(kind)} file: {_looks_like(data)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ReadError(f"corrupt {kind} file: damaged zip archive ({exc})") from None
    if len(members) > MAX_MEMBERS:
        raise ReadError(f"refused: {len(members)} members in the zip archive (the limit is {MAX_MEMBERS}; "
                        "a possible zip bomb)")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ReadError(f"refused as a possible zip bomb: the members would unpack to {unpacked / 2**20:.0f} MB "
                        f"(the limit is {MAX_UNPACKED_BYTES // 2**20} MB)")
    for member in members:
        if member.file_size > RATIO_MIN_BYTES and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            ratio = member.file_size / max(member.compress_size, 1)
            raise ReadError(f"refused as a possible zip bomb: {member.filename} would unpack {ratio:.0f} times "
                            f"its packed size (the limit is {MAX_RATIO})")
        if member.flag_bits & 0x1:
            raise ReadError(f"encrypted {kind} file: zip member {member.filename} is encrypted")
    found = _package_kind(archive, kind)
    if found != kind:
        raise ReadError(f"not {_a(kind)} file: " + (f"it is {_a(found)} file" if found else
                                                    "a zip archive without the parts of one"))
    for member in members:
        if not member.is_dir():
            _check_xml_prolog(archive, member, kind, allow_doctype)
    return archive


def _a(name: str) -> str:
    """The name with its article, as it is read aloud: "a DOCX", "an XLSX", "an ODT"."""
    return ("an " if name[:1].upper() in "AEFHILMNORSX" else "a ") + name


def _looks_like(data: bytes) -> str:
    if not data:
        return "the file is empty"
    if data.startswith(b"%PDF"):
        return "it is a PDF file"
    head = data[:4096]
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else ""
        if text and text.lstrip().startswith("<"):
            return "it is an XML or HTML text file, not a zip archive"
        if text:
            return "it is a text file, not a zip archive"
    return "not a zip archive"


def _package_kind(archive: zipfile.ZipFile, wanted: str) -> str | None:
    names = set(archive.namelist())
    try:
        if "mimetype" in names:
            mimetype = archive.read("mimetype")[:200].decode("ascii", "replace").strip()
            return _ODF_TYPES.get(mimetype, mimetype or None)
        if "[Content_Types].xml" in names:
            types = read_member(archive, "[Content_Types].xml", wanted, limit=MAX_XML_PROLOG_BYTES)
            for name, pattern in _OOXML_MAIN:
                if pattern.search(types):
                    return name
            return "Office Open XML"
        if "META-INF/container.xml" in names:
            return "EPUB"
    except KeyError:
        return None
    return None


def read_member(archive: zipfile.ZipFile, name: str | zipfile.ZipInfo, kind: str, limit: int = -1) -> bytes:
    try:
        with archive.open(name) as stream:
            return stream.read(limit)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        label = name.filename if isinstance(name, zipfile.ZipInfo) else name
        raise ReadError(f"corrupt {kind} file: {label}: {exc}") from None


def _check_xml_prolog(archive: zipfile.ZipFile, member: zipfile.ZipInfo, kind: str, allow_doctype: bool) -> None:
    """Refuse a member that looks like XML and declares a DTD before its root element (or, with
    `allow_doctype`, one with an internal subset, where entities would be declared)."""
    chunk = 64 * 1024
    try:
        with archive.open(member) as stream:
            data = stream.read(chunk)
            while True:
                verdict = _prolog_verdict(data, allow_doctype)
                if verdict != "more":
                    break
                more = stream.read(chunk)
                if not more or len(data) >= MAX_XML_PROLOG_BYTES:
                    verdict = "long" if more else "ok"
                    break
                data += more
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise ReadError(f"corrupt {kind} file: {member.filename}: {exc}") from None
    if verdict == "dtd":
        raise ReadError(f"refused: {member.filename} declares a DTD or XML entities (a possible entity-expansion "
                        "attack; Office files never need one)")
    if verdict == "long":
        raise ReadError(f"refused: {member.filename} has more than {MAX_XML_PROLOG_BYTES // 1024} KB before its "
                        "XML root element")
    if verdict.startswith("encoding:"):
        raise ReadError(f"refused: {member.filename} declares an unsupported XML encoding ({verdict[9:]})")


def _prolog_verdict(data: bytes, allow_doctype: bool) -> str:
    """"ok" (not XML, or no DTD), "dtd", "more" (the prolog goes on past `data`), or "encoding:NAME"."""
    text = _decode_xml_head(data)
    if text is None:
        return "ok"
    if text.startswith("\x00encoding:"):
        return text[1:]
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            return "more"
        if text.startswith("<?", i):
            close = "?>"
        elif text.startswith("<!--", i):
            close = "-->"
        elif text.startswith("<!", i):  # in a prolog, only a document type declaration starts so
            if not allow_doctype:
                return "dtd"
            close = ">"
            end = text.find(close, i)
            if "[" in text[i: end if end >= 0 else len(text)] or "<!ENTITY" in text:
                return "dtd"  # an internal subset: where entities are declared
        else:
            return "ok"  # the root element: the prolog is over (or text that is not XML at all)
        end = text.find(close, i + 2)
        if end < 0:
            return "more"
        i = end + len(close)


def _decode_xml_head(data: bytes) -> str | None:
    """The start of an XML member as text, None when it does not start like XML, or "\\0encoding:X"."""
    boms = [(b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xef\xbb\xbf", "utf-8"),
            (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le")]
    patterns = [(b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00<", "utf-16-be"),
                (b"<\x00", "utf-16-le")]
    for mark, codec in boms:
        if data.startswith(mark):
            return data[len(mark):].decode(codec, "replace")
    stripped = data.lstrip(b" \t\r\n")
    for mark, codec in patterns:
        if data.startswith(mark):
            return data.decode(codec, "replace")
    if not stripped.startswith(b"<"):
        if stripped[:4] == b"\x4c\x6f\xa7\x94":  # "<?xm" in EBCDIC
            return "\x00encoding:EBCDIC"
        return None
    text = data.decode("latin-1")
    declared = re.match(r"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']+)", text)
    if declared and not _XML_ENCODINGS.fullmatch(declared.group(1)):
        return "\x00encoding:" + declared.group(1)[:40]
    return text


def _with_library(kind: str, load: Callable[..., _R], *args: Any) -> _R:
    """`load(*args)`: a library's work on a checked package, its errors on a damaged file a ReadError."""
    try:
        return load(*args)
    except ReadError:
        raise
    except Exception as exc:  # a damaged file makes these libraries raise almost anything
        raise ReadError(f"corrupt {kind} file: {type(exc).__name__}: {exc}") from None


def _document(source: str, title: str, sections: list[Section], kind: str, **extra: Any) -> list[Document]:
    if not any(s.text.strip() for s in sections):
        raise ReadError("no text found")
    return [Document(source, "", title, tuple(sections), format=kind.lower(), **extra)]


def table_blocks(rows: list[str], repeat_header: bool = True) -> list[str]:
    """Table rows (one line each) as paragraphs: the whole table when it is short, else blocks of about
    TABLE_BLOCK_CHARS, each after the first starting with the header row (when it is not itself long)."""
    rows = [r for r in rows if r.strip()]
    if not rows:
        return []
    if sum(len(r) + 1 for r in rows) <= TABLE_BLOCK_CHARS:
        return ["\n".join(rows)]
    header = rows[0] if repeat_header and len(rows[0]) <= TABLE_BLOCK_CHARS // 2 else None
    blocks: list[str] = []
    current = [rows[0]]
    size = len(rows[0])
    for row in rows[1:]:
        if size + 1 + len(row) > TABLE_BLOCK_CHARS and (len(current) > 1 or header is None):
            blocks.append("\n".join(current))
            current = [header] if header is not None else []
            size = len(header) if header is not None else 0
        current.append(row)
        size += 1 + len(row)
    blocks.append("\n".join(current))
    return blocks


def _row_line(cells: Iterable[str]) -> str:
    values = [re.sub(r"\s+", " ", c).strip() for c in cells]
    while values and not values[-1]:
        values.pop()
    return " | ".join(values)


def _marker(fmt: str, number: int) -> str:
    """A list item's marker: "- " for bullets, "3. ", "c. ", "iv. " for numbered formats."""
    if fmt in ("decimal", "decimalZero", "1"):
        return f"{number}. "
    if fmt in ("lowerLetter", "a"):
        return f"{_letters(number)}. "
    if fmt in ("upperLetter", "A"):
        return f"{_letters(number).upper()}. "
    if fmt in ("lowerRoman", "i"):
        return f"{_roman(number).lower()}. "
    if fmt in ("upperRoman", "I"):
        return f"{_roman(number)}. "
    if fmt in ("bullet", "none", ""):
        return "- "
    return f"{number}. "


def _letters(n: int) -> str:
    out = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        out = chr(ord("a") + r) + out
    return out or "a"


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                           (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += letters
            n -= value
    return out or str(n)


class _Counters:
    """Numbers of the items of numbered lists, by list and level (deeper levels restart)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def next(self, key: str, level: int, start: int) -> int:
        for other in [k for k in self.counts if k[0] == key and k[1] > level]:
            del self.counts[other]
        number = self.counts.get((key, level), start - 1) + 1
        self.counts[(key, level)] = number
        return number

    def reset(self, key: str) -> None:
        for other in [k for k in self.counts if k[0] == key]:
            del self.counts[other]


# ---------------------------------------------------------------------------------------------------
# DOCX

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
        # numId -> (abstract id, {level: (format, start)})
        self.formats: dict[str, dict[int, tuple[str, int]]] = {}
        if numbering is not None:
            abstract: dict[str, dict[int, tuple[str, int]]] = {}
            for node in numbering.iter(f"{W}abstractNum"):
                levels = {}
                for lvl in node.iter(f"{W}lvl"):
                    levels[_int(lvl.get(f"{W}ilvl"), 0)] = (_val(lvl.find(f"{W}numFmt")) or "decimal",
                                                            _int(_val(lvl.find(f"{W}start")), 1))
                abstract[node.get(f"{W}abstractNumId") or ""] = levels
            for num in numbering.iter(f"{W}num"):
                levels = dict(abstract.get(_val(num.find(f"{W}abstractNumId")) or "", {}))
                for override in num.iter(f"{W}lvlOverride"):
                    level = _int(override.get(f"{W}ilvl"), 0)
                    start = _val(override.find(f"{W}startOverride"))
                    if start is not None and level in levels:
                        levels[level] = (levels[level][0], _int(start, 1))
                self.formats[num.get(f"{W}numId") or ""] = levels

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


def _val(node: Any) -> str | None:
    return None if node is None else node.get(f"{W}val")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


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
    styles = _WordStyles(document.styles.element, numbering)
    builder = SectionBuilder()
    counters = _Counters()
    title_para = first_h1 = ""
    in_list = False

    def paragraph(p: Any) -> None:
        nonlocal title_para, first_h1, in_list
        ppr = p.find(f"{W}pPr")
        sid = _val(ppr.find(f"{W}pStyle")) if ppr is not None else None
        if styles.name(sid).startswith("toc "):
            return  # a line of a table of contents
        boxes: list[Any] = []
        text = _word_text(p, boxes).strip()
        level = styles.heading_level(ppr, sid) if text else None
        if level is not None:
            text = re.sub(r"\s+", " ", text)
            title_para = title_para or (text if level == 0 else "")
            first_h1 = first_h1 or (text if level == 1 else "")
            builder.heading(level, text)
            in_list = False
        elif text and (numbered := styles.numbering(ppr, sid)) is not None:
            num_id, depth, fmt, start = numbered
            number = counters.next(num_id, depth, start)
            if not in_list:
                builder.add("")
            builder.add("  " * depth + _marker(fmt, number) + text.replace("\n", " "))
            in_list = True
        elif text:
            builder.add("")
            builder.add(text)
            builder.add("")
            in_list = False
        for box in boxes:
            for inner in box.iter(f"{W}p"):
                if (inner_text := _word_text(inner).strip()):
                    builder.add("")
                    builder.add(inner_text)
                    builder.add("")
                    in_list = False

    def block(node: Any) -> None:
        nonlocal in_list
        if node.tag == f"{W}p":
            paragraph(node)
        else:
            builder.add("")
            for text in table_blocks(_word_rows(node)):
                builder.add(text)
                builder.add("")
            in_list = False

    def walk() -> None:
        for node in _word_blocks(document.element.body):
            block(node)

    _with_library("DOCX", walk)
    sections = builder.finish()
    core_title = _with_library("DOCX", lambda: (document.core_properties.title or "").strip())
    title = title_para or core_title or first_h1 or path.stem
    return _document(source, title, sections, "DOCX")


def _docx_numbering(document: Any) -> Any:
    from docx.opc.constants import RELATIONSHIP_TYPE as RT

    try:
        return document.part.part_related_by(RT.NUMBERING).element
    except KeyError:
        return None


# ---------------------------------------------------------------------------------------------------
# PPTX

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
    lines = []
    counters = _Counters()
    for paragraph in shape.text_frame.paragraphs:
        text = _pptx_paragraph(paragraph)
        if not text:
            continue
        ppr = paragraph._p.pPr
        level = paragraph.level
        kind = "bullet" if bulleted else ""
        start = 1
        if ppr is not None:
            if ppr.find(f"{A}buNone") is not None:
                kind = ""
            elif (auto := ppr.find(f"{A}buAutoNum")) is not None:
                kind = "number"
                start = _int(auto.get("startAt"), 1)
            elif ppr.find(f"{A}buChar") is not None or ppr.find(f"{A}buBlip") is not None:
                kind = "bullet"
        if kind == "number":
            lines.append("  " * level + f"{counters.next('', level, start)}. {text}")
        elif kind == "bullet":
            counters.reset("")
            lines.append("  " * level + "- " + text)
        else:
            counters.reset("")
            lines.append(text)
    return ["\n".join(lines)] if lines else []


def _pptx_paragraph(paragraph: Any) -> str:
    return re.sub(r"\s+", " ", paragraph.text.replace("\v", " ")).strip()


# ---------------------------------------------------------------------------------------------------
# ODT

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
    meta_title = ""
    if "meta.xml" in names:
        meta = parse_xml(read_member(archive, "meta.xml", "ODT"), "ODT", "meta.xml")
        found = meta.find(f".//{{{_ODF['dc']}}}title")
        meta_title = re.sub(r"\s+", " ", found.text or "").strip() if found is not None else ""
    styles = _OdfStyles(styles_root, content)
    body = content.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise ReadError("not an ODT file: no text body")
    builder = SectionBuilder()
    counters = _Counters()
    firsts = {"title": "", "h1": ""}
    state = {"in_list": False}

    def heading(level: int, text: str) -> None:
        text = re.sub(r"\s+", " ", text).strip()
        if text:
            firsts["title"] = firsts["title"] or (text if level == 0 else "")
            firsts["h1"] = firsts["h1"] or (text if level == 1 else "")
            builder.heading(level, text)
            state["in_list"] = False

    def paragraph(text: str) -> None:
        text = text.strip()
        if text:
            builder.add("")
            builder.add(text)
            builder.add("")
            state["in_list"] = False

    def item(line: str) -> None:
        if not state["in_list"]:
            builder.add("")
        builder.add(line)
        state["in_list"] = True

    def walk_list(node: Any, depth: int, list_style: str) -> None:
        list_style = node.get(f"{T}style-name") or list_style
        key = list_style or "list"
        if depth == 1 and node.get(f"{T}continue-numbering") != "true" and not node.get(f"{T}continue-list"):
            counters.reset(key)
        for entry in node:
            if entry.tag not in (f"{T}list-item", f"{T}list-header"):
                continue
            for child in entry:
                if child.tag in (f"{T}p", f"{T}h"):
                    text = re.sub(r"\s+", " ", _odf_text(child)).strip()
                    if not text:
                        continue
                    if child.tag == f"{T}h" and not list_style:
                        heading(_int(child.get(f"{T}outline-level"), 1), text)
                        continue
                    fmt, start = styles.list_format(list_style or styles.paragraph_list(child), depth)
                    if entry.tag == f"{T}list-header":
                        item("  " * (depth - 1) + text)
                        continue
                    start = _int(entry.get(f"{T}start-value"), start) if entry.get(f"{T}start-value") else start
                    number = counters.next(key, depth, start)
                    item("  " * (depth - 1) + _marker(fmt, number) + text)
                elif child.tag == f"{T}list":
                    walk_list(child, depth + 1, list_style)

    def walk(parent: Any) -> None:
        for node in parent:
            tag = node.tag
            if tag == f"{T}h":
                heading(_int(node.get(f"{T}outline-level"), 1), _odf_text(node))
            elif tag == f"{T}p":
                text = _odf_text(node)
                if styles.is_title(node.get(f"{T}style-name") or ""):
                    heading(0, text)
                else:
                    paragraph(text)
            elif tag == f"{T}list":
                walk_list(node, 1, "")
            elif tag == f"{TB}table":
                builder.add("")
                for text in table_blocks(_odf_rows(node)):
                    builder.add(text)
                    builder.add("")
                state["in_list"] = False
            elif tag in (f"{T}section", f"{T}index-body", f"{OFFICE}forms") or tag == f"{T}alphabetical-index":
                walk(node)
            # table of contents, tracked changes, variable declarations, frames: left out

    _with_library("ODT", lambda: walk(body))
    title = firsts["title"] or meta_title or firsts["h1"] or path.stem
    return _document(source, title, builder.finish(), "ODT")


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


def parse_xml(data: bytes, kind: str, name: str) -> Any:
    try:
        return etree.fromstring(data, SAFE_XML)
    except etree.XMLSyntaxError as exc:
        raise ReadError(f"corrupt {kind} file: {name}: {exc}") from None


# ---------------------------------------------------------------------------------------------------
# XLSX


def read_xlsx(path: Path, source: str) -> list[Document]:
    """A workbook: one section a worksheet, headed by its name, its rows as lines of cells joined by
    " | " (the values Excel last computed for formulas; at most MAX_ROWS rows a sheet)."""
    data = read_bytes(path)
    open_package(data, "XLSX")
    import openpyxl

    book = _with_library("XLSX", lambda: openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True))
    sections: list[Section] = []
    notes: list[str] = []
    try:
        for sheet in _with_library("XLSX", lambda: list(book.worksheets)):
            rows, capped = _with_library("XLSX", _sheet_rows, sheet)
            if capped:
                notes.append(f"sheet {sheet.title!r}: only the first {len(rows)} rows read")
            text = "\n\n".join(table_blocks(rows))
            if text:
                sections.append(Section((sheet.title,), text))
        title = (book.properties.title or "").strip() if book.properties is not None else ""
    finally:
        book.close()
    return _document(source, title or path.stem, sections, "XLSX", notes=tuple(notes))


def _sheet_rows(sheet: Any) -> tuple[list[str], bool]:
    """The sheet's non-empty rows as lines (empty columns left of the data dropped), and whether the
    row limit cut it short."""
    rows: list[list[str]] = []
    capped = False
    for scanned, values in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)):
        if len(rows) >= MAX_ROWS or scanned >= MAX_SCANNED_ROWS:
            capped = True
            break
        cells = [_cell_text(v) for v in values[:MAX_COLUMNS]]
        if any(c.strip() for c in cells):
            rows.append(cells)
    left = min((next(i for i, c in enumerate(r) if c.strip()) for r in rows), default=0)
    return [_row_line(r[left:]) for r in rows], capped


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------------
# CSV


def read_csv(path: Path, source: str) -> list[Document]:
    """A CSV file: its rows as lines of cells joined by " | " (delimiter sniffed among , ; tab |);
    long files in blocks that repeat the header row, at most MAX_ROWS rows."""
    data = read_bytes(path)
    text, notes = _decode_csv(data)
    sample = text[: 64 * 1024]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        for record in reader:
            if len(rows) >= MAX_ROWS:
                notes.append(f"only the first {MAX_ROWS} rows read")
                break
            if line := _row_line(record[:MAX_COLUMNS]):
                rows.append(line)
    except csv.Error as exc:
        raise ReadError(f"not a readable CSV file (line {reader.line_num}): {exc}") from None
    text = clean_text("\n\n".join(table_blocks(rows)))
    sections = [Section((), text)] if text else []
    return _document(source, path.stem, sections, "CSV", notes=tuple(notes))


def _decode_csv(data: bytes) -> tuple[str, list[str]]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text"
        try:
            return data.decode("utf-16"), []
        except UnicodeDecodeError:
            raise ReadError("not a readable CSV file: bad UTF-16") from None
    if b"\x00" in data[:8192]:
        raise ReadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace"), ["not UTF-8: read as Windows-1252"]
