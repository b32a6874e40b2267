"""Can the per-list ranks come from fewer searches? `explain_decode.py DATASET`.

RRF's fused score of a passage is 1/(k + dense rank) + 1/(k + BM25 rank), a term missing where the
passage is not in that list's top c. Knowing the BM25 rank (from a BM25 search that returns ids only
and can run while the question is embedded), the dense rank follows from the fused score:
    dense rank = 1 / (score - 1/(k + BM25 rank)) - k        (none when the rest is ~0)
and the cosine shown (and read by the answer floor) is the dot product of the question's vector with
the passage's, asked for as an output field of the hybrid search. So a question needs hybrid_search
plus one BM25 search that is hidden behind the embedding, instead of hybrid + dense + BM25.

This checks the decoded dense ranks and cosines against a real dense search for every passage the
hybrid search returns (top 20), for a few (k, c), and writes the counts to results.jsonl.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from common import DATASETS, encoder, load_eval, record, settings_for
from pymilvus import AnnSearchRequest, RRFRanker

from qa_app.store import MilvusStore

LIMIT = 20


def decode_dense_rank(score: float, sparse_rank: int | None, k: int, candidates: int) -> int | None:
    rest = score - (1 / (k + sparse_rank) if sparse_rank else 0.0)
    if rest < 0.5 / (k + candidates + 1):  # smaller than any dense term could be: not in the dense list
        return None
    return round(1 / rest - k)


async def main() -> None:
    dataset = sys.argv[1]
    queries, _ = load_eval(DATASETS[dataset])
    settings = settings_for(dataset)
    store = MilvusStore(settings.milvus_uri, settings.collection, timeout=120.0)
    qids = list(queries)
    vectors = encoder().encode_questions([queries[q] for q in qids])
    try:
        for k, c in ((60, 50), (20, 50), (10, 30), (60, 200)):
            checked = rank_ok = score_err = 0
            worst = 0.0
            for qid, vector in zip(qids, vectors, strict=True):
                text = queries[qid]
                requests = [AnnSearchRequest(data=[vector.tolist()], anns_field="dense", param={"metric_type": "IP"},
                                             limit=c),
                            AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"}, limit=c)]
                fused = await store.connection.call(lambda cl: cl.hybrid_search(
                    settings.collection, requests, RRFRanker(k), limit=LIMIT, output_fields=["dense"], timeout=60))
                sparse = await store.connection.call(lambda cl: cl.search(
                    settings.collection, data=[text], anns_field="sparse", limit=c, output_fields=[], timeout=60))
                dense = await store.connection.call(lambda cl: cl.search(
                    settings.collection, data=[vector.tolist()], anns_field="dense", limit=c, output_fields=[],
                    timeout=60))
                sparse_rank = {str(h["id"]): i for i, h in enumerate(sparse[0], 1)}
                dense_rank = {str(h["id"]): i for i, h in enumerate(dense[0], 1)}
                dense_score = {str(h["id"]): float(h["distance"]) for h in dense[0]}
                for hit in fused[0]:
                    pid = str(hit["id"])
                    decoded = decode_dense_rank(float(hit["distance"]), sparse_rank.get(pid), k, c)
                    cosine = float(np.dot(np.asarray(hit["entity"]["dense"], dtype=np.float32), vector))
                    checked += 1
                    rank_ok += decoded == dense_rank.get(pid)
                    if pid in dense_score:
                        err = abs(cosine - dense_score[pid])
                        worst = max(worst, err)
                        score_err += err > 1e-5
            row = {"kind": "explain_decode", "dataset": dataset, "k": k, "candidates": c, "limit": LIMIT,
                   "passages_checked": checked, "dense_rank_exact": rank_ok, "cosine_off_by_1e-5": score_err,
                   "max_cosine_error": worst}
            print(json.dumps(row))
            record(row)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
