"""PDF pages for the page view: rendered once to PNG and cached, and where a passage lies on them.

The cache key is the file's path, size and modification time with the page and scale, so a file that
changes gets new images, and the old ones age out: past MAX_CACHED files the oldest are deleted.
Everything here blocks (PDFium, the disk): call it from a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from qa_app.ingest.readers.pdf import page_count, page_size, page_text_boxes, render_page

SCALE = 1.5  # pixels per PDF point: 108 dpi, sharp on a 1280-pixel-wide screen, ~100-300 KB a page
MAX_CACHED = 2000  # PNG files kept; beyond that the least recently made go
PRUNE_EVERY = 50  # renders between looks at the cache's size

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageGeometry:
    """A page's size in PDF points, and the boxes (x, y, width, height) of a passage on it, with the
    origin at the top-left corner (as an SVG viewBox of the page's size draws them)."""

    page: int
    pages: int
    width: float
    height: float
    boxes: tuple[Box, ...] = ()


class PageImages:
    def __init__(self, cache: Path, scale: float = SCALE) -> None:
        self.cache = cache
        self.scale = scale
        self._renders = 0

    def count(self, path: Path) -> int:
        return page_count(path)

    def geometry(self, path: Path, page: int, passage_text: str = "") -> PageGeometry:
        """The page's size, and where `passage_text` lies on it (no boxes when it is not found)."""
        pages = page_count(path)
        width, height = page_size(path, page)
        boxes: list[Box] = []
        if passage_text:
            for left, bottom, right, top in page_text_boxes(path, page, passage_text):
                # PDF points from the bottom-left corner -> from the top-left, a little margin around
                pad = 1.5
                boxes.append((round(left - pad, 2), round(height - top - pad, 2), round(right - left + 2 * pad, 2),
                              round(top - bottom + 2 * pad, 2)))
        return PageGeometry(page, pages, width, height, tuple(boxes))

    def png(self, path: Path, page: int) -> Path:
        """The cached PNG of a page, rendered first when missing (ReadError for a page it lacks)."""
        stat = path.stat()
        key = hashlib.sha256(f"{path}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}\x1f{page}\x1f{self.scale}".encode())
        target = self.cache / f"{key.hexdigest()[:40]}.png"
        if target.is_file():
            return target
        data = render_page(path, page, self.scale)
        self.cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{uuid.uuid4().hex}.part")
        partial.write_bytes(data)
        os.replace(partial, target)  # whole or absent: a reader never sees half a PNG
        self._renders += 1
        if self._renders % PRUNE_EVERY == 0:
            self.prune()
        return target

    def prune(self) -> None:
        aged: list[tuple[float, Path]] = []
        for file in self.cache.glob("*.png"):
            with contextlib.suppress(FileNotFoundError):  # another process pruned it meanwhile
                aged.append((file.stat().st_mtime, file))
        for _, old in sorted(aged)[:max(0, len(aged) - MAX_CACHED)]:
            old.unlink(missing_ok=True)
