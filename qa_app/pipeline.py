"""The parts that answer a question, opened once: settings, model, store, retriever."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_app.answer import Answerer, LLMClient
from qa_app.chunking import Chunker
from qa_app.config import Settings, SettingsError
from qa_app.encoders import DenseEncoder, QueryBatcher
from qa_app.errors import BadRequest, QAError
from qa_app.filters import FILTER_FIELDS, FilterError, TextFilter, check_corpus, check_value, has_control_characters
from qa_app.ingest import LoadError, Loader, snapshot
from qa_app.retrieval import MODES, Query, Retriever, SearchResult
from qa_app.store import Hit, PassageStore


log = logging.getLogger(__name__)
ALIAS_CHECK_SECONDS = 5.0


class CollectionMissing(QAError):
    status = 409


class NotFound(QAError):
    status = 404


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


class Pipeline:
    def __init__(self, settings: Settings, encoder: DenseEncoder, store: PassageStore,
                 llm: LLMClient | None = None) -> None:
        self.settings = settings
        self.encoder = encoder
        self.store = store  # the collection queries read: the one an alias named when last checked
        self.named_store = store  # the collection (or alias) the settings name
        self.llm = llm
        self.answerer = Answerer(
            llm, max_tokens=settings.llm_max_tokens, temperature=settings.llm_temperature,
            max_context_tokens=settings.llm_context_tokens, floor=settings.answer_floor or None,
            # The floor reads the cosine similarity: fused RRF scores say nothing about relevance.
            floor_score=lambda p: p.dense_score)
        self.retriever = self._retriever(store, encoder)
        self._checked = False
        self._checked_at = 0.0
        self._corpus: CorpusInfo | None = None
        self._ready_lock = asyncio.Lock()
        self.watch_state: dict[str, Any] = {}

    def _retriever(self, store: PassageStore, encoder: DenseEncoder) -> Retriever:
        return Retriever(store, QueryBatcher(encoder), candidates=self.settings.candidates, rrf_k=self.settings.rrf_k,
                         fusion=self.settings.fusion, dense_weight=self.settings.dense_weight)

    @classmethod
    async def open(cls, settings: Settings) -> Pipeline:
        encoder = await asyncio.to_thread(DenseEncoder.load, settings.model, settings.precision)
        store = PassageStore(settings.milvus_uri, settings.collection, token=settings.milvus_token,
                             timeout=settings.timeout)
        return cls(settings, encoder, store, open_llm(settings))

    def chunker(self) -> Chunker:
        return Chunker(self.encoder.count_tokens, self.settings.chunk_tokens, self.settings.chunk_overlap,
                       self.encoder.info.window)

    def loader(self, *, show_progress: bool = False, corpus: str = "default") -> Loader:
        return Loader(self.store, self.encoder, self.chunker(), encode_batch=self.settings.encode_batch,
                      insert_batch=self.settings.insert_batch, show_progress=show_progress, corpus=corpus)

    async def ensure_collection(self, *, reset: bool = False) -> bool:
        created = await self.store.ensure(self.encoder.info, reset=reset)
        self._checked = True
        return created

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
        store = PassageStore(self.settings.milvus_uri, target, token=self.settings.milvus_token,
                             timeout=self.settings.timeout)
        meta = await store.check_schema()
        encoder = self.encoder
        if meta.get("model") and meta["model"] != encoder.info.name:
            encoder = await asyncio.to_thread(DenseEncoder.load, meta["model"], self.settings.precision)
        old = self.store
        self.store, self.encoder = store, encoder
        self.retriever.batcher.close()
        self.retriever = self._retriever(store, encoder)
        self._checked = False
        self._corpus = None
        if old is not self.named_store:
            await old.close()

    async def _check_collection(self) -> None:
        if not await self.store.exists():
            raise CollectionMissing(
                f"no passages loaded yet: collection {self.settings.collection!r} does not exist. "
                f"Load documents with: qa-app load PATH")
        await self.store.check_model(self.encoder.info)
        await self.store.ensure(self.encoder.info)
        self._checked = True

    async def warm_up(self) -> None:
        """Embed made-up questions of the usual sizes before the first user's: the model's threads,
        its trace and the kernels for each batch shape are made on first use (the first few dozen
        batches measured ~1.5x slower than later ones)."""
        words = "what how why when does the a of in python file function value error list".split()
        for size in (1, 2, 3, 4, 6, 8, 12, 16):
            for length in (4, 12, 20, 28, 36, 44):  # one per padded length of 8 to 48 tokens
                batch = [" ".join(words[(i + j) % len(words)] for j in range(length)) for i in range(size)]
                await asyncio.gather(*(self.retriever.batcher.encode(q) for q in batch))

    async def ask(self, query: Query) -> SearchResult:
        await self.ready()
        try:
            return await self.retriever.search(query)
        except QAError:
            self._checked = False  # the collection may have been dropped or rebuilt: look again
            raise

    async def corpus(self) -> CorpusInfo:
        """Sources and counts; listed again only when the row count changed."""
        if not await self.store.exists():
            return CorpusInfo(False, 0, {}, {})
        count = await self.store.count()
        if self._corpus is None or self._corpus.passages != count:
            sources = await self.store.sources()
            self._corpus = CorpusInfo(True, count, dict(sorted(sources.items())), await self.store.corpora())
        return self._corpus

    async def source_passages(self, source: str, doc_id: str | None) -> list[Hit]:
        """The passages of one loaded source; NotFound for anything that was not loaded."""
        if has_control_characters(source) or (doc_id and has_control_characters(doc_id)):
            raise NotFound("no such source")
        await self.ready()
        hits = await self.store.passages_of(source, doc_id)
        if not hits:
            raise NotFound(f"{source!r} is not a loaded source" + (f" with a document {doc_id!r}" if doc_id else ""))
        return hits

    async def health(self) -> dict[str, Any]:
        info: dict[str, Any] = {"model": self.encoder.info.name, "dim": self.encoder.info.dim,
                                "precision": self.encoder.info.precision,
                                "question_batches": {"model_calls": self.retriever.batcher.calls,
                                                     "questions": self.retriever.batcher.questions},
                                "search_batches": {"milvus_requests": self.retriever.searches.requests,
                                                   "queries": self.retriever.searches.queries},
                                "collection": self.settings.collection, "milvus_uri": self.settings.milvus_uri}
        try:
            exists = await self.store.exists()
            info.update(milvus="ok", backend=await self.store.server_version(), collection_exists=exists, passages=await self.store.count() if exists else 0)
            info["ok"] = True
            if self.watch_state:
                info["watch"] = self.watch_state
        except QAError as exc:
            info.update(milvus="unavailable", error=exc.message, ok=False)
        return info

    async def watch(self, paths: list[Path], interval: float) -> None:
        """Load `paths` now and again whenever a file under them changes; runs until cancelled."""
        last: tuple[tuple[str, int, int], ...] | None = None
        while True:
            current = await asyncio.to_thread(snapshot, paths)
            if current != last:
                self.watch_state["loading"] = True
                try:
                    await self.ensure_collection()
                    report = await self.loader().load(paths)
                    self.watch_state["last_load"] = report.as_dict()
                    last = current
                except (QAError, LoadError) as exc:  # try again at the next tick; keep serving meanwhile
                    self.watch_state["last_error"] = getattr(exc, "message", str(exc))
                    log.warning("watch: loading %s failed: %s", paths, self.watch_state["last_error"])
                finally:
                    self.watch_state["loading"] = False
                    self._corpus = None
            await asyncio.sleep(interval)

    async def close(self) -> None:
        self.retriever.batcher.close()
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


def parse_answer_flag(data: Mapping[str, Any]) -> bool:
    value = data.get("answer", False)
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no", ""):
        return value.lower() in ("1", "true", "yes")
    if not isinstance(value, bool):
        raise BadRequest("'answer' must be true or false", field="answer")
    return value


def parse_query(data: Mapping[str, Any], settings: Settings) -> Query:
    """A Query from JSON or form values; BadRequest names the first field that is wrong."""
    known = {"question", "q", "top_k", "mode", "filter", "answer"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; expected question, top_k, mode, filter", field=unknown[0])
    question = data.get("question", data.get("q"))
    if not isinstance(question, str):
        raise BadRequest("'question' is required and must be a string", field="question")
    question = question.strip()
    if not question:
        raise BadRequest("'question' is empty", field="question")
    if len(question) > settings.max_question_chars:
        raise BadRequest(f"'question' is longer than {settings.max_question_chars} characters", field="question")
    top_k = data.get("top_k", settings.top_k)
    if isinstance(top_k, str) and re.fullmatch(r"[0-9]{1,6}", top_k.strip()):
        top_k = int(top_k)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= settings.max_top_k:
        raise BadRequest(f"'top_k' must be a whole number from 1 to {settings.max_top_k}", field="top_k")
    mode = data.get("mode") or "hybrid"
    if mode == "keyword":
        mode = "sparse"
    if mode not in MODES:
        raise BadRequest(f"'mode' must be one of {', '.join(MODES)}", field="mode")
    return Query(question, top_k, mode, parse_filter(data.get("filter") or {}, settings))


def parse_filter(raw: Any, settings: Settings) -> TextFilter:
    if not isinstance(raw, Mapping):
        raise BadRequest("'filter' must be an object with contains, source or title", field="filter")
    values: dict[str, str] = {}
    corpora: tuple[str, ...] = ()
    for key, value in raw.items():
        if key == "corpus":
            corpora = parse_corpora(value)
            continue
        if key not in FILTER_FIELDS:
            raise BadRequest(f"unknown filter {key!r}; expected one of {', '.join([*FILTER_FIELDS, 'corpus'])}",
                             field=key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f"filter {key!r} must be a string", field=key)
        try:
            values[key] = check_value(key, value, settings.max_filter_chars)
        except FilterError as exc:
            raise BadRequest(str(exc), field=exc.field) from None
    return TextFilter(**values, corpora=corpora)


def parse_corpora(value: Any) -> tuple[str, ...]:
    """One corpus name, a comma-separated list, or a JSON list of names."""
    if value is None or value == "":
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) > 50:
        raise BadRequest("filter 'corpus' must be a corpus name or a list of at most 50 names", field="corpus")
    try:
        return tuple(dict.fromkeys(check_corpus(n.strip()) for n in names if n.strip()))
    except FilterError as exc:
        raise BadRequest(str(exc), field="corpus") from None
