"""The passage collection in Milvus: a dense vector, a BM25 sparse vector that Milvus builds from the
text, and the passage's fields. The only module whose callers reach pymilvus, through a few verbs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from pymilvus import AnnSearchRequest, AsyncMilvusClient, RRFRanker

from qa_app.errors import StoreUnavailable
from qa_app.models import ModelInfo, Passage
from qa_app.store import admin, schema
from qa_app.store.compat import QUERY_PAGE, empty_bm25_failure
from qa_app.store.connection import Connection
from qa_app.store.expressions import string_literal
from qa_app.store.rows import HitList, passage_row, row_passage


class MilvusStore:
    """One collection (or the alias of one) at a Milvus URI: an embedded .db file or a server."""

    def __init__(self, uri: str, collection: str, *, token: str = "", timeout: float = 10.0) -> None:
        self.collection = collection
        self.connection = Connection(uri, token=token, timeout=timeout)
        self.connection.on_reopen = self._load_after_restart
        self.partitions = admin.Partitions(self.connection, collection)

    @property
    def uri(self) -> str:
        return self.connection.uri

    @property
    def timeout(self) -> float:
        return self.connection.timeout

    @property
    def is_embedded(self) -> bool:
        return self.connection.is_embedded

    def sibling(self, collection: str) -> MilvusStore:
        """Another collection at the same Milvus, with its own client."""
        return MilvusStore(self.uri, collection, token=self.connection.token, timeout=self.timeout)

    async def _call(self, operation: Callable[[AsyncMilvusClient], Awaitable[Any]]) -> Any:
        return await self.connection.call(operation)

    async def _load_after_restart(self) -> None:
        if await self._call(lambda c: c.has_collection(self.collection, timeout=self.timeout)):
            await self._call(lambda c: c.load_collection(self.collection, timeout=self.timeout))

    # -- the collection ------------------------------------------------------------------------

    async def exists(self) -> bool:
        return bool(await self._call(lambda c: c.has_collection(self.collection, timeout=self.timeout)))

    async def fingerprint(self) -> dict[str, Any]:
        """What built the collection: app, schema version, model and dim ({} if qa_app did not make it)."""
        described = await self._call(lambda c: c.describe_collection(self.collection, timeout=self.timeout))
        return schema.read_fingerprint(described)

    async def check_schema(self) -> dict[str, Any]:
        """The collection's fingerprint; ModelMismatch when another version of qa_app made it."""
        meta = await self.fingerprint()
        schema.check_fingerprint(self.collection, meta)
        return meta

    async def check_model(self, model: ModelInfo) -> None:
        schema.check_fingerprint(self.collection, await self.fingerprint(), model)

    async def ensure(self, model: ModelInfo, *, reset: bool = False) -> bool:
        """Create the collection if missing (or drop and recreate with `reset`), check its model, load it.
        Returns True when the collection was created."""
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
        if self.is_embedded or admin.VERSION_SEPARATOR in self.collection:
            await schema.create_collection(self.connection, self.collection, model)
            return
        physical = self.sibling(f"{self.collection}{admin.VERSION_SEPARATOR}1")
        try:
            if await physical.exists():
                await physical.drop()
            await schema.create_collection(physical.connection, physical.collection, model)
            if not await admin.point_alias(physical.connection, physical.collection, self.collection):
                await physical.drop()
                await schema.create_collection(self.connection, self.collection, model)
        finally:
            await physical.close()

    async def resolve(self) -> str:
        """The collection this name means: what an alias points to, else the name itself."""
        return await admin.resolve_alias(self.connection, self.collection)

    async def point_alias(self, alias: str) -> bool:
        """Make `alias` name this collection; False where the backend has no aliases."""
        return await admin.point_alias(self.connection, self.collection, alias)

    async def versions(self) -> list[str]:
        return await admin.versions(self.connection, self.collection)

    async def server_version(self) -> str:
        return await self.partitions.version()

    async def drop(self) -> None:
        """Drop the collection; for an alias, the alias and every version behind it."""
        if await self.resolve() == self.collection:
            await self._call(lambda c: c.drop_collection(self.collection, timeout=self.timeout))
            return
        await self._call(lambda c: c.drop_alias(self.collection, timeout=self.timeout))
        for name in await self.versions():
            await self._call(lambda c: c.drop_collection(name, timeout=self.timeout))

    async def close(self) -> None:
        await self.connection.close()

    # -- rows ----------------------------------------------------------------------------------

    async def insert(self, passages: Sequence[Passage], vectors: np.ndarray) -> int:
        """Write passages; each corpus goes to its own partition where the backend has partitions."""
        rows = [passage_row(p, v) for p, v in zip(passages, vectors, strict=True)]
        count = 0
        for corpus in sorted({p.corpus for p in passages}):
            batch = [r for r in rows if r["corpus"] == corpus]
            partition = corpus if await self.partitions.ensure(corpus) else None
            result = await self._call(lambda c: c.insert(self.collection, batch, partition_name=partition,
                                                         timeout=self.timeout))
            count += int(result.get("insert_count", len(batch)))
        return count

    async def delete(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        await self._call(lambda c: c.delete(self.collection, ids=list(ids), timeout=self.timeout))
        return len(ids)

    async def get(self, ids: Sequence[str]) -> list[Passage]:
        if not ids:
            return []
        rows = await self._call(lambda c: c.get(self.collection, ids=list(ids), output_fields=schema.OUTPUT_FIELDS,
                                                timeout=self.timeout))
        return [row_passage(row, 0.0) for row in rows]

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

    async def passages_of(self, source: str, doc_id: str | None = None, limit: int = 500) -> list[Passage]:
        """A source's passages in document order (of one document, for a JSONL source)."""
        expr = f"source == {string_literal(source)}"
        if doc_id is not None:
            expr += f" and doc_id == {string_literal(doc_id)}"
        passages: list[Passage] = []
        async for row in self.rows(expr, schema.OUTPUT_FIELDS):
            passages.append(row_passage(row, 0.0))
            if len(passages) >= limit:
                break
        return sorted(passages, key=lambda p: (p.doc_id, p.chunk))

    async def counts_by(self, field: str) -> dict[str, int]:
        """Passage count per value of a field (source, corpus)."""
        counts: dict[str, int] = {}
        async for row in self.rows("", [field]):
            counts[row[field]] = counts.get(row[field], 0) + 1
        return dict(sorted(counts.items()))

    async def sources(self) -> dict[str, int]:
        return await self.counts_by("source")

    async def corpora(self) -> dict[str, int]:
        return await self.counts_by("corpus")

    async def drop_corpus(self, name: str) -> int:
        """Delete a corpus's passages, and its partition where there is one; returns the count deleted."""
        expr = f"corpus == {string_literal(name)}"
        removed = await self.count(expr)
        await self._call(lambda c: c.delete(self.collection, filter=expr, timeout=self.timeout))
        await self.partitions.drop(name)
        return removed

    # -- search --------------------------------------------------------------------------------

    async def search_dense(self, vector: np.ndarray, limit: int, expr: str = "",
                           partitions: Sequence[str] = ()) -> HitList:
        return (await self.search_many("dense", [vector], limit, expr, partitions))[0]

    async def search_sparse(self, text: str, limit: int, expr: str = "", partitions: Sequence[str] = ()) -> HitList:
        return (await self.search_many("sparse", [text], limit, expr, partitions))[0]

    async def search_many(self, field: str, queries: Sequence[Any], limit: int, expr: str = "",
                          partitions: Sequence[str] = (), *, ids_only: bool = False) -> list[HitList]:
        """One Milvus request for several queries of `field` ("dense": vectors, "sparse": texts), all
        with the same limit and filter: a ranking per query, in order. `ids_only` fetches no passage
        fields (for a ranking that only explains another)."""
        data = [q.tolist() if isinstance(q, np.ndarray) else q for q in queries]
        names = await self.partitions.to_search(partitions)
        result = await self._searching(lambda c: c.search(
            self.collection, data=data, anns_field=field, limit=limit, filter=expr, partition_names=names,
            output_fields=[] if ids_only else schema.OUTPUT_FIELDS, timeout=self.timeout))
        return [HitList.of_result(rows) for rows in result] if result else [HitList.of([]) for _ in data]

    async def search_hybrid(self, vector: np.ndarray, text: str, limit: int, *, candidates: int,
                            rrf_k: int, expr: str = "", partitions: Sequence[str] = (),
                            with_vectors: bool = False) -> HitList:
        """Dense and BM25 requests, each with the same filter (Lite ignores a top-level one), fused by
        RRF. `with_vectors` also returns each passage's dense vector (HitList.vectors)."""
        requests = [
            AnnSearchRequest(data=[vector.tolist()], anns_field="dense", param={"metric_type": "IP"},
                             limit=candidates, expr=expr or None),
            AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                             limit=candidates, expr=expr or None),
        ]
        names = await self.partitions.to_search(partitions)
        result = await self._searching(lambda c: c.hybrid_search(
            self.collection, requests, RRFRanker(rrf_k), limit=limit,
            output_fields=[*schema.OUTPUT_FIELDS, "dense"] if with_vectors else schema.OUTPUT_FIELDS,
            partition_names=names, timeout=self.timeout))
        return HitList.of_result(result[0] if result else [], with_vectors=with_vectors)

    async def _searching(self, operation: Callable[[AsyncMilvusClient], Awaitable[Any]]) -> Any:
        """A search; None for an empty collection, where Lite's BM25 fails instead of finding nothing."""
        try:
            return await self._call(operation)
        except StoreUnavailable as exc:
            if empty_bm25_failure(exc) and await self.count() == 0:
                return None
            raise
