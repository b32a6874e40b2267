"""Re-index without downtime: build the next version of a collection beside the live one, check it,
then switch the alias that the app reads through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from qa_app.config import Settings
from qa_app.encoders import DenseEncoder
from qa_app.errors import QAError
from qa_app.ingest import LoadReport
from qa_app.pipeline import Pipeline
from qa_app.retrieval import Query
from qa_app.store import VERSION_SEPARATOR, PassageStore


class ReindexError(QAError):
    status = 409


@dataclass
class ReindexReport:
    previous: str
    built: str
    load: LoadReport
    passages: int
    seconds: float


async def reindex(settings: Settings, paths: Iterable[Path] = (), *, corpus: str = "default",
                  show_progress: bool = False) -> ReindexReport:
    """Load `paths` (by default every file the live collection holds, each into its corpus) into
    NAME__n+1 with these settings (model, chunking), check it, switch NAME to it.

    Until the switch the live collection is untouched and serves; an interrupted run leaves it so,
    and running again resumes the half-built version (loading skips what is already there).
    """
    started = time.perf_counter()
    named = PassageStore(settings.milvus_uri, settings.collection, token=settings.milvus_token,
                         timeout=settings.timeout)
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
        store = PassageStore(settings.milvus_uri, target, token=settings.milvus_token, timeout=settings.timeout)
        pipeline = Pipeline(settings.replace(collection=target), encoder, store)
        try:
            if await store.exists() and (await store.model_of_collection()).get("model") != encoder.info.name:
                await store.drop()  # a half-built version for another model: start it again
            await pipeline.ensure_collection()
            plan = {corpus: list(paths)} if paths else await sources_by_corpus(named)
            load = LoadReport()
            for name, files in plan.items():
                part = await pipeline.loader(show_progress=show_progress, corpus=name).load(files)
                for field in ("files_added", "files_updated", "files_unchanged", "passages_added",
                              "passages_unchanged", "passages_removed", "seconds", "encode_seconds"):
                    setattr(load, field, getattr(load, field) + getattr(part, field))
                load.skipped += part.skipped
            passages = await check_built(pipeline)
            if not await store.point_alias(settings.collection):
                raise ReindexError("this Milvus has no aliases: cannot switch without downtime")
        finally:
            await pipeline.close()
        # Keep the version just replaced (apps move over within seconds); drop the older ones.
        for old in await named.versions():
            if old not in (live, target):
                await drop_collection(settings, old)
    finally:
        await named.close()
    return ReindexReport(live, target, load, passages, time.perf_counter() - started)


async def sources_by_corpus(store: PassageStore) -> dict[str, list[Path]]:
    """The files a collection was loaded from, by corpus (files since deleted are left out)."""
    plan: dict[str, set[str]] = {}
    async for row in store.rows("", ["source", "corpus"]):
        plan.setdefault(row["corpus"], set()).add(row["source"])
    return {c: [Path(s) for s in sorted(sources) if Path(s).is_file()] for c, sources in sorted(plan.items())}


async def check_built(pipeline: Pipeline) -> int:
    """Row count and a probe question: a stored passage's own text must find that passage."""
    count = await pipeline.store.count()
    if count == 0:
        raise ReindexError("the new collection is empty: nothing was loaded from those paths; alias not switched")
    probe = None
    async for row in pipeline.store.rows("", ["text"]):
        probe = row
        break
    assert probe is not None
    result = await pipeline.ask(Query(probe["text"][:500], top_k=5, mode="hybrid"))
    if probe["id"] not in [p.id for p in result.passages]:
        raise ReindexError("the probe question did not find its own passage in the new collection; alias not switched")
    return count


async def drop_collection(settings: Settings, name: str) -> None:
    store = PassageStore(settings.milvus_uri, name, token=settings.milvus_token, timeout=settings.timeout)
    try:
        await store.drop()
    finally:
        await store.close()
