"""Running headers and footers: lines in the top or bottom band of a page at a position shared by many
pages that repeat (digits aside) or carry the page's number, and lines that are only a page number."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

from qa_app.ingest.readers.pdf_model import _Line, _Page

HEADER_FOOTER_BAND = 0.12  # top and bottom share of the page where running headers and footers live

_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-\u2013(]?\s*([0-9]{1,4}|[ivxlcdm]{1,7})\s*[-\u2013)]?"
                          r"(?:\s*(?:/|of)\s*[0-9]{1,4})?$", re.IGNORECASE)

_Candidate = tuple[str, _Line, _Page]  # (zone "top" or "bottom", line, its page)


def _is_page_number(text: str) -> bool:
    return bool(_PAGE_NUMBER.match(text.strip()))


def _digits_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", text.lower())).strip()


def _remove_running(pages: list[_Page]) -> None:
    """Mark running headers, footers and page-number lines as dropped."""
    candidates = _band_candidates(pages)
    text_pages = sum(1 for p in pages if p.blocks)
    if text_pages < 2:
        for _, ln, _ in candidates:
            if _is_page_number(ln.text):
                ln.kind = "drop"
        return
    band_count = _band_counter(candidates)
    keys = Counter((zone, _digits_key(ln.text)) for zone, ln, _ in candidates)
    need = max(2, math.ceil(0.3 * text_pages))
    for zone, ln, page in candidates:
        text = ln.text
        if _is_page_number(text):
            ln.kind = "drop"
            continue
        repeated = keys[(zone, _digits_key(text))] >= max(2, min(3, text_pages // 2))
        bands = band_count(zone, ln.base)
        if (repeated and bands >= 2) or (bands >= need and _carries_page_number(text, page)):
            ln.kind = "drop"


def _band_candidates(pages: list[_Page]) -> list[_Candidate]:
    """The two top and two bottom lines of each page that lie in its header or footer band."""
    candidates: list[_Candidate] = []
    for page in pages:
        lines = [ln for block in page.blocks for ln in block]
        if not lines:
            continue
        by_y = sorted(lines, key=lambda ln: -ln.base)
        for zone, chosen in (("top", by_y[:2]), ("bottom", by_y[-2:])):
            for ln in chosen:
                in_band = ln.base > (1 - HEADER_FOOTER_BAND) * page.height if zone == "top" \
                    else ln.base < HEADER_FOOTER_BAND * page.height
                if in_band:
                    candidates.append((zone, ln, page))
    return candidates


def _band_counter(candidates: list[_Candidate]) -> Callable[[str, float], int]:
    """How many pages have a candidate in `zone` at about baseline `base` (to 2 pt, a step either way)."""
    band_pages: dict[tuple[str, int], set[int]] = {}
    for zone, ln, page in candidates:
        band_pages.setdefault((zone, round(ln.base / 2)), set()).add(page.number)

    def band_count(zone: str, base: float) -> int:
        k = round(base / 2)
        found: set[int] = set()
        for kk in (k - 1, k, k + 1):
            found |= band_pages.get((zone, kk), set())
        return len(found)

    return band_count


def _carries_page_number(text: str, page: _Page) -> bool:
    """Does the line begin or end with its page's number (or printed label)?"""
    tokens = text.replace("|", " ").split()
    numbers = {str(page.number), page.label} - {""}
    return bool(tokens) and (tokens[0] in numbers or tokens[-1] in numbers)
