"""Pages without a text layer that show an image (scans), OCRed with the `tesseract` binary when it is
installed: its words become lines in PDF points like the text layer's, so that the rest of the reader
treats them alike."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from qa_app.ingest.readers.pdf_file import pdfium_c
from qa_app.ingest.readers.pdf_model import _Line, _Seg

OCR_DPI = 300
OCR_TIMEOUT_S = 120.0  # one page through tesseract
OCR_LANGUAGE = "eng"

_Word = tuple[float, float, float, float, str]  # x0, x1, bottom, top (PDF points), text
_WordKey = tuple[int, int, int]  # tesseract's (block, paragraph, line)


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


def _page_has_image(page: Any) -> bool:
    for k in range(pdfium_c.FPDFPage_CountObjects(page.raw)):
        obj = pdfium_c.FPDFPage_GetObject(page.raw, k)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE or kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            return True
    return False


def _render_gray(page: Any, dpi: int) -> tuple[bytes, int, int]:
    bitmap = page.render(scale=dpi / 72, grayscale=True)
    try:
        width, height, stride = bitmap.width, bitmap.height, bitmap.stride
        data = bytes(bitmap.buffer)
        channels = bitmap.n_channels
    finally:
        bitmap.close()
    if channels != 1:  # PDFium may refuse 8-bit output for some pages
        rows = []
        for y in range(height):
            row = data[y * stride: y * stride + width * channels]
            rows.append(row[1::channels])  # green channel
        return b"".join(rows), width, height
    if stride != width:
        data = b"".join(data[y * stride: y * stride + width] for y in range(height))
    return data, width, height


def _ocr_lines(pixels: bytes, width: int, height: int, page_no: int, page_height: float) -> list[_Line]:
    """The lines tesseract reads on a page rendered at OCR_DPI (8-bit gray pixels), in PDF points like
    the text layer's lines so that the rest of the reader treats them alike; [] when it fails."""
    tsv = _run_tesseract(pixels, width, height)
    if tsv is None:
        return []
    words = _ocr_words(tsv, page_height)
    par_size = _paragraph_sizes(words)
    return [_ocr_line(words[key], par_size[key[:2]], key, page_no) for key in sorted(words)]


def _run_tesseract(pixels: bytes, width: int, height: int) -> bytes | None:
    """tesseract's TSV output for the image, None when it fails or times out."""
    image = b"P5\n%d %d\n255\n" % (width, height) + pixels
    env = dict(os.environ, OMP_THREAD_LIMIT="1")  # one thread: the machine's other work goes on
    try:
        done = subprocess.run(["tesseract", "stdin", "stdout", "-l", OCR_LANGUAGE, "--dpi", str(OCR_DPI), "tsv"],
                              input=image, capture_output=True, timeout=OCR_TIMEOUT_S, env=env, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def _ocr_words(tsv: bytes, page_height: float) -> dict[_WordKey, list[_Word]]:
    """The words of tesseract's TSV by line, their boxes in PDF points (origin bottom-left)."""
    k = 72.0 / OCR_DPI
    words: dict[_WordKey, list[_Word]] = {}
    for row in tsv.decode("utf-8", "replace").splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        left, top, w, h = (int(c) for c in cols[6:10])
        key = (int(cols[2]), int(cols[3]), int(cols[4]))
        words.setdefault(key, []).append((left * k, (left + w) * k, page_height - (top + h) * k,
                                          page_height - top * k, cols[11]))
    return words


def _paragraph_sizes(words: dict[_WordKey, list[_Word]]) -> dict[tuple[int, int], float]:
    """One size per paragraph: word heights vary with ascenders and descenders."""
    par_heights: dict[tuple[int, int], list[float]] = {}
    for (block, par, _line), found in words.items():
        par_heights.setdefault((block, par), []).extend(t - b for _, _, b, t, _ in found)
    return {key: max(1.0, sorted(h)[(3 * len(h)) // 4]) for key, h in par_heights.items()}


def _ocr_line(found: list[_Word], size: float, key: _WordKey, page_no: int) -> _Line:
    """One line of OCRed words: words closer than a wide gap in one segment."""
    segs: list[_Seg] = []
    for x0, x1, _b, _t, text in found:
        if segs and x0 - segs[-1].x1 <= 1.4 * size:
            segs[-1].text += " " + text
            segs[-1].x1 = x1
        else:
            segs.append(_Seg(x0, x1, text))
    line = _Line(page_no, segs[0].x0, segs[-1].x1, min(b for _, _, b, _, _ in found),
                 max(t for _, _, _, t, _ in found), round(size * 2) / 2, False, False, segs)
    line.ends_hyphen = segs[-1].text.endswith("-")
    line.ocr_par = key[:2]
    return line
