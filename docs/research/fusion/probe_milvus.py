"""What Milvus Lite 2.5.1 accepts: BM25 k1/b in the sparse index params (do they change scores?),
group_by_field in hybrid_search, and searches that return ids only. A tiny collection with random
vectors; prints what it finds."""

from __future__ import annotations

import asyncio
import json
import shutil

import numpy as np
from common import WORK
from pymilvus import AnnSearchRequest, RRFRanker

from qa_app.models import ModelInfo, Passage
from qa_app.store import MilvusStore

TEXTS = ["the cat sat on the mat", "a cat and a dog", "dogs chase cats all day long in the garden of the house",
         "mat making for beginners", "the stock market fell", "cat cat cat cat cat cat cat cat long text here",
         "nothing about animals"]


async def main() -> None:
    path = WORK / "probe.db"
    for p in WORK.glob("probe.db*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    store = MilvusStore(str(path), "probe", timeout=30)
    info = ModelInfo("probe", 8, 256)
    await store.ensure(info)
    rng = np.random.default_rng(0)
    passages = [Passage(f"p{i}", "s", f"d{i % 3}", "", (), i, t) for i, t in enumerate(TEXTS)]
    vectors = rng.normal(size=(len(TEXTS), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    await store.insert(passages, vectors)
    out: dict[str, object] = {}

    async def bm25_scores() -> list[tuple[str, float]]:
        hits = await store.search_sparse("cat", 10)
        return [(i, round(s, 4)) for i, s in zip(hits.ids, hits.scores, strict=True)]

    out["default"] = await bm25_scores()
    client = store.connection
    for k1, b in ((0.9, 0.4), (1.2, 0.75), (2.0, 1.0), (1.2, 0.0)):
        await client.call(lambda c: c.release_collection("probe"))
        await client.call(lambda c: c.drop_index("probe", "sparse"))
        idx = c_index = None
        from pymilvus import AsyncMilvusClient
        idx = AsyncMilvusClient.prepare_index_params()
        idx.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                      params={"bm25_k1": k1, "bm25_b": b})
        try:
            await client.call(lambda c: c.create_index("probe", idx))
            await client.call(lambda c: c.load_collection("probe"))
            out[f"k1={k1},b={b}"] = await bm25_scores()
        except Exception as exc:
            out[f"k1={k1},b={b}"] = f"error: {exc}"
            del c_index
    # group_by in hybrid_search
    reqs = [AnnSearchRequest(data=[vectors[0].tolist()], anns_field="dense", param={"metric_type": "IP"}, limit=5),
            AnnSearchRequest(data=["cat"], anns_field="sparse", param={"metric_type": "BM25"}, limit=5)]
    try:
        res = await client.call(lambda c: c.hybrid_search("probe", reqs, RRFRanker(60), limit=5, group_by_field="doc_id",
                                                          output_fields=["doc_id"]))
        out["hybrid_group_by"] = [(h["id"], h["entity"]["doc_id"]) for h in res[0]]
    except Exception as exc:
        out["hybrid_group_by"] = f"error: {exc}"
    try:
        res = await client.call(lambda c: c.search("probe", data=["cat"], anns_field="sparse", limit=5,
                                                   group_by_field="doc_id", output_fields=["doc_id"]))
        out["search_group_by"] = [(h["id"], h["entity"]["doc_id"]) for h in res[0]]
    except Exception as exc:
        out["search_group_by"] = f"error: {exc}"
    res = await client.call(lambda c: c.search("probe", data=["cat"], anns_field="sparse", limit=5, output_fields=[]))
    out["ids_only"] = [dict(h) for h in res[0]]
    res = await client.call(lambda c: c.hybrid_search("probe", reqs, RRFRanker(60), limit=5, output_fields=[]))
    out["hybrid_ids_only"] = [dict(h) for h in res[0]]
    await store.close()
    print(json.dumps(out, indent=1, default=str))


asyncio.run(main())
