"""The collection's schema, its indexes and the fingerprint that says which model and schema built it."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import grpc
from pymilvus import AsyncMilvusClient, DataType, Function, FunctionType, MilvusClient

from qa_app.errors import ModelMismatch, StoreUnavailable
from qa_app.models import ModelInfo
from qa_app.store.compat import (
    ANALYZERS,
    GRPC_OPTIONS,
    MAX_BYTES,
    MILVUS_ERRORS,
    analyzer_refused,
    reason,
    unimplemented,
)
from qa_app.store.connection import Connection

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 3: page, page_end, page_label and format of each passage
FINGERPRINT_PROPERTY = "qa_app.fingerprint"
VARCHAR_FIELDS = ("source", "doc_id", "title", "headings", "content_hash", "corpus", "page_label", "format")
INT_FIELDS = ("chunk", "page", "page_end")
OUTPUT_FIELDS = ["text", "source", "doc_id", "title", "headings", "chunk", "corpus", "page", "page_end",
                 "page_label", "format"]


def fingerprint_of(model: ModelInfo) -> dict[str, Any]:
    # The precision that embedded the first passages is recorded for the record, not enforced: vectors of
    # fp32, bf16 and int8 may be mixed in one collection and searched by questions of any of them, which
    # kept dense nDCG@10 within 0.005 of fp32 on both dev sets (docs/performance.md, "Paths side by side").
    return {"app": "qa_app", "schema": SCHEMA_VERSION, "model": model.name, "dim": model.dim,
            "precision": model.precision}


def read_fingerprint(described: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint in a describe_collection answer ({} for a collection qa_app did not make)."""
    # Lite 2.5.1 keeps the schema description; other backends keep collection properties.
    for raw in (described.get("description"), (described.get("properties") or {}).get(FINGERPRINT_PROPERTY)):
        try:
            meta = json.loads(raw or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(meta, dict) and meta:
            return meta
    return {}


def check_fingerprint(collection: str, meta: dict[str, Any], model: ModelInfo | None = None) -> None:
    """ModelMismatch when another version of qa_app made the collection, or (given `model`) another model."""
    if meta and meta.get("schema") != SCHEMA_VERSION:
        raise ModelMismatch(f"collection {collection!r} was made by another version of qa_app (schema "
                            f"{meta.get('schema')}, this one writes {SCHEMA_VERSION}): rebuild it with qa-app load --reset")
    if model is not None and (meta.get("model") != model.name or meta.get("dim") != model.dim):
        built = f"{meta.get('model')} ({meta.get('dim')}-d)" if meta else "an unknown model"
        raise ModelMismatch(
            f"collection {collection!r} was built with {built}, not {model.name} ({model.dim}-d): "
            f"use that model (QA_MODEL), another collection (--collection), or rebuild it (qa-app load --reset)")
    if model is not None and meta.get("precision", model.precision) != model.precision:
        log.info("collection %r was built in %s, this process embeds in %s: compatible (same model and vectors "
                 "within the quality gate)", collection, meta["precision"], model.precision)


async def create_collection(connection: Connection, collection: str, model: ModelInfo) -> None:
    """Create the collection with the best BM25 analyzer the backend accepts, and record its fingerprint."""
    fingerprint = fingerprint_of(model)
    for analyzer in ANALYZERS:
        try:
            await _create_with(connection, collection, fingerprint, model, analyzer)
            break
        except MILVUS_ERRORS as exc:
            if not analyzer_refused(exc):
                raise StoreUnavailable(f"cannot create collection {collection!r}: {reason(exc)}") from None
            log.info("analyzer %s refused (%s); trying the next", analyzer, reason(exc))
    else:
        raise StoreUnavailable(f"Milvus at {connection.uri} accepts none of the BM25 analyzers {ANALYZERS}")
    try:  # servers that drop the schema description keep properties (Lite 2.5.1 has none)
        await connection.attempt(lambda c: c.alter_collection_properties(
            collection, properties={FINGERPRINT_PROPERTY: json.dumps(fingerprint)}, timeout=connection.timeout))
    except MILVUS_ERRORS as exc:
        log.debug("no collection properties on this backend: %s", reason(exc))


def _schema(fingerprint: dict[str, Any], model: ModelInfo, analyzer: dict[str, Any]) -> Any:
    description = json.dumps({**fingerprint, "analyzer": analyzer})
    schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=description)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_BYTES["id"])
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=model.dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_BYTES["text"])
    schema.add_field("search_text", DataType.VARCHAR, max_length=MAX_BYTES["search_text"],
                     enable_analyzer=True, analyzer_params=analyzer)
    for name in VARCHAR_FIELDS:
        schema.add_field(name, DataType.VARCHAR, max_length=MAX_BYTES[name])
    for name in INT_FIELDS:
        schema.add_field(name, DataType.INT64)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["search_text"], output_field_names=["sparse"]))
    return schema


def _indexes() -> Any:
    index = AsyncMilvusClient.prepare_index_params()
    index.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return index


async def _create_with(connection: Connection, collection: str, fingerprint: dict[str, Any], model: ModelInfo,
                       analyzer: dict[str, Any]) -> None:
    schema, index = _schema(fingerprint, model, analyzer), _indexes()
    try:
        await connection.attempt(lambda c: c.create_collection(
            collection, schema=schema, index_params=index, consistency_level="Strong", timeout=connection.timeout))
    except grpc.RpcError as exc:
        if not unimplemented(exc):
            raise StoreUnavailable(f"cannot create collection {collection!r}: {reason(exc)}") from None
        # Milvus Lite 3.x's server cannot create indexes through the async API: use the sync one.
        await asyncio.to_thread(_create_sync, connection, collection, schema, index)


def _create_sync(connection: Connection, collection: str, schema: Any, index: Any) -> None:
    client = MilvusClient(uri=connection.uri, token=connection.token, timeout=connection.timeout,
                          grpc_options=GRPC_OPTIONS)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)  # the half-made one the async call left
        client.create_collection(collection, schema=schema, index_params=index, consistency_level="Strong",
                                 timeout=connection.timeout)
    finally:
        client.close()
