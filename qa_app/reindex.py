"""Re-index without downtime: build the next version of a collection beside the live one, check it,
then switch the alias that the app reads through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from qa_app.embedding.encoder import DenseEncoder
from qa_app.errors import ReindexError
from qa_app.ingest.loader import LoadReport, open_loader
from qa_app.models import DEFAULT_CORPUS
from qa_app.search.query import Query
from qa_app.search.retriever import open_retriever
from qa_app.settings import Settings
from qa_app.store import MilvusStore, open_store
from qa_app.store.admin import VERSION_SEPARATOR

SUMMED_FIELDS = ("files_added", "files_updated", "files_unchanged", "passages_added", "passages_unchanged",
                 "passages_removed", "seconds", "encode_seconds")


@dataclass
class ReindexReport:
    previous: str
    built: str
    load: LoadReport
    passages: int
    seconds: float


async def reindex(settings: Settings, paths: Iterable[Path] = (), *, corpus: str = DEFAULT_CORPUS,
                  show_progress: bool = False) -> ReindexReport:
    """Load `paths` (by default every file the live collection holds, each into its corpus) into
    NAME__n+1 with these settings (model, chunking), check it, switch NAME to it.

    Until the switch the live collection is untouched and serves; an interrupted run leaves it so,
    and running again resumes the half-built version (loading skips what is already there).
    """
    started = time.perf_counter()
    named = open_store(settings)
    try:
        if not await named.exists():
            raise ReindexError(f"collection {settings.collection!r} does not exist: load it first with qa-app load")
        live = await named.resolve()
        if live == settings.collection:
            raise ReindexError(
                f"collection {settings.collection!r} has no alias to switch: the embedded Milvus Lite file has no "
                f"aliases. Stop the app and rebuild with qa-app load --reset, or use a Milvus server (docs/deploy.md)")
        number = int(live.rsplit(VERSION_SEPARATOR, 1)[1]) + 1
        target = f"{settings.collection}{VERSION_SEPARATOR}{number}"
        encoder = await asyncio.to_thread(DenseEncoder.load, settings.model, settings.precision)
        store = named.sibling(target)
        try:
            if await store.exists() and (await store.fingerprint()).get("model") != encoder.info.name:
                await store.drop()  # a half-built version for another model: start it again
            await store.ensure(encoder.info)
            plan = {corpus: list(paths)} if paths else await sources_by_corpus(named)
            load = LoadReport()
            for name, files in plan.items():
                part = await open_loader(settings, store, encoder, corpus=name, show_progress=show_progress).load(files)
                for field in SUMMED_FIELDS:
                    setattr(load, field, getattr(load, field) + getattr(part, field))
                load.skipped += part.skipped
            passages = await check_built(settings, store, encoder)
            if not await store.point_alias(settings.collection):
                raise ReindexError("this Milvus has no aliases: cannot switch without downtime")
        finally:
            await store.close()
        # Keep the version just replaced (apps move over within seconds); drop the older ones.
        for old in await named.versions():
            if old not in (live, target):
                await drop_collection(named, old)
    finally:
        await named.close()
    return ReindexReport(live, target, load, passages, time.perf_counter() - started)


async def sources_by_corpus(store: MilvusStore) -> dict[str, list[Path]]:
    """The files a collection was loaded from, by corpus (files since deleted are left out)."""
    plan: dict[str, set[str]] = {}
    async for row in store.rows("", ["source", "corpus"]):
        plan.setdefault(row["corpus"], set()).add(row["source"])
    return {c: [Path(s) for s in sorted(sources) if Path(s).is_file()] for c, sources in sorted(plan.items())}


async def check_built(settings: Settings, store: MilvusStore, encoder: DenseEncoder) -> int:
    """Row count and a probe question: a stored passage's own text must find that passage."""
    count = await store.count()
    if count == 0:
        raise ReindexError("the new collection is empty: nothing was loaded from those paths; alias not switched")
    probe = None
    async for row in store.rows("", ["text"]):
        probe = row
        break
    assert probe is not None
    retriever = open_retriever(settings, store, encoder)
    try:
        result = await retriever.search(Query(probe["text"][:500], top_k=5, mode="hybrid"))
    finally:
        retriever.close()
    if probe["id"] not in [p.id for p in result.passages]:
        raise ReindexError("the probe question did not find its own passage in the new collection; alias not switched")
    return count


async def drop_collection(named: MilvusStore, name: str) -> None:
    store = named.sibling(name)
    try:
        await store.drop()
    finally:
        await store.close()

