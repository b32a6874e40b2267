"""The app's verbs: ask, answer, list the corpus, report health, load and keep folders loaded.

`QAService` opens the parts once (model, store, LLM client) and is what the web app and the CLI call;
it hides which collection an alias points to, following it when `qa-app reindex` switches it.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from qa_app.answer.answerer import Answer, Answerer, AnswerEvent
from qa_app.answer.claims import Thresholds
from qa_app.answer.llm_client import LLMClient
from qa_app.answer.next_steps import Asked
from qa_app.answer.rewrite import rewrite_with_llm
from qa_app.embedding.encoder import DenseEncoder
from qa_app.embedding.paths import Selection
from qa_app.errors import CollectionMissing, NotFound, QAError, SettingsError
from qa_app.ingest import watch
from qa_app.ingest.loader import Loader, LoadReport, ProgressHook, open_loader
from qa_app.ingest.pages import PageGeometry, PageImages
from qa_app.ingest.uploads import IncomingFile, Placement, Received, UploadStore, accepted_types
from qa_app.models import DEFAULT_CORPUS, LoadProgress, ModelInfo, Passage
from qa_app.search.followup import leans_on_context, standalone_question
from qa_app.search.query import Query, SearchResult
from qa_app.search.retriever import Retriever, open_retriever
from qa_app.settings import Settings
from qa_app.store import MilvusStore, open_store
from qa_app.store.expressions import has_control_characters, string_literal
from qa_app.store.rows import row_passage
from qa_app.store.schema import OUTPUT_FIELDS

# What the web layer uses of the ingest layer's records, handed on from here (web imports no ingest).
__all__ = ["CorpusInfo", "IncomingFile", "LoadProgress", "LoadReport", "PageGeometry", "Placement", "QAService",
           "Received", "accepted_types", "open_llm"]
PASSAGE_ID = re.compile(r"[0-9a-f]{32}")

ALIAS_CHECK_SECONDS = 5.0  # how soon running apps move to a collection `qa-app reindex` switched to
WARM_UP_BATCHES = (1, 2, 3, 4, 6, 8, 12, 16)
WARM_UP_LENGTHS = (4, 12, 20, 28, 36, 44)  # words: one per padded length of 8 to 48 tokens


@dataclass(frozen=True)
class CorpusInfo:
    """What is loaded: passage count per source, and the folder they share (to show short names)."""

    exists: bool
    passages: int
    sources: dict[str, int]
    corpora: dict[str, int]

    @property
    def common_folder(self) -> str:
        if not self.sources:
            return ""
        folder = os.path.commonpath(list(self.sources)) if len(self.sources) > 1 else os.path.dirname(
            next(iter(self.sources)))
        return folder.rstrip(os.sep) + os.sep

    def short_name(self, source: str) -> str:
        folder = self.common_folder
        return source[len(folder):] if folder and source.startswith(folder) else source


@dataclass
class _Live:
    """The collection questions read (the one the alias named when last checked) and its model."""

    store: MilvusStore
    encoder: DenseEncoder
    retriever: Retriever


class QAService:
    def __init__(self, settings: Settings, encoder: DenseEncoder, store: MilvusStore,
                 llm: LLMClient | None = None) -> None:
        self.settings = settings
        self.named_store = store  # the collection (or alias) the settings name
        self.llm = llm
        self.answerer = Answerer(
            llm, max_tokens=settings.llm_max_tokens, temperature=settings.llm_temperature,
            max_context_tokens=settings.llm_context_tokens, floor=settings.answer_floor or None,
            # The floor reads the cosine similarity: fused RRF scores say nothing about relevance.
            floor_score=lambda p: p.why.dense_score, embed=self.embed_texts,
            thresholds=Thresholds(settings.claim_dense, settings.claim_overlap))
        self._live = _Live(store, encoder, open_retriever(self.settings, store, encoder))
        self._checked = False
        self._checked_at = 0.0
        self._corpus: CorpusInfo | None = None
        self._ready_lock = asyncio.Lock()
        # One load at a time: Milvus Lite admits one writer, and two loads of the same file would race.
        # Uploads, `serve --watch` and removals all take it.
        self._load_lock = asyncio.Lock()
        self.uploads = UploadStore(settings.uploads_path, int(settings.max_upload_mb * 2**20), settings.max_upload_files)
        self.pages = PageImages(settings.page_cache_path)
        self.watch_state: dict[str, Any] = {}

    @classmethod
    async def open(cls, settings: Settings) -> QAService:
        encoder = await asyncio.to_thread(DenseEncoder.load, settings.model, settings.precision)
        return cls(settings, encoder, open_store(settings), open_llm(settings))

    async def __aenter__(self) -> QAService:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    @property
    def model(self) -> ModelInfo:
        return self._live.encoder.info

    @property
    def embedding_path(self) -> Selection:
        """Which path runs the model on this CPU (torch-fp32, torch-bf16, onnx-int8) and why."""
        return self._live.encoder.selection

    @property
    def store(self) -> MilvusStore:
        return self._live.store

    # -- the collection ------------------------------------------------------------------------

    async def ensure_collection(self, *, reset: bool = False) -> bool:
        """Create the collection if it is missing (or rebuild it with `reset`); True when created."""
        created = await self.store.ensure(self.model, reset=reset)
        self._checked = True
        return created

    def loader(self, *, show_progress: bool = False, corpus: str = DEFAULT_CORPUS,
               on_progress: ProgressHook | None = None) -> Loader:
        return open_loader(self.settings, self.store, self._live.encoder, corpus=corpus, show_progress=show_progress,
                           on_progress=on_progress)

    async def load(self, paths: list[Path], *, corpus: str = DEFAULT_CORPUS, show_progress: bool = False,
                   reset: bool = False, on_progress: ProgressHook | None = None) -> LoadReport:
        """Load files and folders into the collection, creating it first if needed; waits for a load
        already running in this process (see `loading`)."""
        async with self._load_lock:
            return await self._load(paths, corpus=corpus, show_progress=show_progress, reset=reset,
                                    on_progress=on_progress)

    async def _load(self, paths: list[Path], *, corpus: str, show_progress: bool = False, reset: bool = False,
                    on_progress: ProgressHook | None = None) -> LoadReport:
        await self.ensure_collection(reset=reset)
        try:
            return await self.loader(show_progress=show_progress, corpus=corpus, on_progress=on_progress).load(paths)
        finally:
            self._corpus = None

    @property
    def loading(self) -> bool:
        """Whether a load (or removal) is running now: the next one waits for it."""
        return self._load_lock.locked()

    # -- uploads -------------------------------------------------------------------------------

    async def load_uploads(self, received: list[Received], corpus: str,
                           on_progress: ProgressHook | None = None) -> tuple[list[Placement], LoadReport]:
        """Put checked uploads in place under the corpus's upload folder and load them; a file the load
        could not read is taken out again (the file it replaced put back), so what is kept on disk is
        what the collection holds. The report's `skipped` says why."""
        async with self._load_lock:
            placements: list[Placement] = []
            try:
                for item in received:
                    if item.ok:
                        placements.append(await asyncio.to_thread(self.uploads.place, item, corpus))
                report = await self._load([p.path for p in placements], corpus=corpus, on_progress=on_progress)
            except BaseException:
                for placement in placements:
                    await asyncio.to_thread(self.uploads.settle, placement, False)
                raise
            refused = {path for path, _ in report.skipped}
            for placement in placements:
                await asyncio.to_thread(self.uploads.settle, placement, str(placement.path) not in refused)
            return placements, report

    async def remove_upload(self, source: str) -> tuple[str, int]:
        """Delete an uploaded file's passages, then the file; (its corpus, passages removed). NotFound
        for anything that is not an uploaded file (a path loaded by `qa-app load` stays)."""
        if has_control_characters(source) or not self.uploads.is_upload(source):
            raise NotFound(f"{source[:200]!r} is not an uploaded file: only uploads can be removed here")
        corpus = self.uploads.corpus_of(source)
        async with self._load_lock:
            ids: list[str] = []
            if await self.store.exists():
                expr = f"source == {string_literal(source)} and corpus == {string_literal(corpus)}"
                ids = [row["id"] async for row in self.store.rows(expr, ["id"])]
            if not ids and not Path(source).exists():
                raise NotFound(f"{source[:200]!r} is not an uploaded file: only uploads can be removed here")
            removed = 0
            for start in range(0, len(ids), 1000):  # passages first: a failure leaves the file with them
                removed += await self.store.delete(ids[start:start + 1000])
            self._corpus = None
            await asyncio.to_thread(self.uploads.remove, source)
        return corpus, removed

    # -- the page view -------------------------------------------------------------------------

    async def pdf_page(self, source: str, page: int) -> tuple[Path, int]:
        """The file of a loaded PDF and its page count, for page `page`; NotFound for a source that was
        not loaded, is no PDF, is gone from disk, or has no such page."""
        if has_control_characters(source):
            raise NotFound("no such source")
        await self.ready()
        if not await self.store.count(f"source == {string_literal(source)}"):
            raise NotFound(f"{source!r} is not a loaded source")
        path = Path(source)
        if path.suffix.lower() != ".pdf":
            raise NotFound(f"{path.name} has no pages to show: the page view is for PDFs")
        if not path.is_file():
            raise NotFound(f"{source} was loaded but is no longer on disk")
        pages = await asyncio.to_thread(self.pages.count, path)
        if not 1 <= page <= pages:
            raise NotFound(f"no page {page}: {path.name} has {pages} page{'s' * (pages != 1)}")
        return path, pages

    async def page_view(self, source: str, page: int, passage_id: str | None) -> tuple[PageGeometry, Passage | None,
                                                                                        list[Passage]]:
        """A PDF page's geometry with the boxes of the chosen passage (when it is on that page), that
        passage, and every passage of the source on the page."""
        path, _ = await self.pdf_page(source, page)
        on_page: list[Passage] = []
        expr = f"source == {string_literal(source)} and page <= {page} and page_end >= {page}"
        async for row in self.store.rows(expr, OUTPUT_FIELDS):
            on_page.append(row_passage(row, 0.0))
        on_page.sort(key=lambda p: (p.doc_id, p.chunk))
        chosen = None
        if passage_id and PASSAGE_ID.fullmatch(passage_id):
            found = await self.store.get([passage_id])
            chosen = found[0] if found and found[0].source == source else None
        text = chosen.text if chosen is not None and chosen.page <= page <= max(chosen.page, chosen.page_end) else ""
        geometry = await asyncio.to_thread(self.pages.geometry, path, page, text)
        return geometry, chosen, on_page

    async def page_image(self, source: str, page: int) -> Path:
        """The cached PNG of a page of a loaded PDF (rendered on first use)."""
        path, _ = await self.pdf_page(source, page)
        return await asyncio.to_thread(self.pages.png, path, page)

    def _fresh(self) -> bool:
        return self._checked and (self.store.is_embedded or time.monotonic() - self._checked_at < ALIAS_CHECK_SECONDS)

    async def ready(self) -> None:
        """Raise a clear error unless the collection exists and was built with this model. On a server,
        follow the alias every few seconds: after `qa-app reindex` switches it, move to the new
        collection, loading its embedding model first if it changed, so no question fails meanwhile."""
        if self._fresh():
            return
        async with self._ready_lock:  # the first requests arrive together: check and load once
            if self._fresh():
                return
            if not self.store.is_embedded:
                await self._follow_alias()
            if not self._checked:
                await self._check_collection()
            self._checked_at = time.monotonic()

    async def _follow_alias(self) -> None:
        target = await self.named_store.resolve()
        if target == self.store.collection:
            return
        store = self.named_store.sibling(target)
        meta = await store.check_schema()
        encoder = self._live.encoder
        if meta.get("model") and meta["model"] != encoder.info.name:
            encoder = await asyncio.to_thread(DenseEncoder.load, meta["model"], self.settings.precision)
        old = self._live
        self._live = _Live(store, encoder, open_retriever(self.settings, store, encoder))
        old.retriever.close()
        self._checked = False
        self._corpus = None
        if old.store is not self.named_store:
            await old.store.close()

    async def _check_collection(self) -> None:
        if not await self.store.exists():
            raise CollectionMissing(
                f"no passages loaded yet: collection {self.settings.collection!r} does not exist. "
                f"Load documents with: qa-app load PATH")
        await self.store.ensure(self.model)
        self._checked = True

    async def warm_up(self) -> None:
        """Embed made-up questions of the usual sizes before the first user's: the model's threads,
        its trace and the kernels for each batch shape are made on first use (the first batches run
        markedly slower than later ones)."""
        words = "what how why when does the a of in python file function value error list".split()
        for size in WARM_UP_BATCHES:
            for length in WARM_UP_LENGTHS:
                batch = [" ".join(words[(i + j) % len(words)] for j in range(length)) for i in range(size)]
                await asyncio.gather(*(self._live.retriever.embed(q) for q in batch))

    # -- questions -----------------------------------------------------------------------------

    async def ask(self, query: Query) -> SearchResult:
        """The passages that answer `query` (a follow-up is first made a standalone question)."""
        await self.ready()
        query = await self.standalone(query)
        try:
            return await self._live.retriever.search(query)
        except QAError:
            self._checked = False  # the collection may have been dropped or rebuilt: look again
            raise

    async def standalone(self, query: Query) -> Query:
        """`query` with the standalone question to search for, when it is a follow-up: written by the
        LLM where one is configured (falling back to the rule when it fails), else by the rule."""
        if not query.history or query.standalone or not leans_on_context(query.question):
            return query
        rewritten = None
        if self.llm is not None:
            turns = [(t.question, t.answer) for t in query.history]
            rewritten = await rewrite_with_llm(self.llm, query.question, turns, self.settings.llm_temperature)
        return replace(query, standalone=rewritten or standalone_question(query.question, query.history))

    async def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of short texts (the sentences an answer is chosen from or checked against),
        embedded off the event loop in a few model calls."""
        return await self._live.retriever.embed_many(texts)

    def asked(self, query: Query | None) -> Asked | None:
        """How `query` searched, for the next steps an answer suggests when there is none."""
        if query is None:
            return None
        return Asked(query.mode, query.top_k, query.filter, self.settings.max_top_k)

    async def extract(self, question: str, passages: list[Passage], query: Query | None = None) -> Answer:
        """The answer extracted from the passages (no LLM)."""
        return await self.answerer.extract(question, passages, self.asked(query))

    async def answer(self, question: str, passages: list[Passage], query: Query | None = None) -> Answer:
        """The answer: generated when an LLM is configured and works, else extracted."""
        return await self.answerer.complete(question, passages, self.asked(query))

    def stream_answer(self, question: str, passages: list[Passage],
                      query: Query | None = None) -> AsyncGenerator[AnswerEvent, None]:
        """The answer as it is written (see answer.answerer for the events)."""
        return self.answerer.stream(question, passages, self.asked(query))

    @property
    def generates(self) -> bool:
        """Whether answers are written by an LLM (else they are extracted)."""
        return self.llm is not None

    # -- what is loaded ------------------------------------------------------------------------

    async def corpus(self) -> CorpusInfo:
        """Sources and counts; listed again only when the row count changed."""
        if not await self.store.exists():
            return CorpusInfo(False, 0, {}, {})
        count = await self.store.count()
        if self._corpus is None or self._corpus.passages != count:
            sources = await self.store.sources()
            self._corpus = CorpusInfo(True, count, sources, await self.store.corpora())
        return self._corpus

    async def source_passages(self, source: str, doc_id: str | None) -> list[Passage]:
        """The passages of one loaded source; NotFound for anything that was not loaded."""
        if has_control_characters(source) or (doc_id and has_control_characters(doc_id)):
            raise NotFound("no such source")
        await self.ready()
        passages = await self.store.passages_of(source, doc_id)
        if not passages:
            raise NotFound(f"{source!r} is not a loaded source" + (f" with a document {doc_id!r}" if doc_id else ""))
        return passages

    async def health(self) -> dict[str, Any]:
        selection = self.embedding_path
        info: dict[str, Any] = {"model": self.model.name, "dim": self.model.dim, "precision": self.model.precision,
                                "embedding_path": selection.path, "embedding_path_reason": selection.reason,
                                "cpu_class": selection.cpu_class, **self._live.retriever.stats(),
                                "collection": self.settings.collection, "milvus_uri": self.settings.milvus_uri}
        try:
            exists = await self.store.exists()
            info.update(milvus="ok", backend=await self.store.server_version(), collection_exists=exists,
                        passages=await self.store.count() if exists else 0)
            info["ok"] = True
            if self.watch_state:
                info["watch"] = self.watch_state
        except QAError as exc:
            info.update(milvus="unavailable", error=exc.message, ok=False)
        return info

    async def watch(self, paths: list[Path]) -> None:
        """Load `paths` now and again whenever a file under them changes; runs until cancelled."""
        await watch.watch(paths, self.settings.watch_interval, self.load, self.watch_state)

    async def close(self) -> None:
        self._live.retriever.close()
        await self.store.close()
        if self.named_store is not self.store:
            await self.named_store.close()
        if self.llm is not None:
            await self.llm.aclose()


def open_llm(settings: Settings) -> LLMClient | None:
    """The LLM client, or None when no server is configured (answers are then extracted)."""
    if not settings.llm_url:
        return None
    try:
        return LLMClient(settings.llm_url, settings.llm_model, api_key=settings.llm_api_key or None,
                         connect_timeout=settings.llm_connect_timeout, read_timeout=settings.llm_read_timeout)
    except ValueError as exc:
        raise SettingsError(f"QA_LLM_URL: {exc}") from None
