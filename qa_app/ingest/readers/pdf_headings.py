"""The document's title and its headings: from the outline (bookmarks), each placed on the line that
carries it, else from fonts (short lines clearly larger than the body text, and bold body-size lines
standing alone)."""

from __future__ import annotations

import math
import re
from typing import Any

from qa_app.ingest.readers.pdf_model import _Line, _Page
from qa_app.ingest.readers.pdf_text import _BULLET, normalize

_NUMBER_PREFIX = re.compile(r"^(?:(?:chapter|appendix|section|part)\s+)?(?:[0-9a-z]{1,3}(?:[.\-][0-9]{1,3})*)?[.:]?\s*$",
                            re.IGNORECASE)

_Bookmark = tuple[int, str, int, float | None]  # (level, title, page index, y or None)
_Inserts = dict[int, list[tuple[int, str]]]  # item position -> the headings (level, title) before it

# ---------------------------------------------------------------------------------------------------
# The title


def _metadata_title(doc: Any) -> str:
    """The Title of the document information, unless it is empty or a placeholder."""
    try:
        title = normalize(doc.get_metadata_value("Title") or "").strip()
    except Exception:  # a broken information dictionary: no title from it
        return ""
    lowered = title.lower()
    if lowered in {"untitled", "untitled document"} or lowered.startswith("microsoft word") \
            or re.search(r"\.(docx?|odt|tex|dvi|pdf)$", lowered):
        return ""
    return title


def _cover_title(pages: list[_Page], body_size: float) -> str:
    """The largest short line on the first page with text, when it stands out from the body text."""
    for page in pages[:3]:
        lines = [ln for block in page.blocks for ln in block if ln.kind != "drop" and 0 < len(ln.text.split()) <= 15]
        if not page.blocks:
            continue
        if lines:
            best = max(lines, key=lambda ln: ln.size)
            if best.size >= 1.3 * body_size:
                return best.text
        return ""
    return ""


# ---------------------------------------------------------------------------------------------------
# Headings from the outline


def _norm_title(text: str) -> str:
    return re.sub(r"\s+", " ", normalize(text)).strip().lower()


def _outline(doc: Any) -> list[_Bookmark]:
    """(level, title, page index, y or None) for each bookmark that points into the document."""
    out = []
    try:
        for mark in doc.get_toc(max_depth=16):
            title = normalize(mark.get_title() or "").strip()
            dest = mark.get_dest()
            if not title or dest is None:
                continue
            index = dest.get_index()
            if index is None or not 0 <= index < len(doc):
                continue
            out.append((mark.level, title, index, _bookmark_y(dest)))
    except Exception:
        return []
    return out


def _bookmark_y(dest: Any) -> float | None:
    """The height on its page a bookmark's destination shows, when it names one."""
    try:
        _mode, view = dest.get_view()
        if view and len(view) >= 2 and view[1] and not math.isnan(view[1]):
            return float(view[1])
    except Exception:
        return None
    return None


def _heading_item(level: int, title: str) -> _Line:
    """A heading in the list of lines: where it stands, its section begins."""
    return _Line(0, 0.0, 0.0, 0.0, 0.0, 0.0, False, False, [], text=title, kind="heading", heading=(level, title))


def _heading_match(text: str, want: str) -> bool:
    """Is `text` (a line, normalized) the bookmark title `want`, maybe after its number ("1.2", "B.1")?"""
    return text == want or (text.endswith(want) and bool(_NUMBER_PREFIX.match(text[: -len(want)])))


def _heading_prefix(text: str, want: str) -> bool:
    """Could `text` be the first line of the title `want` broken over several lines?"""
    if len(text) < 3:
        return False
    if want.startswith(text):
        return True
    rest = _strip_number(text)
    return bool(rest) and want.startswith(rest)


def _strip_number(text: str) -> str:
    parts = text.split(" ", 1)
    if len(parts) == 2 and _NUMBER_PREFIX.match(parts[0] + " "):
        return parts[1]
    return ""


def _find_heading_line(items: list[_Line], candidates: list[int], want: str) -> tuple[int, list[int], str] | None:
    """(position among candidates, items consumed, heading text) of the lines that carry title `want`."""
    for n, k in enumerate(candidates):
        line = items[k]
        text = _norm_title(line.text)
        if _heading_match(text, want):
            return n, [k], line.text
        if _heading_prefix(text, want):
            joined, consumed = line.text, [k]
            for k2 in candidates[n + 1: n + 4]:
                joined += " " + items[k2].text
                consumed.append(k2)
                nj = _norm_title(joined)
                if _heading_match(nj, want):
                    return n, consumed, joined
                if not _heading_prefix(nj, want):
                    break
    return None


def _place_outline(items: list[_Line], outline: list[_Bookmark], body_size: float) -> list[_Line]:
    """Insert the outline's headings where their lines are (those lines become the headings); a
    bookmark without such a line starts its section at its position on the page."""
    by_page: dict[int, list[int]] = {}
    for k, item in enumerate(items):
        if item.kind != "heading":
            by_page.setdefault(item.page, []).append(k)
    inserts: _Inserts = {}
    used: set[int] = set()
    for mark in outline:
        target, heading = _place_bookmark(items, by_page, used, mark, body_size)
        inserts.setdefault(target, []).append(heading)
    return _insert_headings(items, inserts)


def _place_bookmark(items: list[_Line], by_page: dict[int, list[int]], used: set[int], mark: _Bookmark,
                    body_size: float) -> tuple[int, tuple[int, str]]:
    """Where the bookmark's heading goes among the items, and the heading (level, title). The lines
    that carry it are dropped (and marked `used`)."""
    level, title, index, y = mark
    found = _bookmark_lines(items, by_page, used, mark, body_size)
    if found is None:  # no line carries it: the heading starts at its position on the page
        return _position_on_page(items, by_page, index + 1, y), (level, title)
    consumed, heading_text = found
    used.update(consumed)
    for k2 in consumed:
        items[k2].kind = "drop"
    heading_text = re.sub(r"\s+", " ", heading_text).strip()
    # the line's wording keeps the section number; a title in capitals reads better as bookmarked
    use = title if heading_text.isupper() and not title.isupper() else heading_text
    return consumed[0], (level, use)


def _bookmark_lines(items: list[_Line], by_page: dict[int, list[int]], used: set[int], mark: _Bookmark,
                    body_size: float) -> tuple[list[int], str] | None:
    """The lines (not yet used) on the bookmark's page that carry its title, and their text: near its
    position first, then anywhere on the page."""
    _level, title, index, y = mark
    positions = [k for k in by_page.get(index + 1, []) if k not in used]
    want = _norm_title(title)
    near = [k for k in positions
            if y is None or y - 220 <= items[k].top <= y + 2 * items[k].size][:12]
    found = _find_heading_line(items, near, want)
    if found is not None:
        # display lines between the bookmark's position and its line ("CHAPTER", "ONE")
        for k0 in near[:found[0]]:
            ln0 = items[k0]
            if ln0.size > 1.1 * body_size or (ln0.bold and len(ln0.text) < 30):
                ln0.kind = "drop"
    else:
        found = _find_heading_line(items, positions, want)  # a bookmark pointing elsewhere on the page
    return None if found is None else (found[1], found[2])


def _position_on_page(items: list[_Line], by_page: dict[int, list[int]], page_no: int, y: float | None) -> int:
    """The first line of the page at or below height `y`; below every line of its page: the first line
    of a later page (or the end)."""
    for k in by_page.get(page_no, []):
        if y is None or items[k].top <= y + 1:
            return k
    later = [k for p, ks in by_page.items() if p > page_no for k in ks]
    return min(later) if later else len(items)


def _insert_headings(items: list[_Line], inserts: _Inserts) -> list[_Line]:
    """The items with the headings inserted and the dropped lines left out."""
    out: list[_Line] = []
    for k, item in enumerate(items):
        for level, title in inserts.get(k, []):
            out.append(_heading_item(level, title))
        if item.kind == "heading" or item.kind != "drop":
            out.append(item)
    for level, title in inserts.get(len(items), []):
        out.append(_heading_item(level, title))
    return out


# ---------------------------------------------------------------------------------------------------
# Headings from fonts


def _looks_like_heading(ln: _Line) -> bool:
    text = ln.text
    return (ln.kind == "body" and len(text) <= 150 and len(text.split()) <= 18
            and not text.endswith((".", ",", ";", "-")) and any(c.isalpha() for c in text)
            and not _BULLET.match(text))


def _larger(ln: _Line, body_size: float) -> bool:
    """Clearly larger than the body text (OCRed sizes are rough: they must stand out more)."""
    return ln.size >= (1.3 if ln.ocr_par is not None else 1.15) * body_size


def _font_headings(items: list[_Line], body_size: float) -> list[_Line]:
    """Headings from fonts: short lines clearly larger (or bold at body size, standing alone)."""
    lines = [it for it in items if it.kind != "heading"]
    big = [ln for ln in lines if _larger(ln, body_size) and _looks_like_heading(ln)]
    sizes = sorted({round(ln.size * 2) / 2 for ln in big}, reverse=True)[:5]
    level_of = {s: n + 1 for n, s in enumerate(sizes)}
    out: list[_Line] = []
    k = 0
    prev_line: _Line | None = None
    while k < len(items):
        item = items[k]
        if item.kind == "heading":
            out.append(item)
            prev_line = None
            k += 1
            continue
        level = _font_level(items, k, prev_line, body_size, level_of)
        if level is None:
            out.append(item)
            prev_line = item
            k += 1
            continue
        text, k = _heading_lines(items, k)  # a heading, maybe over several lines of the same size
        out.append(_heading_item(level, text))
        prev_line = None
    return out


def _font_level(items: list[_Line], k: int, prev_line: _Line | None, body_size: float,
                level_of: dict[float, int]) -> int | None:
    """The heading level of line `k` from its font (larger sizes first, then bold body text), or None."""
    ln = items[k]
    if _larger(ln, body_size) and _looks_like_heading(ln):
        return level_of.get(round(ln.size * 2) / 2)
    if ln.bold and _looks_like_heading(ln) and abs(ln.size - body_size) < 0.1 * body_size \
            and len(ln.text.split()) <= 10 and ln.x1 < ln.col_x1 - 0.2 * (ln.col_x1 - ln.col_x0) \
            and (prev_line is None or prev_line.page != ln.page or prev_line.base - ln.base > 1.6 * ln.size):
        nxt = items[k + 1] if k + 1 < len(items) and items[k + 1].kind != "heading" else None
        if nxt is None or not nxt.bold:
            return len(level_of) + 1
    return None


def _heading_lines(items: list[_Line], k: int) -> tuple[str, int]:
    """The text of the heading that starts at line `k` and goes on over the lines below of the same
    size and weight, and the position after its last line."""
    ln = items[k]
    text = ln.text
    j = k + 1
    while j < len(items) and items[j].kind != "heading":
        nxt = items[j]
        if nxt.page != ln.page or abs(nxt.size - ln.size) > 0.05 * ln.size or nxt.bold != ln.bold \
                or not _looks_like_heading(nxt) or (ln.base - nxt.base) > 1.6 * ln.size or len(text) > 150:
            break
        text += " " + nxt.text
        ln = nxt
        j += 1
    return text, j
