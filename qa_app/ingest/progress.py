"""Progress bars on stderr for `qa-app load`, fed by the loader's progress events (the same events
the upload stream sends to the page).

One bar counts files; a paged file (PDF) gets its own bar of pages while it is read, so a long
manual shows pages/s and the time left; the embedding bar counts passages.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from qa_app.models import LoadProgress


class ProgressBars:
    """A callable for `Loader(on_progress=...)` that draws tqdm bars; `close()` at the end of a load."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.files: tqdm[None] | None = None
        self.pages: tqdm[None] | None = None
        self.paged_source = ""
        self.embedding: tqdm[None] | None = None

    def __call__(self, event: LoadProgress) -> None:
        if not self.enabled:
            return
        if event.stage == "reading":
            if self.files is None:
                self.files = tqdm(total=event.files, desc="reading", unit="file", leave=False)
            if event.unit in ("page", "slide") and event.total:
                if self.pages is None or self.paged_source != event.source:
                    self._close_pages()
                    self.paged_source = event.source
                    self.pages = tqdm(total=event.total, desc=Path(event.source).name[:40], unit=event.unit,
                                      leave=False, smoothing=0.1)
                self.pages.update(event.done - self.pages.n)
        elif event.stage == "read":
            self._close_pages()
            if self.files is not None:
                self.files.update(1)
        elif event.stage == "embedding":
            if self.files is not None:
                self.files.close()
                self.files = None
            if self.embedding is None:
                self.embedding = tqdm(total=event.total, desc="embedding", unit="passage", smoothing=0.05)
            self.embedding.update(event.done - self.embedding.n)

    def _close_pages(self) -> None:
        if self.pages is not None:
            self.pages.close()
            self.pages = None
            self.paged_source = ""

    def close(self) -> None:
        self._close_pages()
        for bar in (self.files, self.embedding):
            if bar is not None:
                bar.close()
        self.files = self.embedding = None
