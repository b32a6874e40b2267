"""The app's verbs: ask, answer, list the corpus, report health, load and keep folders loaded.

`QAService` opens the parts once (model, store, LLM client) and is what the web app and the CLI call;
it hides which collection an alias points to, following it when `qa-app reindex` switches it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from qa_app.answer.answerer import Answer, Answerer, AnswerEvent
from qa_app.answer.llm_client import LLMClient
from qa_app.embedding.encoder import DenseEncoder
from qa_app.errors import CollectionMissing, NotFound, QAError, SettingsError
from qa_app.ingest import watch
from qa_app.ingest.loader import Loader, LoadReport, open_loader
from qa_app.models import DEFAULT_CORPUS, ModelInfo, Passage
from qa_app.search.query import Query, SearchResult
from qa_app.search.retriever import Retriever, open_retriever
from qa_app.settings import Settings
from qa_app.store import MilvusStore, open_store
from qa_app.store.expressions import has_control_characters

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
            floor_score=lambda p: p.why.dense_score)
        self._live = _Live(store, encoder, open_retriever(self.settings, store, encoder))
        self._checked = False
        self._checked_at = 0.0
        self._corpus: CorpusInfo | None = None
        self._ready_lock = asyncio.Lock()
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
    def store(self) -> MilvusStore:
        return self._live.store

    # -- the collection ------------------------------------------------------------------------

    async def ensure_collection(self, *, reset: bool = False) -> bool:
        """Create the collection if it is missing (or rebuild it with `reset`); True when created."""
        created = await self.store.ensure(self.model, reset=reset)
        self._checked = True
        return created

    def loader(self, *, show_progress: bool = False, corpus: str = DEFAULT_CORPUS) -> Loader:
        return open_loader(self.settings, self.store, self._live.encoder, corpus=corpus, show_progress=show_progress)

    async def load(self, paths: list[Path], *, corpus: str = DEFAULT_CORPUS, show_progress: bool = False,
                   reset: bool = False) -> LoadReport:
        """Load files and folders into the collection, creating it first if needed."""
        await self.ensure_collection(reset=reset)
        try:
            return await self.loader(show_progress=show_progress, corpus=corpus).load(paths)
        finally:
            self._corpus = None

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
        """The passages that answer `query`."""
        await self.ready()
        try:
            return await self._live.retriever.search(query)
        except QAError:
            self._checked = False  # the collection may have been dropped or rebuilt: look again
            raise

    def extract(self, question: str, passages: list[Passage]) -> Answer:
        """The answer extracted from the passages, at once (no LLM)."""
        return self.answerer.extract(question, passages)

    async def answer(self, question: str, passages: list[Passage]) -> Answer:
        """The answer: generated when an LLM is configured and works, else extracted."""
        return await self.answerer.complete(question, passages)

    def stream_answer(self, question: str, passages: list[Passage]) -> AsyncGenerator[AnswerEvent, None]:
        """The answer as it is written (see answer.answerer for the events)."""
        return self.answerer.stream(question, passages)

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
        info: dict[str, Any] = {"model": self.model.name, "dim": self.model.dim, "precision": self.model.precision,
                                **self._live.retriever.stats(),
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
