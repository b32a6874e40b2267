"""For the page view: where a passage lies on a page (rectangles of its characters), and a page as a PNG."""

from __future__ import annotations

import ctypes
import struct
import zlib
from typing import Any

from qa_app.ingest.readers.pdf_file import pdfium_c
from qa_app.ingest.readers.pdf_model import _Page
from qa_app.ingest.readers.pdf_running import _is_page_number
from qa_app.ingest.readers.pdf_text import normalize

Box = tuple[float, float, float, float]


def _key(text: str) -> str:
    return "".join(c for c in normalize(text).lower() if c.isalpha())


def _passage_boxes(textpage: Any, record: _Page, needle: str, words: int) -> list[Box]:
    """The rectangles that cover `needle` on the laid-out page `record` (its segments list their
    characters), [] when it is not found."""
    page_key, key_chars = _page_key(record)
    found = _match(page_key, needle.split(), words)
    if found is None:
        return []
    start, end = found
    return _char_rects(textpage, sorted(set(key_chars[start:end])))


def _page_key(record: _Page) -> tuple[str, list[int]]:
    """The page's letters in reading order, as the passages were made (lowercase, nothing but letters),
    and the PDFium char index of each."""
    key_chars: list[int] = []  # position in the page key -> char index
    key_parts: list[str] = []
    for block in record.blocks:  # in reading order, as the passages were made
        for line in block:
            if _is_page_number(line.text):  # ("Page 3" must not match a passage's "page")
                continue
            for seg in line.segs:
                for index, ch in seg.chars or ():
                    for c in normalize(ch).lower():
                        if c.isalpha():
                            key_parts.append(c)
                            key_chars.append(index)
    return "".join(key_parts), key_chars


def _match(page_key: str, needle_words: list[str], words: int) -> tuple[int, int] | None:
    """Where the passage lies in the page's key: its first `words` words located, then followed for as
    long as the page goes on with the passage's text. A passage that began on an earlier page is
    located by the first run of eight of its words found on the page."""
    full = _key(" ".join(needle_words))
    head = _key(" ".join(needle_words[:words]))
    if not head:
        return None
    starts = [(page_key.find(head), 0)]
    if starts[0][0] < 0:
        starts = []
        for k in range(0, max(1, len(needle_words) - 7), 4):
            window = _key(" ".join(needle_words[k:k + 8]))
            at = page_key.find(window) if len(window) >= 12 else -1
            if at >= 0:
                starts = [(at, len(_key(" ".join(needle_words[:k]))))]
                break
    if not starts:
        return None
    at, offset = starts[0]
    end = at
    while end < len(page_key) and offset + end - at < len(full) and page_key[end] == full[offset + end - at]:
        end += 1
    return at, end


def _char_rects(textpage: Any, indices: list[int]) -> list[Box]:
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    rects: list[list[float]] = []
    for index in indices:
        pdfium_c.FPDFText_GetCharBox(textpage, index, ctypes.byref(left), ctypes.byref(right),
                                     ctypes.byref(bottom), ctypes.byref(top))
        box = [left.value, bottom.value, right.value, top.value]
        if rects:
            last = rects[-1]
            mid = (box[1] + box[3]) / 2
            if last[1] - 2 <= mid <= last[3] + 2 and box[0] >= last[0] - 2:
                last[0] = min(last[0], box[0])
                last[1] = min(last[1], box[1])
                last[2] = max(last[2], box[2])
                last[3] = max(last[3], box[3])
                continue
        rects.append(box)
    return [(r[0], r[1], r[2], r[3]) for r in rects]


def _png(data: bytes, width: int, height: int, stride: int, channels: int) -> bytes:
    """A PNG of raw 8-bit pixels: 1 channel gray, 3 RGB, 4 RGBX (the fourth byte dropped)."""
    row_bytes = width * channels
    rows = [data[y * stride: y * stride + row_bytes] for y in range(height)]
    if channels == 4:
        for y, row in enumerate(rows):
            rgb = bytearray(width * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = row[0::4], row[1::4], row[2::4]
            rows[y] = bytes(rgb)
        channels = 3
    raw = b"".join(b"\x00" + row for row in rows)
    color = {1: 0, 3: 2}[channels]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
