"""A page's lines in reading order, and each line's text.

Reading order by XY-cut: a gutter between columns of prose splits a block into columns, read left to
right, each top to bottom; otherwise empty horizontal bands split it into blocks, top to bottom.
Lines with several segments become table rows, cells joined by " | " (aligned code keeps its spacing)."""

from __future__ import annotations

from qa_app.ingest.readers.pdf_model import _Line, _Page
from qa_app.ingest.readers.pdf_text import _LEADERS, _clean_line, normalize

# ---------------------------------------------------------------------------------------------------
# A line's text


def _finish_line(line: _Line) -> None:
    """The line's text from its segments: cells of a row joined by " | ", code keeps its spacing."""
    _sphinx_marks(line)
    texts, gaps, leaders = _segment_texts(line)
    _join_segments(line, texts, gaps, leaders)
    if line.kind == "body" and line.mono:
        line.kind = "code"
    if line.soft_hyphen or line.text.endswith("-"):
        line.ends_hyphen = True


def _sphinx_marks(line: _Line) -> None:
    """Sphinx's marks of a wrapped code line: "˓→" before the continuation, "␣" at a visible space."""
    first = line.segs[0].text.lstrip()
    if first.startswith("\u02d3"):  # Sphinx: this code line goes on the one before
        line.wrapped = True
        line.segs[0].text = first.lstrip("\u02d3").lstrip().removeprefix("\u2192")
    if line.segs[-1].text.rstrip().endswith("\u2423"):
        line.space_end = True


def _segment_texts(line: _Line) -> tuple[list[str], list[float], bool]:
    """The texts of the line's cells, the gap before each (-1 where none is measured), and whether a
    dot leader cut a segment (an entry of a table of contents and its page)."""
    texts: list[str] = []
    gaps: list[float] = []
    leaders = False
    prev_x1 = None
    for seg in line.segs:
        raw = seg.text
        if raw.endswith("\u00ad"):
            line.soft_hyphen = True
        pieces = _leader_pieces(normalize(raw))
        leaders = leaders or len(pieces) > 1
        for n, piece in enumerate(pieces):
            piece = _clean_line(piece)
            if piece:
                gaps.append(seg.x0 - prev_x1 if prev_x1 is not None and n == 0 else -1.0)
                texts.append(piece)
        prev_x1 = seg.x1
    return texts, gaps, leaders


def _leader_pieces(text: str) -> list[str]:
    if ". ." in text or "...." in text or " .." in text:
        return _LEADERS.split(text)  # an entry and its page: two cells
    return [text]


def _join_segments(line: _Line, texts: list[str], gaps: list[float], leaders: bool) -> None:
    if not texts:
        line.text = ""
    elif len(texts) == 1:
        line.text = texts[0]
    elif line.mono and not leaders:  # aligned code: the gap as spaces (a row if its neighbours are rows)
        line.cells = texts
        line.text = _aligned(texts, gaps, line.size)
    else:
        line.text = " | ".join(texts)
        line.kind = "row"


def _aligned(texts: list[str], gaps: list[float], size: float) -> str:
    out = texts[0]
    for gap, text in zip(gaps[1:], texts[1:], strict=True):
        out += " " * (min(12, max(2, round(gap / (0.6 * size)))) if gap > 0 else 1) + text
    return out


# ---------------------------------------------------------------------------------------------------
# Columns and reading order


def _split_segments(lines: list[_Line]) -> list[_Line]:
    """Each segment as its own line (for column analysis)."""
    out = []
    for line in lines:
        if len(line.segs) == 1:
            out.append(line)
            continue
        for seg in line.segs:
            out.append(_Line(line.page, seg.x0, seg.x1, line.base, line.top, line.size, line.bold, line.mono,
                             [seg], ends_hyphen=line.ends_hyphen and seg is line.segs[-1]))
    return out


def _find_gutter(parts: list[_Line], left: float, right: float) -> float | None:
    """x of a vertical gap between two columns of prose within [left, right], or None."""
    width = right - left
    if len(parts) < 8 or width < 100:
        return None
    best = _widest_gap(_coverage(parts, left, width), len(parts) // 30)
    if best is None:
        return None
    g0 = left + best[0] * 2
    g1 = left + best[1] * 2
    lefts = [p for p in parts if p.x1 <= g0 + 2]
    rights = [p for p in parts if p.x0 >= g1 - 2]
    if len(lefts) < 0.25 * len(parts) or len(rights) < 0.25 * len(parts):
        return None
    if not (_fills_column(lefts, left, g0) and _fills_column(rights, g1, right)):
        return None
    return (g0 + g1) / 2


def _coverage(parts: list[_Line], left: float, width: float) -> list[int]:
    """How many segments cover each 2-point bin across the width."""
    bins = int(width // 2) + 1
    cover = [0] * bins
    for p in parts:
        a = max(0, int((p.x0 - left) // 2))
        b = min(bins - 1, int((p.x1 - left) // 2))
        for k in range(a, b + 1):
            cover[k] += 1
    return cover


def _widest_gap(cover: list[int], limit: int) -> tuple[int, int] | None:
    """The widest run of bins (of at least 8 points) in the middle three fifths that at most `limit`
    segments cover, as (first bin, bin after it)."""
    bins = len(cover)
    best = None
    k = int(bins * 0.2)
    stop = int(bins * 0.8)
    while k < stop:
        if cover[k] <= limit:
            j = k
            while j < bins and cover[j] <= limit:
                j += 1
            if (j - k) * 2 >= 8 and (best is None or j - k > best[1] - best[0]):
                best = (k, j)
            k = j
        else:
            k += 1
    return best


def _fills_column(side: list[_Line], x_start: float, x_end: float) -> bool:
    """Prose fills its column: most segments are about as wide as the column and hold words, where
    table cells are narrow or short."""
    widths = sorted(p.x1 - p.x0 for p in side)
    if widths[len(widths) // 2] < 0.6 * (x_end - x_start):
        return False
    return sum(len(p.segs[0].text) for p in side) >= 12 * len(side)


def _group_lines(parts: list[_Line]) -> list[_Line]:
    """Segments of one flow back into lines (same baseline), top to bottom."""
    parts = sorted(parts, key=lambda p: (-p.base, p.x0))
    out: list[_Line] = []
    for p in parts:
        last = out[-1] if out else None
        if last is not None and abs(last.base - p.base) < 0.4 * max(last.size, p.size) and p.x0 > last.x1 - 1:
            last.segs.extend(p.segs)
            last.x1 = p.x1
            last.ends_hyphen = p.ends_hyphen
            last.bold = last.bold and p.bold
            last.mono = last.mono and p.mono
            last.top = max(last.top, p.top)
        else:
            out.append(_Line(p.page, p.x0, p.x1, p.base, p.top, p.size, p.bold, p.mono, list(p.segs),
                             ends_hyphen=p.ends_hyphen, soft_hyphen=p.soft_hyphen))
    return out


def _xy_cut(parts: list[_Line], depth: int = 0) -> list[list[_Line]]:
    """Flows of segments in reading order, by recursive XY-cut: a gutter between columns of prose
    splits a block into columns (separate flows, left to right); else empty horizontal bands split
    it into blocks top to bottom (one flow where they are plain text)."""
    if len(parts) < 2 or depth > 12:
        return [parts]
    columns = _columns(parts) if len(parts) >= 8 else None
    if columns is not None:
        return _xy_cut(columns[0], depth + 1) + _xy_cut(columns[1], depth + 1)
    blocks = _bands(parts)
    if len(blocks) == 1:
        return [parts]
    return _block_flows(blocks, depth)


def _columns(parts: list[_Line]) -> tuple[list[_Line], list[_Line]] | None:
    """The segments left and right of a gutter between columns of prose, or None."""
    left = min(p.x0 for p in parts)
    right = max(p.x1 for p in parts)
    gutter = _find_gutter(parts, left, right)
    if gutter is None:
        return None
    lefts = [p for p in parts if (p.x0 + p.x1) / 2 < gutter]
    rights = [p for p in parts if (p.x0 + p.x1) / 2 >= gutter]
    return lefts, rights


def _bands(parts: list[_Line]) -> list[list[_Line]]:
    """Blocks top to bottom, cut where no segment lies in a band of at least half a line."""
    ordered = sorted(parts, key=lambda p: -p.top)
    blocks: list[list[_Line]] = [[ordered[0]]]
    low = ordered[0].base
    low_size = ordered[0].size
    for p in ordered[1:]:
        if p.top < low - 0.5 * max(low_size, p.size):
            blocks.append([p])
            low, low_size = p.base, p.size
        else:
            blocks[-1].append(p)
            if p.base < low:
                low, low_size = p.base, p.size
    return blocks


def _block_flows(blocks: list[list[_Line]], depth: int) -> list[list[_Line]]:
    """The flows of each block in turn; a block of plain text continues the plain text before it."""
    flows: list[list[_Line]] = []
    plain = False  # the last flow is plain text that the next plain block continues
    for block in blocks:
        sub = _xy_cut(block, depth + 1)
        if len(sub) == 1 and plain:
            flows[-1].extend(sub[0])
        else:
            flows.extend(sub)
        plain = len(sub) == 1
    return flows


def _reading_order(lines: list[_Line], page_height: float) -> list[list[_Line]]:
    """Flows of lines in reading order: columns left to right, each top to bottom."""
    if len(lines) < 8 and all(len(ln.segs) == 1 for ln in lines):
        return [sorted(lines, key=lambda ln: -ln.base)]
    flows = _xy_cut(_split_segments(lines))
    return [_group_lines(f) for f in flows if f]


# ---------------------------------------------------------------------------------------------------
# A page


def _layout(record: _Page, lines: list[_Line]) -> None:
    """The page's lines into flows in reading order, each line's text finished."""
    if not lines:
        return
    record.blocks = _reading_order(lines, record.height)
    for col, block in enumerate(record.blocks):
        x0 = min(ln.x0 for ln in block)
        x1 = max(ln.x1 for ln in block)
        for ln in block:
            ln.col, ln.col_x0, ln.col_x1 = col, x0, x1
            _finish_line(ln)
        block[:] = [ln for ln in block if ln.text]
        _rows_among_rows(block)
    record.blocks = [b for b in record.blocks if b]


def _rows_among_rows(block: list[_Line]) -> None:
    """A monospaced line cut by wide gaps is aligned code, unless it sits among table rows (a table
    whose cells are in a typewriter font): then it is a row too."""
    changed = True
    while changed:
        changed = False
        for k, ln in enumerate(block):
            if ln.kind == "code" and ln.cells:
                near = [block[j] for j in (k - 1, k + 1) if 0 <= j < len(block)]
                if any(n.kind == "row" for n in near):
                    ln.kind, ln.text = "row", " | ".join(ln.cells)
                    changed = True
