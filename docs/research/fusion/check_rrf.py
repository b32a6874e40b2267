"""Does the grid's RRF (fuse.rrf on the cached lists) give Milvus's hybrid_search ranking? And does
Milvus Lite 2.5.1 accept requests of different limits, and the same field twice (a weight)?

`check_rrf.py DATASET` compares, per query, the top 20 of Milvus's hybrid_search (RRFRanker) with
fuse.rrf for a few (k, c_dense, c_sparse, dense copies), and prints the share of identical rankings
and of identical document rankings.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys

from common import encoder, record, settings_for
from fuse import docs_of, rrf
from lists import lists_path
from pymilvus import AnnSearchRequest, RRFRanker

from qa_app.store import MilvusStore

CONFIGS = [(60, 50, 50, 1), (20, 100, 50, 1), (10, 200, 20, 1), (60, 50, 50, 2), (40, 100, 100, 1)]


async def main() -> None:
    dataset = sys.argv[1]
    with open(lists_path(dataset), "rb") as handle:
        data = pickle.load(handle)
    settings = settings_for(dataset)
    store = MilvusStore(settings.milvus_uri, settings.collection, timeout=120.0)
    queries = data["queries"]
    qids = list(queries)
    vectors = encoder().encode_questions([queries[q] for q in qids])
    try:
        for k, cd, cs, copies in CONFIGS:
            same = same_docs = 0
            for qid, vector in zip(qids, vectors, strict=True):
                requests = [AnnSearchRequest(data=[vector.tolist()], anns_field="dense", param={"metric_type": "IP"},
                                             limit=cd) for _ in range(copies)]
                requests.append(AnnSearchRequest(data=[queries[qid]], anns_field="sparse",
                                                 param={"metric_type": "BM25"}, limit=cs))
                result = await store.connection.call(lambda c: c.hybrid_search(
                    settings.collection, requests, RRFRanker(k), limit=20, output_fields=["doc_id"], timeout=60))
                milvus = [str(h["id"]) for h in result[0]]
                lists = data["lists"][qid]
                mine = rrf(lists["dense"], lists["sparse"], k, cd, cs, 20, copies)
                same += milvus == [h[0] for h in mine]
                doc_of = {h[0]: h[2] for h in [*lists["dense"], *lists["sparse"]]}
                same_docs += list(dict.fromkeys(doc_of[p] for p in milvus)) == docs_of(mine)
            row = {"kind": "check_rrf", "dataset": dataset, "k": k, "cd": cd, "cs": cs, "dense_copies": copies,
                   "queries": len(qids), "same_passage_ranking": same, "same_document_ranking": same_docs}
            print(json.dumps(row))
            record(row)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
