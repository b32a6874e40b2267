"""Spreadsheets and CSV: a workbook one section a worksheet, a CSV file one section, rows as lines of
cells joined by " | " in blocks that repeat the header row; at most MAX_ROWS rows a sheet (a file)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

from qa_app.errors import ReadError
from qa_app.ingest.readers.office_text import MAX_COLUMNS, _document, _row_line, table_blocks
from qa_app.ingest.readers.office_zip import _with_library, open_package, read_bytes
from qa_app.ingest.readers.sections import clean_text
from qa_app.models import Document, Section

MAX_ROWS = 10_000  # non-empty rows a sheet (a CSV file)
MAX_SCANNED_ROWS = 100_000  # rows looked at a sheet, empty ones included


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


def read_csv(path: Path, source: str) -> list[Document]:
    """A CSV file: its rows as lines of cells joined by " | " (delimiter sniffed among , ; tab |);
    long files in blocks that repeat the header row, at most MAX_ROWS rows."""
    data = read_bytes(path)
    text, notes = _decode_csv(data)
    rows: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""), _sniff(text))
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


def _sniff(text: str) -> Any:
    """The CSV dialect of the text's first 64 KB (whole lines), Excel's when it cannot be told."""
    sample = text[: 64 * 1024]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return dialect


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
