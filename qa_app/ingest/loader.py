"""Load files into the store: read, chunk, embed only what changed, insert, then prune what is gone."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa_app.embedding.encoder import DenseEncoder
from qa_app.errors import LoadError, ReadError
from qa_app.ingest.chunking import Chunker
from qa_app.ingest.readers import kind_of, read_documents
from qa_app.models import DEFAULT_CORPUS, Passage
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
    seconds: float = 0.0
    encode_seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {**{k: v for k, v in vars(self).items() if k != "skipped"},
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


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


class Loader:
    """One load run over some paths."""

    def __init__(self, store: PassageStore, encoder: DenseEncoder, chunker: Chunker, *,
                 encode_batch: int, insert_batch: int, show_progress: bool = False,
                 corpus: str = DEFAULT_CORPUS) -> None:
        self.store = store
        self.corpus = check_corpus(corpus)
        self.encoder = encoder
        self.chunker = chunker
        self.encode_batch = encode_batch
        self.insert_batch = insert_batch
        self.show_progress = show_progress

    async def load(self, paths: Iterable[Path]) -> LoadReport:
        started = time.perf_counter()
        report = LoadReport()
        files, roots = discover(paths, report)
        existing = await self._existing(files, roots)
        plan = await self._plan(files, existing, report)
        await self._write(plan, report)
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
        for path in tqdm(files, desc="reading", unit="file", disable=not self.show_progress, leave=False):
            source = str(path)
            seen.add(source)
            try:
                passages = await asyncio.to_thread(self.passages_of, path)
            except ReadError as exc:
                report.skipped.append((source, str(exc)))
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
            elif new or stale:
                report.files_updated += 1
            else:
                report.files_unchanged += 1
        for source in sorted(set(existing) - seen):
            plan.to_remove.extend(sorted(existing[source]))
            report.files_removed += 1
        return plan

    def passages_of(self, path: Path) -> list[Passage]:
        """The passages of one file, as this loader would write them."""
        passages = []
        for document in read_documents(path, str(path)):
            passages.extend(self.chunker.split(document, self.corpus))
        return passages

    async def _write(self, plan: _Plan, report: LoadReport) -> None:
        """Embed and insert new passages (embedding overlaps the inserts), then delete stale ones.

        Inserting before deleting means a question asked meanwhile always finds some version, and a
        run that is killed is completed by the next one: ids are derived from content.
        """
        # Similar lengths in one batch waste less padding.
        todo = sorted(plan.to_add, key=lambda p: len(p.embed_text))
        queue: asyncio.Queue[tuple[list[Passage], np.ndarray] | None] = asyncio.Queue(maxsize=2)
        bar = tqdm(total=len(todo), desc="embedding", unit="passage", disable=not self.show_progress,
                   smoothing=0.05)

        async def produce() -> None:
            try:
                for batch in _batches(todo, self.insert_batch):
                    t0 = time.perf_counter()
                    vectors = await asyncio.to_thread(self.encoder.encode, [p.embed_text for p in batch],
                                                      self.encode_batch)
                    report.encode_seconds += time.perf_counter() - t0
                    await queue.put((batch, vectors))
            finally:
                await queue.put(None)

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                batch, vectors = item
                report.passages_added += await self.store.insert(batch, vectors)
                bar.update(len(batch))

        producer = asyncio.create_task(produce())
        try:
            await consume()
            await producer  # re-raises an embedding failure
        finally:
            producer.cancel()
            bar.close()
        for start in range(0, len(plan.to_remove), 1000):
            report.passages_removed += await self.store.delete(plan.to_remove[start:start + 1000])


def open_loader(settings: Settings, store: PassageStore, encoder: DenseEncoder, *, corpus: str = DEFAULT_CORPUS,
                show_progress: bool = False) -> Loader:
    """A loader into `store` with the chunking and batch sizes of `settings`."""
    return Loader(store, encoder, make_chunker(encoder, settings), encode_batch=settings.encode_batch,
                  insert_batch=settings.insert_batch, show_progress=show_progress, corpus=corpus)
