"""Research loader: qa_app's own Loader, with an embedding cache and a configurable BM25 analyzer.

Loads PATHS into a fresh collection (always --reset) of a scratch Milvus Lite file, through
qa_app.pipeline.Pipeline / qa_app.ingest.Loader, so chunking, passage text and rows are exactly the
app's. Differences, for experiments only:
  * vectors are looked up in / saved to a cache keyed by (model, embed_text), so re-loading the same
    corpus with another chunk size or analyzer only embeds the passages that changed;
  * --analyzer replaces the {"type": "english"} analyzer of the BM25 field (a JSON object);
  * --bm25 "k1,b" sets the BM25 parameters of the sparse index.

Usage:
  .venv/bin/python research/retrieval/rload.py PATH... --db /tmp/research/x.db [--chunk-tokens 256]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# Pin qa_app: the working tree changes under concurrent edits (schema 2 appeared mid-run).
if os.environ.get("RESEARCH_QA_APP"):
    sys.path.insert(0, os.environ["RESEARCH_QA_APP"])

from qa_app import store as store_mod  # noqa: E402
from qa_app.config import load_settings  # noqa: E402
from qa_app.pipeline import Pipeline  # noqa: E402

CACHE_DIR = Path("/tmp/research/cache")


class CachingEncoder:
    """Wraps a DenseEncoder-like object; encode() embeds only texts not already in the cache."""

    def __init__(self, inner, cache_name: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.info = inner.info
        self.path = CACHE_DIR / f"{cache_name}.npz"
        self.cache: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        if self.path.exists():
            data = np.load(self.path)
            self.cache = dict(zip(data["keys"].tolist(), data["vectors"]))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vectors = self.inner.encode([texts[i] for i in missing], batch_size)
            for i, v in zip(missing, vectors):
                self.cache[keys[i]] = v
        return np.stack([self.cache[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.cache))
        vectors = np.stack(list(self.cache.values())) if self.cache else np.zeros((0, self.info.dim))
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self.path)


def patch_store(analyzer: dict | None, bm25: tuple[float, float] | None) -> None:
    """Make PassageStore._create use another analyzer / BM25 parameters (research only)."""
    if analyzer is None and bm25 is None:
        return
    original_add_field = store_mod.AsyncMilvusClient.create_schema
    original_prepare = store_mod.AsyncMilvusClient.prepare_index_params

    def create_schema(*args, **kwargs):
        schema = original_add_field(*args, **kwargs)
        add_field = schema.add_field

        def patched(name, dtype, **kw):
            if analyzer is not None and kw.get("enable_analyzer"):
                kw["analyzer_params"] = analyzer
            return add_field(name, dtype, **kw)

        schema.add_field = patched
        return schema

    def prepare_index_params(*args, **kwargs):
        index = original_prepare(*args, **kwargs)
        add_index = index.add_index

        def patched(field_name, **kw):
            if bm25 is not None and field_name == "sparse":
                kw["params"] = {"bm25_k1": bm25[0], "bm25_b": bm25[1]}
            return add_index(field_name, **kw)

        index.add_index = patched
        return index

    store_mod.AsyncMilvusClient.create_schema = staticmethod(create_schema)  # type: ignore[method-assign]
    store_mod.AsyncMilvusClient.prepare_index_params = staticmethod(prepare_index_params)  # type: ignore


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", default="passages")
    parser.add_argument("--chunk-tokens", type=int)
    parser.add_argument("--chunk-overlap", type=int)
    parser.add_argument("--analyzer", type=json.loads)
    parser.add_argument("--bm25", type=lambda s: tuple(float(x) for x in s.split(",")))
    parser.add_argument("--encoder", default="minilm", choices=["minilm"])
    parser.add_argument("--cache", help="cache name (default: the encoder name)")
    args = parser.parse_args()

    patch_store(args.analyzer, args.bm25)
    settings = load_settings(os.environ).replace(milvus_uri=args.db, collection=args.collection,
                                                 chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap)
    pipeline = await Pipeline.open(settings)
    encoder = CachingEncoder(pipeline.encoder, args.cache or args.encoder)
    pipeline.encoder = encoder  # type: ignore[assignment]
    started = time.perf_counter()
    try:
        await pipeline.ensure_collection(reset=True)
        report = await pipeline.loader(show_progress=False).load(args.paths)
    finally:
        await pipeline.close()
        encoder.save()
    took = time.perf_counter() - started
    print(json.dumps({"db": args.db, "chunk_tokens": settings.chunk_tokens, "analyzer": args.analyzer,
                      "bm25": args.bm25, "encoder": args.encoder, "passages": report.passages_added,
                      "embedded": encoder.misses, "cached": encoder.hits, "seconds": round(took, 1),
                      "encode_seconds": round(report.encode_seconds, 1)}))


if __name__ == "__main__":
    asyncio.run(main())
