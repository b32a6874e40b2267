"""Office files: Word (DOCX), PowerPoint (PPTX), OpenDocument text (ODT), Excel (XLSX) and CSV, one
reader a module:

- `office_zip`: every zip-based file is checked before a library opens it (`open_package`): its size,
  the number of members, their declared unpacked sizes and compression ratios (zip bombs), that it is
  the kind of file its name says (not a renamed PPTX, text file or password-protected OLE container),
  and that no XML part declares a DTD (entity-expansion "billion laughs" attacks);
- `office_docx`, `office_pptx`, `office_odt`, `office_sheets` (XLSX and CSV): the readers;
- `office_text`: what they share (table rows, list markers, the document returned).

Headings become a heading path as in Markdown (a Title paragraph is the level above Heading 1),
paragraphs are separated by blank lines, list items are lines "- item" or "1. item", and table rows
lines of cells joined by " | " (long tables in blocks that repeat the header row, so that a passage
keeps its column names). Slides are pages: one section a slide, cited as "slide N".
"""

from __future__ import annotations

from qa_app.ingest.readers.office_docx import MC_FALLBACK, W, read_docx
from qa_app.ingest.readers.office_odt import DRAW, OFFICE, STYLE, TB, T, read_odt
from qa_app.ingest.readers.office_pptx import A, read_pptx
from qa_app.ingest.readers.office_sheets import MAX_ROWS, MAX_SCANNED_ROWS, read_csv, read_xlsx
from qa_app.ingest.readers.office_text import MAX_COLUMNS, TABLE_BLOCK_CHARS, table_blocks
from qa_app.ingest.readers.office_zip import (
                                              MAX_FILE_BYTES,
                                              MAX_MEMBERS,
                                              MAX_RATIO,
                                              MAX_UNPACKED_BYTES,
                                              MAX_XML_PROLOG_BYTES,
                                              RATIO_MIN_BYTES,
                                              SAFE_XML,
                                              open_package,
                                              parse_xml,
                                              read_bytes,
                                              read_member,
)

__all__ = ["DRAW", "MAX_COLUMNS", "MAX_FILE_BYTES", "MAX_MEMBERS", "MAX_RATIO", "MAX_ROWS", "MAX_SCANNED_ROWS",
           "MAX_UNPACKED_BYTES", "MAX_XML_PROLOG_BYTES", "MC_FALLBACK", "OFFICE", "RATIO_MIN_BYTES", "SAFE_XML",
           "STYLE", "TABLE_BLOCK_CHARS", "TB", "A", "T", "W", "open_package", "parse_xml", "read_bytes", "read_csv",
           "read_docx", "read_member", "read_odt", "read_pptx", "read_xlsx", "table_blocks"]
