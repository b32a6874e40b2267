"""Opening a PDF with PDFium: the checks that refuse files that are no PDF, truncated, encrypted or
corrupt with the reason, and the lock every use of PDFium holds."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from qa_app.errors import ReadError

try:  # an optional dependency: without it PDFs cannot be read, everything else works
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
except ImportError:  # pragma: no cover - exercised only where the package is missing
    pdfium = None
    pdfium_c = None

# pdfium and pdfium_c (None without the package) are for the reader's other modules too
__all__ = ["_LOCK", "_locked", "_open", "pdfium", "pdfium_c"]

_LOCK = threading.RLock()  # PDFium is not thread-safe: every use of it holds this lock
_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(function: _F) -> _F:
    """Run `function` holding the PDFium lock."""
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return function(*args, **kwargs)
    return cast(_F, run)


def _open(path: Path) -> Any:
    if pdfium is None:
        raise ReadError("PDF support is not installed (pip install pypdfium2)")
    head, tail = _head_and_tail(path)
    if b"%PDF-" not in head:
        raise ReadError(f"not a PDF: starts with {head[:16]!r}" if head else "not a PDF: the file is empty")
    if b"%%EOF" not in tail:
        raise ReadError("truncated or corrupt PDF: no end-of-file marker (%%EOF) at its end")
    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise _open_error(exc) from None
    return doc


def _head_and_tail(path: Path) -> tuple[bytes, bytes]:
    """The file's first KB (where "%PDF-" is) and last two KB (where "%%EOF" is)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 2048))
            tail = fh.read()
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    return head, tail


def _open_error(exc: Any) -> ReadError:
    """Why PDFium could not open the file."""
    code = getattr(exc, "err_code", None)
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        return ReadError("encrypted PDF: it needs a password")
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return ReadError("encrypted PDF: unsupported security handler")
    return ReadError(f"corrupt PDF: {exc}")
