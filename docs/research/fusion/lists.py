"""Fetch each query's dense and BM25 rankings once, deep (1,000 passages a list), from a collection
built by load.py: `lists.py DATASET [BM25 [INDEX]]` writes /tmp/fusion/lists-DATASET-BM25[-INDEX].pkl.

The grid (grid.py) fuses truncated copies of these lists: Milvus's RRFRanker over two requests of
limits c_dense and c_sparse is a function of the two top-c lists alone, which is what the grid
computes (checked against Milvus's own hybrid_search by check_rrf.py and by the product runs in
confirm.py). Search goes through MilvusStore.search_many, the store's own verb; the question is
embedded by the product's question path (encode_questions), cached.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import time

from common import DATASETS, WORK, encoder, load_eval, settings_for

from qa_app.evaluation import document_of
from qa_app.store import MilvusStore

DEPTH = 1000


def suffix_index(judged: set[str]) -> dict[str, str]:
    # The same mapping qa_app.evaluation builds: a qrels id may be a path suffix of a passage's source.
    return {doc.replace("\\", "/").strip("/"): doc for doc in judged}


def doc_key(passage, suffixes, page_level: bool) -> str:  # type: ignore[no-untyped-def]
    doc = document_of(passage, suffixes)
    if page_level:
        return f"{doc.rsplit('/', 1)[-1]}#{passage.page}"
    return doc


async def fetch(dataset: str, bm25: str = "full", index: str = "") -> dict[str, object]:
    ds = DATASETS[dataset]
    queries, qrels = load_eval(ds)
    suffixes = suffix_index({d.split("#", 1)[0] for j in qrels.values() for d in j})
    settings = settings_for(dataset, bm25, index)
    store = MilvusStore(settings.milvus_uri, settings.collection, timeout=120.0)
    enc = encoder()
    qids = list(queries)
    vectors = enc.encode_questions([queries[q] for q in qids])
    out: dict[str, dict[str, object]] = {}
    started = time.perf_counter()
    try:
        for start in range(0, len(qids), 16):
            chunk = qids[start:start + 16]
            dense = await store.search_many("dense", list(vectors[start:start + 16]), DEPTH)
            sparse = await store.search_many("sparse", [queries[q] for q in chunk], DEPTH)
            for qid, d, s in zip(chunk, dense, sparse, strict=True):
                out[qid] = {
                    "dense": [(h.id, h.score, doc_key(h, suffixes, ds.pages), h.page) for h in d],
                    "sparse": [(h.id, h.score, doc_key(h, suffixes, ds.pages), h.page) for h in s],
                }
        passages = await store.count()
    finally:
        await store.close()
    return {"dataset": dataset, "bm25": bm25, "index": index, "passages": passages, "queries": queries,
            "qrels": qrels, "lists": out, "seconds": time.perf_counter() - started}


def lists_path(dataset: str, bm25: str = "full", index: str = "") -> str:
    return str(WORK / f"lists-{dataset}-{bm25}{'-' + index if index else ''}.pkl")


async def main() -> None:
    args = (sys.argv[1:] + ["full", ""][len(sys.argv) - 2:])[:3] if len(sys.argv) < 4 else sys.argv[1:4]
    dataset, bm25, index = args[0], args[1], args[2]
    data = await fetch(dataset, bm25, index)
    with open(lists_path(dataset, bm25, index), "wb") as handle:
        pickle.dump(data, handle)
    print(f"{dataset} {bm25} {index}: {len(data['lists'])} queries, {data['passages']} passages, "  # type: ignore[arg-type]
          f"{data['seconds']:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
