"""The passage collection in Milvus: the only module that talks to pymilvus."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import grpc
from pymilvus import AnnSearchRequest, AsyncMilvusClient, DataType, Function, FunctionType, MilvusClient, RRFRanker
from pymilvus.exceptions import MilvusException

from qa_app.chunking import HEADING_SEPARATOR, Passage
from qa_app.config import is_embedded_uri
from qa_app.errors import ModelMismatch, StoreUnavailable
from qa_app.filters import string_literal
from qa_app.encoders import ModelInfo

log = logging.getLogger(__name__)
# milvus-lite 2.5.1 imports pkg_resources, which warns on every start; the pin is deliberate (STACK.md).
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
# pymilvus logs a full traceback for every failed call, expected ones too (a backend without partitions
# answers UNIMPLEMENTED): this module turns each failure into one clear message instead.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

SCHEMA_VERSION = 2
QUERY_PAGE = 16384  # Milvus caps one query's limit + offset at 16384 and silently truncates above it
# VARCHAR limits in bytes. Milvus Lite 2.5.1 does not enforce them, a server does: cut in the app.
MAX_BYTES = {"id": 64, "text": 65535, "search_text": 65535, "source": 2048, "doc_id": 512,
             "title": 1024, "headings": 2048, "content_hash": 64, "corpus": 64}
OUTPUT_FIELDS = ["text", "source", "doc_id", "title", "headings", "chunk", "corpus"]
FINGERPRINT_PROPERTY = "qa_app.fingerprint"
# pymilvus pings every 10 s even when idle; a gRPC server with default settings (Milvus Lite 3.x's)
# answers "too_many_pings" with GOAWAY and drops the connection. Every call has a timeout instead.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 60_000, "grpc.keepalive_permit_without_calls": False}
VERSION_SEPARATOR = "__"  # NAME__2: the second build of the collection behind the alias NAME
# BM25 analyzers, best first: English stemming and stop words where the server has them (Milvus 2.5+,
# Lite 2.5.1); Lite 3.x's server knows only the standard tokenizer.
ANALYZERS: tuple[dict[str, Any], ...] = ({"type": "english"}, {"tokenizer": "standard", "filter": ["lowercase"]})
T = TypeVar("T")


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str
    source: str
    doc_id: str
    title: str
    headings: tuple[str, ...]
    chunk: int
    corpus: str = "default"


def truncate_utf8(value: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, never splitting a character."""
    data = value.encode()
    if len(data) <= max_bytes:
        return value
    return data[:max_bytes].decode(errors="ignore")


def passage_row(passage: Passage, vector: np.ndarray) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": passage.id, "text": passage.text, "search_text": passage.embed_text,
        "source": passage.source, "doc_id": passage.doc_id, "title": passage.title,
        "headings": passage.heading_path, "content_hash": passage.content_hash, "corpus": passage.corpus,
    }
    row = {k: truncate_utf8(v, MAX_BYTES[k]) for k, v in row.items()}
    row["chunk"] = passage.chunk
    row["dense"] = vector.tolist()
    return row


class HitList(Sequence[Hit]):
    """One search's ranking: every id and score at once, each whole Hit built when first read. A
    search returns dozens of candidates, of which fusion keeps a few: building them all cost more
    event-loop time than the rest of the request's own code."""

    def __init__(self, ids: list[str], scores: list[float], build: Callable[[int], Hit]) -> None:
        self.ids = ids
        self.scores = scores
        self._build = build
        self._built: dict[int, Hit] = {}

    @classmethod
    def of(cls, hits: Sequence[Hit]) -> HitList:
        return cls([h.id for h in hits], [h.score for h in hits], hits.__getitem__)

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Hit: ...

    @overload
    def __getitem__(self, index: slice) -> list[Hit]: ...

    def __getitem__(self, index: int | slice) -> Hit | list[Hit]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        index = range(len(self))[index]  # IndexError as a list raises it; negative indexes work
        if index not in self._built:
            self._built[index] = self._build(index)
        return self._built[index]


def _hit(raw: Any, score: float | None = None) -> Hit:
    entity = raw.get("entity") or raw
    headings = entity.get("headings") or ""
    return Hit(
        id=str(raw["id"]), score=float(raw.get("distance", 0.0) if score is None else score),
        text=entity.get("text", ""), source=entity.get("source", ""), doc_id=entity.get("doc_id", ""),
        title=entity.get("title", ""), headings=tuple(headings.split(HEADING_SEPARATOR)) if headings else (),
        chunk=int(entity.get("chunk", 0)), corpus=entity.get("corpus") or "default",
    )


def _hit_list(rows: Any) -> HitList:
    """pymilvus's hits of one query as a HitList, read through their id and distance columns."""
    if not rows:
        return HitList.of([])
    return HitList([str(i) for i in rows.ids], [float(d) for d in rows.distances], lambda i: _hit(rows[i]))


class PassageStore:
    """One collection with a dense vector, a BM25 sparse vector built by Milvus, and passage fields."""

    def __init__(self, uri: str, collection: str, *, token: str = "", timeout: float = 10.0) -> None:
        self.uri = uri
        self.collection = collection
        self.token = token
        self.timeout = timeout
        self._client: AsyncMilvusClient | None = None
        self._broken = False
        self._reopen_lock = asyncio.Lock()
        self.partitions_supported: bool | None = None  # found out on the first partition call
        self._known_partitions: set[str] | None = None
        self._version: str | None = None

    @property
    def is_embedded(self) -> bool:
        return is_embedded_uri(self.uri)

    async def _connect(self) -> AsyncMilvusClient:
        if self.is_embedded:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            return AsyncMilvusClient(uri=self.uri, token=self.token, timeout=self.timeout, grpc_options=GRPC_OPTIONS)
        except Exception as exc:
            raise StoreUnavailable(f"cannot open Milvus at {self.uri}: {_reason(exc)}") from None

    async def _client_ready(self) -> AsyncMilvusClient:
        if self._client is not None and not self._broken:
            return self._client
        async with self._reopen_lock:
            if self._client is None or self._broken:
                await self._reopen()
        assert self._client is not None
        return self._client

    async def _reopen(self) -> None:
        """Open, or after a failure reopen: an embedded server that died is started again."""
        if self._client is not None:
            await _quietly(self._client.close())
            self._client = None
            if self.is_embedded:
                await asyncio.to_thread(_release_embedded_server, self.uri)
        self._client = await self._connect()
        if self._broken and await self._call(lambda c: c.has_collection(self.collection, timeout=self.timeout), reopen=False):
            await self._call(lambda c: c.load_collection(self.collection, timeout=self.timeout), reopen=False)
        self._broken = False

    async def _call(self, operation: Callable[[AsyncMilvusClient], Awaitable[T]], *, reopen: bool = True) -> T:
        client = await self._client_ready() if reopen else self._client
        assert client is not None
        try:
            return await operation(client)
        except (MilvusException, grpc.RpcError, OSError, asyncio.TimeoutError) as exc:
            if _connection_lost(exc):
                self._broken = True  # the next call reopens (and restarts an embedded server)
            raise StoreUnavailable(f"Milvus is not answering ({self.uri}): {_reason(exc)}") from None

    # -- the collection ------------------------------------------------------------------------

    async def exists(self) -> bool:
        return await self._call(lambda c: c.has_collection(self.collection, timeout=self.timeout))

    async def model_of_collection(self) -> dict[str, Any]:
        """The embedding model the collection was built with ({} for a collection qa_app did not make)."""
        described = await self._call(lambda c: c.describe_collection(self.collection, timeout=self.timeout))
        # Lite 2.5.1 keeps the schema description; other backends keep collection properties.
        for raw in (described.get("description"), (described.get("properties") or {}).get(FINGERPRINT_PROPERTY)):
            try:
                meta = json.loads(raw or "{}")
            except json.JSONDecodeError:
                continue
            if isinstance(meta, dict) and meta:
                return meta
        return {}

    async def ensure(self, model: ModelInfo, *, reset: bool = False) -> bool:
        """Create the collection if missing (or drop and recreate with `reset`), check its model, load it.

        Returns True when the collection was created.
        """
        created = False
        if reset and await self.exists():
            await self.drop()
        if not await self.exists():
            await self._create_versioned(model)
            created = True
        else:
            await self.check_model(model)
        await self._call(lambda c: c.load_collection(self.collection, timeout=self.timeout))
        return created

    async def _create_versioned(self, model: ModelInfo) -> None:
        """On a server, the collection is `NAME__1` behind the alias NAME, so that `qa-app reindex` can
        build `NAME__2` beside it and switch the alias; the embedded file has no aliases."""
        if self.is_embedded or VERSION_SEPARATOR in self.collection:
            await self._create(model)
            return
        physical = PassageStore(self.uri, f"{self.collection}{VERSION_SEPARATOR}1", token=self.token,
                                timeout=self.timeout)
        try:
            if await physical.exists():
                await physical.drop()
            await physical._create(model)
            if not await physical.point_alias(self.collection):
                await physical.drop()
                await self._create(model)
        finally:
            await physical.close()

    async def resolve(self) -> str:
        """The collection this name means: what an alias points to, else the name itself."""
        client = await self._client_ready()
        try:
            described = await client.describe_alias(self.collection, timeout=self.timeout)
        except (MilvusException, grpc.RpcError) as exc:
            if _unimplemented(exc) or "not exist" in str(exc) or "not found" in str(exc):
                return self.collection
            raise StoreUnavailable(f"Milvus is not answering ({self.uri}): {_reason(exc)}") from None
        return str(described.get("collection_name") or self.collection)

    async def point_alias(self, alias: str) -> bool:
        """Make `alias` name this collection, atomically where it named another; False without aliases."""
        client = await self._client_ready()
        try:
            try:
                await client.alter_alias(self.collection, alias, timeout=self.timeout)
            except MilvusException as exc:
                if "not exist" not in str(exc) and "not found" not in str(exc):
                    raise
                await client.create_alias(self.collection, alias, timeout=self.timeout)
        except (MilvusException, grpc.RpcError) as exc:
            if _unimplemented(exc):
                return False
            raise StoreUnavailable(f"cannot point alias {alias!r} at {self.collection!r}: {_reason(exc)}") from None
        return True

    async def versions(self) -> list[str]:
        """The collections behind this name (NAME__1, NAME__2, ...), oldest first."""
        names = await self._call(lambda c: c.list_collections(timeout=self.timeout))
        prefix = self.collection + VERSION_SEPARATOR
        return sorted((n for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()),
                      key=lambda n: int(n[len(prefix):]))

    async def check_schema(self) -> dict[str, Any]:
        """The collection's fingerprint; ModelMismatch when another version of qa_app made it."""
        meta = await self.model_of_collection()
        if meta and meta.get("schema") != SCHEMA_VERSION:
            raise ModelMismatch(f"collection {self.collection!r} was made by another version of qa_app (schema "
                                f"{meta.get('schema')}, this one writes {SCHEMA_VERSION}): rebuild it with qa-app load --reset")
        return meta

    async def check_model(self, model: ModelInfo) -> None:
        meta = await self.check_schema()
        if meta.get("model") != model.name or meta.get("dim") != model.dim:
            built = f"{meta.get('model')} ({meta.get('dim')}-d)" if meta else "an unknown model"
            raise ModelMismatch(
                f"collection {self.collection!r} was built with {built}, not {model.name} ({model.dim}-d): "
                f"use that model (QA_MODEL), another collection (--collection), or rebuild it (qa-app load --reset)"
            )

    async def _create(self, model: ModelInfo) -> None:
        fingerprint = {"app": "qa_app", "schema": SCHEMA_VERSION, "model": model.name, "dim": model.dim}
        for analyzer in ANALYZERS:
            try:
                await self._create_with(fingerprint, model, analyzer)
                break
            except MilvusException as exc:
                if "tokenizer" not in str(exc) and "analyzer" not in str(exc):
                    raise StoreUnavailable(f"cannot create collection {self.collection!r}: {_reason(exc)}") from None
                log.info("analyzer %s refused (%s); trying the next", analyzer, _reason(exc))
        else:
            raise StoreUnavailable(f"Milvus at {self.uri} accepts none of the BM25 analyzers {ANALYZERS}")
        try:  # servers that drop the schema description keep properties (Lite 2.5.1 has none)
            await self._raw_client().alter_collection_properties(
                self.collection, properties={FINGERPRINT_PROPERTY: json.dumps(fingerprint)}, timeout=self.timeout)
        except (MilvusException, grpc.RpcError) as exc:
            log.debug("no collection properties on this backend: %s", _reason(exc))

    async def _create_with(self, fingerprint: dict[str, Any], model: ModelInfo, analyzer: dict[str, Any]) -> None:
        description = json.dumps({**fingerprint, "analyzer": analyzer})
        schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=description)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_BYTES["id"])
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=model.dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_BYTES["text"])
        schema.add_field("search_text", DataType.VARCHAR, max_length=MAX_BYTES["search_text"],
                         enable_analyzer=True, analyzer_params=analyzer)
        for name in ("source", "doc_id", "title", "headings", "content_hash", "corpus"):
            schema.add_field(name, DataType.VARCHAR, max_length=MAX_BYTES[name])
        schema.add_field("chunk", DataType.INT64)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["search_text"], output_field_names=["sparse"]))
        index = AsyncMilvusClient.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client = self._raw_client()
        try:
            await client.create_collection(self.collection, schema=schema, index_params=index,
                                           consistency_level="Strong", timeout=self.timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                raise StoreUnavailable(f"cannot create collection {self.collection!r}: {_reason(exc)}") from None
            # Milvus Lite 3.x's server cannot create indexes through the async API: use the sync one.
            await asyncio.to_thread(self._create_sync, schema, index)

    def _create_sync(self, schema: Any, index: Any) -> None:
        client = MilvusClient(uri=self.uri, token=self.token, timeout=self.timeout, grpc_options=GRPC_OPTIONS)
        try:
            if client.has_collection(self.collection):
                client.drop_collection(self.collection)  # the half-made one the async call left
            client.create_collection(self.collection, schema=schema, index_params=index,
                                     consistency_level="Strong", timeout=self.timeout)
        finally:
            client.close()

    def _raw_client(self) -> AsyncMilvusClient:
        assert self._client is not None, "call a verb that opens the client first"
        return self._client

    async def drop(self) -> None:
        """Drop the collection; for an alias, the alias and every version behind it."""
        if await self.resolve() == self.collection:
            await self._call(lambda c: c.drop_collection(self.collection, timeout=self.timeout))
            return
        await self._call(lambda c: c.drop_alias(self.collection, timeout=self.timeout))
        for name in await self.versions():
            await self._call(lambda c: c.drop_collection(name, timeout=self.timeout))

    async def close(self) -> None:
        if self._client is not None:
            await _quietly(self._client.close())
            self._client = None

    # -- rows ----------------------------------------------------------------------------------

    async def insert(self, passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """Write passages; each corpus goes to its own partition where the backend has partitions."""
        rows = [passage_row(p, v) for p, v in zip(passages, vectors)]
        if not rows:
            return 0
        count = 0
        for corpus in sorted({p.corpus for p in passages}):
            batch = [r for r in rows if r["corpus"] == corpus]
            partition = corpus if await self.ensure_partition(corpus) else None
            result = await self._call(lambda c: c.insert(self.collection, batch, partition_name=partition,
                                                         timeout=self.timeout))
            count += int(result.get("insert_count", len(batch)))
        return count

    async def ensure_partition(self, name: str) -> bool:
        """Create (and load) the partition `name`; False where the backend has no partitions (Lite 2.5.1,
        which would silently ignore partition_name on insert)."""
        if self.partitions_supported is False:
            return False
        client = await self._client_ready()
        try:
            if not await client.has_partition(self.collection, name, timeout=self.timeout):
                await client.create_partition(self.collection, name, timeout=self.timeout)
                await client.load_partitions(self.collection, [name], timeout=self.timeout)
            if self._known_partitions is not None:
                self._known_partitions.add(name)
        except (MilvusException, grpc.RpcError) as exc:
            if not _unimplemented(exc):
                raise StoreUnavailable(f"cannot create partition {name!r}: {_reason(exc)}") from None
            self.partitions_supported = False
            return False
        self.partitions_supported = True
        return True

    async def server_version(self) -> str:
        """The backend's version ("milvus-lite-2.5.1 (embedded)" for the embedded file, which cannot say)."""
        if self._version is None:
            client = await self._client_ready()
            try:
                self._version = str(await client.get_server_version(timeout=self.timeout))
            except (MilvusException, grpc.RpcError) as exc:
                if not _unimplemented(exc):
                    raise StoreUnavailable(f"Milvus is not answering ({self.uri}): {_reason(exc)}") from None
                self._version = "milvus-lite-2.5.1 (embedded)"
        return self._version

    async def _is_lite(self) -> bool:
        # Measured on Milvus Lite 3.2.2: a search naming partitions finds nothing and a query ignores them,
        # so there the corpus field in the expression does the restricting alone.
        return (await self.server_version()).startswith(("milvus_lite", "milvus-lite"))

    async def corpora(self) -> dict[str, int]:
        """Passage count per corpus."""
        counts: dict[str, int] = {}
        async for row in self.rows("", ["corpus"]):
            counts[row["corpus"]] = counts.get(row["corpus"], 0) + 1
        return dict(sorted(counts.items()))

    async def drop_corpus(self, name: str) -> int:
        """Delete a corpus's passages, and its partition where there is one; returns the count deleted."""
        expr = f"corpus == {string_literal(name)}"
        removed = await self.count(expr)
        await self._call(lambda c: c.delete(self.collection, filter=expr, timeout=self.timeout))
        if await self.ensure_partition(name):
            client = await self._client_ready()
            try:  # a loaded partition must be released first; Lite 3.x has no partition-level loading
                await client.release_partitions(self.collection, [name], timeout=self.timeout)
            except (MilvusException, grpc.RpcError) as exc:
                if not _unimplemented(exc):
                    raise StoreUnavailable(f"cannot release partition {name!r}: {_reason(exc)}") from None
            await self._call(lambda c: c.drop_partition(self.collection, name, timeout=self.timeout))
            self._known_partitions = None
        return removed

    async def delete(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        await self._call(lambda c: c.delete(self.collection, ids=list(ids), timeout=self.timeout))
        return len(ids)

    async def get(self, ids: Sequence[str]) -> list[Hit]:
        if not ids:
            return []
        rows = await self._call(lambda c: c.get(self.collection, ids=list(ids), output_fields=OUTPUT_FIELDS,
                                                timeout=self.timeout))
        return [_hit(row, 0.0) for row in rows]

    async def count(self, expr: str = "") -> int:
        rows = await self._call(lambda c: c.query(self.collection, filter=expr, output_fields=["count(*)"],
                                                  timeout=self.timeout))
        return int(rows[0]["count(*)"]) if rows else 0

    async def rows(self, expr: str, fields: Sequence[str]) -> AsyncIterator[dict[str, Any]]:
        """Every row matching `expr`, paged by primary key (one query would stop at 16,384 rows)."""
        last = ""
        while True:
            page_expr = f'id > "{last}"' if not expr else f'({expr}) and id > "{last}"'
            page = await self._call(lambda c: c.query(self.collection, filter=page_expr, output_fields=list(fields),
                                                      limit=QUERY_PAGE, timeout=self.timeout))
            if not page:
                return
            for row in page:
                yield dict(row)
            last = str(page[-1]["id"])  # ids are hex digests: no quotes or backslashes to escape
            if len(page) < QUERY_PAGE:
                return

    async def passages_of(self, source: str, doc_id: str | None = None, limit: int = 500) -> list[Hit]:
        """A source's passages in document order (of one document, for a JSONL source)."""
        expr = f"source == {string_literal(source)}"
        if doc_id is not None:
            expr += f" and doc_id == {string_literal(doc_id)}"
        hits: list[Hit] = []
        async for row in self.rows(expr, OUTPUT_FIELDS):
            hits.append(_hit(row, 0.0))
            if len(hits) >= limit:
                break
        return sorted(hits, key=lambda h: (h.doc_id, h.chunk))

    async def sources(self) -> dict[str, int]:
        """Passage count per source."""
        counts: dict[str, int] = {}
        async for row in self.rows("", ["source"]):
            counts[row["source"]] = counts.get(row["source"], 0) + 1
        return counts

    # -- search --------------------------------------------------------------------------------

    async def search_dense(self, vector: np.ndarray, limit: int, expr: str = "",
                           partitions: Sequence[str] = ()) -> HitList:
        return (await self.search_many("dense", [vector], limit, expr, partitions))[0]

    async def search_sparse(self, text: str, limit: int, expr: str = "", partitions: Sequence[str] = ()) -> HitList:
        return (await self.search_many("sparse", [text], limit, expr, partitions))[0]

    async def search_many(self, field: str, queries: Sequence[Any], limit: int, expr: str = "",
                          partitions: Sequence[str] = ()) -> list[HitList]:
        """One Milvus request for several queries of `field` (vectors for dense, texts for sparse),
        all with the same limit and filter: a ranking per query, in order."""
        data = [q.tolist() if isinstance(q, np.ndarray) else q for q in queries]
        names = await self._partition_names(partitions)
        result = await self._searching(lambda c: c.search(
            self.collection, data=data, anns_field=field, limit=limit, filter=expr, partition_names=names,
            output_fields=OUTPUT_FIELDS, timeout=self.timeout))
        return [_hit_list(rows) for rows in result] if result else [HitList.of([]) for _ in data]

    async def _searching(self, operation: Callable[[AsyncMilvusClient], Awaitable[Any]]) -> Any:
        """A search; None for an empty collection, where Milvus Lite's BM25 divides by a zero average
        length and fails ("Invalid sparse row: NaN or Inf value") instead of finding nothing."""
        try:
            return await self._call(operation)
        except StoreUnavailable as exc:
            if "NaN or Inf" in exc.message and await self.count() == 0:
                return None
            raise

    async def _partition_names(self, corpora: Sequence[str]) -> list[str] | None:
        """Partitions to search, where the backend has them: only those that exist (a search naming a
        missing partition fails, and the corpus clause in the expression says the rest)."""
        if not corpora or self.partitions_supported is False or await self._is_lite():
            return None
        if self._known_partitions is None or not set(corpora) <= self._known_partitions:  # another process may add one
            client = await self._client_ready()
            try:
                self._known_partitions = set(await client.list_partitions(self.collection, timeout=self.timeout))
            except (MilvusException, grpc.RpcError) as exc:
                if not _unimplemented(exc):
                    raise StoreUnavailable(f"cannot list partitions: {_reason(exc)}") from None
                self.partitions_supported = False
                return None
        names = [c for c in corpora if c in self._known_partitions]
        return names or None

    async def search_hybrid(self, vector: np.ndarray, text: str, limit: int, *, candidates: int,
                            rrf_k: int, expr: str = "", partitions: Sequence[str] = ()) -> HitList:
        """Dense and BM25 requests, each with the same filter (Lite ignores a top-level one), fused by RRF."""
        requests = [
            AnnSearchRequest(data=[vector.tolist()], anns_field="dense", param={"metric_type": "IP"},
                             limit=candidates, expr=expr or None),
            AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                             limit=candidates, expr=expr or None),
        ]
        names = await self._partition_names(partitions)
        result = await self._searching(lambda c: c.hybrid_search(
            self.collection, requests, RRFRanker(rrf_k), limit=limit, output_fields=OUTPUT_FIELDS,
            partition_names=names, timeout=self.timeout))
        return _hit_list(result[0] if result else [])


def _connection_lost(exc: BaseException) -> bool:
    """The connection is gone (server dead or unreachable), as opposed to an error the server answered."""
    if isinstance(exc, (OSError, asyncio.TimeoutError)):
        return True
    if isinstance(exc, grpc.RpcError):
        return exc.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined, no-any-return]
    text = str(exc).lower()
    return "fail connecting" in text or "unavailable" in text or "connection" in text


def _unimplemented(exc: BaseException) -> bool:
    if isinstance(exc, grpc.RpcError):
        return exc.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined, no-any-return]
    return "unimplemented" in str(exc).lower() or "not supported" in str(exc).lower()


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.splitlines()[0][:300]


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:  # closing a client to a dead server: nothing left to save
        log.debug("ignored while closing: %s", exc)


def _release_embedded_server(uri: str) -> None:
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)
