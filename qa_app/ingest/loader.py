"""Load files into the store: read, chunk, embed only what changed, insert, then prune what is gone."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path

import numpy as np

from qa_app.embedding.encoder import DenseEncoder
from qa_app.errors import LoadError, ReadError
from qa_app.ingest.chunking import Chunker
from qa_app.ingest.progress import ProgressBars
from qa_app.ingest.readers import kind_of, read_documents
from qa_app.models import DEFAULT_CORPUS, Document, LoadProgress, Passage
from qa_app.settings import Settings
from qa_app.store import PassageStore
from qa_app.store.expressions import check_corpus, has_control_characters, like_clause, string_literal


@dataclass
class LoadReport:
    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    passages_added: int = 0
    passages_removed: int = 0
    passages_unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, note): "3 pages without text skipped"
    pages_read: int = 0  # pages (slides) of the paged files read
    read_seconds: float = 0.0  # reading those paged files
    seconds: float = 0.0
    encode_seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {**{k: v for k, v in vars(self).items() if k not in ("skipped", "notes")},
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "notes": [{"path": p, "note": n} for p, n in self.notes]}


@dataclass
class _Plan:
    to_add: list[Passage] = field(default_factory=list)
    to_remove: list[str] = field(default_factory=list)


def discover(paths: Iterable[Path], report: LoadReport) -> tuple[list[Path], list[Path]]:
    """Files to read and folders whose vanished files get pruned; missing paths raise LoadError."""
    files: list[Path] = []
    roots: list[Path] = []
    for path in paths:
        path = path.resolve()
        if has_control_characters(str(path)):
            report.skipped.append((repr(str(path)), "control characters in the path cannot be stored"))
        elif path.is_dir():
            roots.append(path)
            files.extend(walk_files(path))
        elif path.is_file():
            if kind_of(path) is None:
                report.skipped.append((str(path), f"unsupported file type {path.suffix or '(none)'}"))
            else:
                files.append(path)
        else:
            raise LoadError(f"no such file or folder: {path}")
    return sorted(set(files)), roots


# Build output that repeats the pages (Sphinx's _sources holds each page again as reST) or holds no text.
IGNORED_DIRS = {"_sources", "_static", "_images", "_downloads", "node_modules", "__pycache__"}


def walk_files(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_DIRS)
        for name in sorted(names):
            path = Path(folder, name)
            if not name.startswith(".") and kind_of(path) is not None and not has_control_characters(name):
                yield path


def _batches(items: list[Passage], size: int) -> Iterator[list[Passage]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def make_chunker(encoder: DenseEncoder, settings: Settings) -> Chunker:
    return Chunker(encoder.count_tokens, settings.chunk_tokens, settings.chunk_overlap, encoder.info.window)


ProgressHook = Callable[[LoadProgress], None]


class Loader:
    """One load run over some paths.

    `on_progress` hears of every step (models.LoadProgress: pages read, files done, passages
    embedded), always on the event loop's thread, even for pages a reader reports from its worker
    thread; `show_progress` draws the same events as progress bars on stderr.
    """

    def __init__(self, store: PassageStore, encoder: DenseEncoder, chunker: Chunker, *,
                 encode_batch: int, insert_batch: int, show_progress: bool = False,
                 corpus: str = DEFAULT_CORPUS, on_progress: ProgressHook | None = None) -> None:
        self.store = store
        self.corpus = check_corpus(corpus)
        self.encoder = encoder
        self.chunker = chunker
        self.encode_batch = encode_batch
        self.insert_batch = insert_batch
        self.show_progress = show_progress
        self.on_progress = on_progress
        self._bars = ProgressBars(show_progress)

    def _emit(self, event: LoadProgress) -> None:
        self._bars(event)
        if self.on_progress is not None:
            self.on_progress(event)

    async def load(self, paths: Iterable[Path]) -> LoadReport:
        started = time.perf_counter()
        report = LoadReport()
        try:
            files, roots = discover(paths, report)
            existing = await self._existing(files, roots)
            plan = await self._plan(files, existing, report)
            await self._write(plan, report)
        finally:
            self._bars.close()
        report.seconds = time.perf_counter() - started
        return report

    async def _existing(self, files: list[Path], roots: list[Path]) -> dict[str, set[str]]:
        """Ids already stored, by source, for every file and folder named."""
        # A prefix pattern ("/root/%") would be cheaper, but Milvus Lite 2.5.1 does not unescape \_ or \%
        # in one: it silently matches nothing. Match loosely anywhere, then keep the true prefixes.
        prefixes = [str(root) + os.sep for root in roots]
        clauses = [like_clause("source", prefix) or 'source != ""' for prefix in prefixes]
        loose = [f for f in files if not any(f.is_relative_to(r) for r in roots)]
        clauses += [f"source == {string_literal(str(f))}" for f in loose]
        wanted = {str(f) for f in loose}
        existing: dict[str, set[str]] = {}
        in_corpus = f"corpus == {string_literal(self.corpus)}"
        for start in range(0, len(clauses), 100):
            expr = f"({' or '.join(clauses[start:start + 100])}) and {in_corpus}"
            async for row in self.store.rows(expr, ["source"]):
                source = row["source"]
                if source in wanted or source.startswith(tuple(prefixes)):
                    existing.setdefault(source, set()).add(row["id"])
        return existing

    async def _plan(self, files: list[Path], existing: dict[str, set[str]], report: LoadReport) -> _Plan:
        plan = _Plan()
        seen: set[str] = set()
        loop = asyncio.get_running_loop()
        for number, path in enumerate(files, 1):
            source = str(path)
            seen.add(source)
            began = time.perf_counter()
            step = LoadProgress("reading", source=source, file=number, files=len(files))
            self._emit(replace(step, done=0, total=1, unit="file"))

            def pages_read(done: int, total: int, step: LoadProgress = step, began: float = began) -> None:
                # Called on the reader's thread; the events reach the hook on the loop's, in order,
                # and before the read's own result (queued the same way, after them).
                event = replace(step, done=done, total=total, unit="page", seconds=time.perf_counter() - began)
                loop.call_soon_threadsafe(self._emit, event)

            try:
                documents, passages = await asyncio.to_thread(self._read, path, pages_read)
            except ReadError as exc:
                report.skipped.append((source, str(exc)))
                self._emit(replace(step, stage="read", status="skipped", reason=str(exc),
                                   seconds=time.perf_counter() - began))
                continue  # its stored passages stay: nothing is lost because a file went bad
            stored = existing.get(source, set())
            wanted = {p.id for p in passages}
            new = [p for p in passages if p.id not in stored]
            stale = sorted(stored - wanted)
            plan.to_add.extend(new)
            plan.to_remove.extend(stale)
            report.passages_unchanged += len(wanted) - len(new)
            if not stored:
                report.files_added += 1
                status = "added"
            elif new or stale:
                report.files_updated += 1
                status = "updated"
            else:
                report.files_unchanged += 1
                status = "unchanged"
            pages = sum(d.page_count for d in documents)
            notes = tuple(note for d in documents for note in d.notes)
            report.notes.extend((source, note) for note in notes)
            if pages:
                report.pages_read += pages
                report.read_seconds += time.perf_counter() - began
            # done/total count the pages read (or the file), so the event's rate is pages/s
            self._emit(replace(step, stage="read", status=status, passages=len(passages), new=len(new), pages=pages,
                               notes=notes, done=pages or 1, total=pages or 1,
                               unit=documents[0].page_unit if pages else "file",
                               seconds=time.perf_counter() - began))
        for source in sorted(set(existing) - seen):
            plan.to_remove.extend(sorted(existing[source]))
            report.files_removed += 1
        return plan

    def passages_of(self, path: Path) -> list[Passage]:
        """The passages of one file, as this loader would write them."""
        return self._read(path)[1]

    def _read(self, path: Path, progress: Callable[[int, int], None] | None = None) -> tuple[list[Document], list[Passage]]:
        documents = read_documents(path, str(path), progress=progress)
        passages = []
        for document in documents:
            passages.extend(self.chunker.split(document, self.corpus))
        return documents, passages

    async def _write(self, plan: _Plan, report: LoadReport) -> None:
        """Embed and insert new passages (embedding overlaps the inserts), then delete stale ones.

        Inserting before deleting means a question asked meanwhile always finds some version, and a
        run that is killed is completed by the next one: ids are derived from content.
        """
        # Similar lengths in one batch waste less padding.
        todo = sorted(plan.to_add, key=lambda p: len(p.embed_text))
        queue: asyncio.Queue[tuple[list[Passage], np.ndarray] | None] = asyncio.Queue(maxsize=2)
        began = time.perf_counter()
        done = 0
        if todo:
            self._emit(LoadProgress("embedding", done=0, total=len(todo), unit="passage"))

        # The model is called a few encode batches at a time, so progress (and its ETA) moves every few
        # seconds; a multiple of encode_batch keeps the model's own batches the same.
        step = self.encode_batch * 2

        async def produce() -> None:
            nonlocal done
            try:
                for batch in _batches(todo, self.insert_batch):
                    parts = []
                    for part in _batches(batch, step):
                        t0 = time.perf_counter()
                        parts.append(await asyncio.to_thread(self.encoder.encode, [p.embed_text for p in part],
                                                             self.encode_batch))
                        report.encode_seconds += time.perf_counter() - t0
                        done += len(part)
                        if done < len(todo):  # the last count is sent once all is stored
                            self._emit(LoadProgress("embedding", done=done, total=len(todo), unit="passage",
                                                    seconds=time.perf_counter() - began))
                    await queue.put((batch, np.concatenate(parts)))
            finally:
                await queue.put(None)

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                batch, vectors = item
                report.passages_added += await self.store.insert(batch, vectors)

        producer = asyncio.create_task(produce())
        try:
            await consume()
            await producer  # re-raises an embedding failure
        finally:
            producer.cancel()
        if todo:
            self._emit(LoadProgress("embedding", done=len(todo), total=len(todo), unit="passage",
                                    seconds=time.perf_counter() - began))
        for start in range(0, len(plan.to_remove), 1000):
            report.passages_removed += await self.store.delete(plan.to_remove[start:start + 1000])


def open_loader(settings: Settings, store: PassageStore, encoder: DenseEncoder, *, corpus: str = DEFAULT_CORPUS,
                show_progress: bool = False, on_progress: ProgressHook | None = None) -> Loader:
    """A loader into `store` with the chunking and batch sizes of `settings`."""
    return Loader(store, encoder, make_chunker(encoder, settings), encode_batch=settings.encode_batch,
                  insert_batch=settings.insert_batch, show_progress=show_progress, corpus=corpus,
                  on_progress=on_progress)
