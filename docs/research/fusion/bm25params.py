"""BM25 k1 and b on Milvus Lite 2.5.1: `bm25params.py DATASET` rebuilds the sparse index of the
data set's `full` collection with `bm25_k1` / `bm25_b` in its params (the stored sparse vectors stay;
probe_milvus.py showed the scores change with them), fetches the BM25 lists again, and writes
lists-DATASET-full-k1_<k1>_b_<b>.pkl (dense lists copied from the default). The index is put back to
the product's (no params: k1 1.2, b 0.75) at the end.
"""

from __future__ import annotations

import asyncio
import pickle
import sys

from common import DATASETS, load_eval, settings_for
from lists import DEPTH, doc_key, lists_path, suffix_index
from pymilvus import AsyncMilvusClient

from qa_app.store import MilvusStore

PARAMS = [(1.2, 0.75), (0.9, 0.4), (1.5, 0.75), (2.0, 0.75), (1.2, 0.5), (1.2, 0.9), (1.2, 1.0), (0.8, 0.75)]


async def reindex(store: MilvusStore, params: dict[str, float] | None) -> None:
    name = store.collection
    await store.connection.call(lambda c: c.release_collection(name, timeout=120))
    await store.connection.call(lambda c: c.drop_index(name, "sparse", timeout=120))
    index = AsyncMilvusClient.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", **({"params": params} if params else {}))
    await store.connection.call(lambda c: c.create_index(name, index, timeout=300))
    await store.connection.call(lambda c: c.load_collection(name, timeout=300))


async def main() -> None:
    dataset = sys.argv[1]
    ds = DATASETS[dataset]
    queries, qrels = load_eval(ds)
    suffixes = suffix_index({d.split("#", 1)[0] for j in qrels.values() for d in j})
    with open(lists_path(dataset), "rb") as handle:
        base = pickle.load(handle)
    settings = settings_for(dataset)
    store = MilvusStore(settings.milvus_uri, settings.collection, timeout=300.0)
    qids = list(queries)
    try:
        await store.count()
        for k1, b in PARAMS:
            await reindex(store, {"bm25_k1": k1, "bm25_b": b})
            data = dict(base)
            data["lists"] = {q: dict(v) for q, v in base["lists"].items()}
            data["index"] = f"k1_{k1}_b_{b}"
            for start in range(0, len(qids), 16):
                chunk = qids[start:start + 16]
                sparse = await store.search_many("sparse", [queries[q] for q in chunk], DEPTH)
                for qid, s in zip(chunk, sparse, strict=True):
                    data["lists"][qid]["sparse"] = [(h.id, h.score, doc_key(h, suffixes, ds.pages), h.page) for h in s]
            with open(lists_path(dataset, "full", data["index"]), "wb") as handle:
                pickle.dump(data, handle)
            same = sum(data["lists"][q]["sparse"][:10] == base["lists"][q]["sparse"][:10] for q in qids)
            print(f"k1 {k1} b {b}: top-10 BM25 list unchanged for {same}/{len(qids)} queries")
    finally:
        try:
            await reindex(store, None)
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
