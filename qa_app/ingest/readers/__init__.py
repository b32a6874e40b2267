"""Read files into documents: a title and sections, each with its heading path (and page, where the
format has pages). One reader per format, chosen by the file name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qa_app.errors import ReadError
from qa_app.ingest.readers.epub import read_epub
from qa_app.ingest.readers.html import parse_html
from qa_app.ingest.readers.jsonl import beir_records, parse_jsonl
from qa_app.ingest.readers.markup import parse_markdown, parse_rst, parse_text
from qa_app.ingest.readers.office import read_csv, read_docx, read_odt, read_pptx, read_xlsx
from qa_app.ingest.readers.pdf import read_pdf
from qa_app.models import Document, Section

__all__ = ["FORMATS", "ReadError", "beir_records", "kind_of", "parse_html", "parse_markdown", "parse_rst",
           "parse_text", "read_documents", "read_text"]

# file suffix -> format
FORMATS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
           ".rst": "rst", ".html": "html", ".htm": "html", ".jsonl": "jsonl",
           ".docx": "docx", ".pptx": "pptx", ".epub": "epub", ".odt": "odt", ".xlsx": "xlsx", ".csv": "csv",
           ".pdf": "pdf"}

# Formats that are not text, read from the file by their own module: format -> read(path, source).
# Each reader module adds its line here.
FileReader = Callable[[Path, str], list[Document]]
FILE_READERS: dict[str, FileReader] = {
    "docx": read_docx, "pptx": read_pptx, "epub": read_epub, "odt": read_odt, "xlsx": read_xlsx, "csv": read_csv,
    "pdf": read_pdf,
}

# Readers that report each page as they read it: read(path, source, progress=progress(done, total)).
PagedReader = Callable[..., list[Document]]
PAGED_READERS: dict[str, PagedReader] = {"pdf": read_pdf}

TextParser = Callable[[str], tuple[str, list[Section]]]
TEXT_PARSERS: dict[str, TextParser] = {"text": parse_text, "markdown": parse_markdown, "rst": parse_rst,
                                       "html": parse_html}


def kind_of(path: Path) -> str | None:
    """The format of a file, by its name, or None when it is not supported."""
    name = path.name.lower()
    if name.endswith(".rst.txt"):  # Sphinx ships its reST sources under this name
        return "rst"
    return FORMATS.get(path.suffix.lower())


def read_text(path: Path) -> str:
    """The file's text; binary or non-UTF-8 files raise ReadError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise ReadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text (byte {exc.start})") from None


def read_documents(path: Path, source: str, *, progress: Callable[[int, int], None] | None = None) -> list[Document]:
    """All documents in one file: one per file, or one per line of a JSONL file. `progress(done, total)`
    hears of each page as it is read, where the reader counts pages (PAGED_READERS)."""
    kind = kind_of(path)
    if kind is None:
        raise ReadError(f"unsupported file type {path.suffix or '(none)'}")
    if progress is not None and kind in PAGED_READERS:
        return PAGED_READERS[kind](path, source, progress=progress)
    if kind in FILE_READERS:
        return FILE_READERS[kind](path, source)
    text = read_text(path)
    if kind == "jsonl":
        return list(parse_jsonl(text, source))
    title, sections = TEXT_PARSERS[kind](text)
    return [Document(source, "", title or _title_from_name(path), tuple(sections), format=kind)]


def _title_from_name(path: Path) -> str:
    name = path.name
    if name.lower().endswith(".rst.txt"):
        return name[: -len(".rst.txt")]
    return path.stem
