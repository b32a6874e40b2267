"""What the per-list ranks of the RRF answer cost: `bench_explain.py DATASET [ROUNDS]`.

Each option runs what one hybrid question needs from Milvus (the question vectors are computed once
before: this times the searches only), for every query of the data set, ROUNDS times in a shuffled
order, at concurrency 1 (p50 and p90 of one question) and 8 (questions/s; p50), the options
interleaved (see below) so that the machine's changing load falls on each alike:
* hybrid_only      hybrid_search alone: RRF ranking, no per-list ranks (the floor)
* hybrid+full      hybrid_search + dense and BM25 searches with every output field (the code today)
* hybrid+ids       hybrid_search + dense and BM25 searches returning ids and scores only
* hybrid+ids_batch the same, the two explanation searches of concurrent questions sent as one
                   request of several queries per field (what SearchBatcher does)
* hybrid+full_batch the code today with SearchBatcher batching, for comparison
* hybrid_vec       hybrid_search that also returns the passages' dense vectors: with the BM25 ranks
                   of an ids-only BM25 search (which runs while the question is embedded), every
                   per-list rank and the cosine follow exactly (explain_decode.py): the cost after
                   the question is embedded
* hybrid_vec+sparse_ids  the same with the BM25 ids search counted (not hidden behind the embedding)
* two_lists_full   dense + BM25 with every field, fused in the app (no hybrid_search: what weighted
                   fusion costs)
The collection is a data set's `full` collection from load.py; limit 5 (top_k), 50 candidates a list.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from typing import Any

from common import DATASETS, encoder, load_eval, record, settings_for
from pymilvus import AnnSearchRequest, RRFRanker

from qa_app.store import HitList, MilvusStore
from qa_app.store.schema import OUTPUT_FIELDS

LIMIT, CANDIDATES = 5, 50


class Batch:
    """Concurrent searches of one field and fields list sent as one request (one in flight)."""

    def __init__(self, store: MilvusStore, field: str, fields: list[str]) -> None:
        self.store, self.field, self.fields = store, field, fields
        self.pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self.busy = False
        self.requests = 0

    async def search(self, query: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((query, future))
        if not self.busy:
            asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        self.busy = True
        try:
            while self.pending:
                batch, self.pending = self.pending[:16], self.pending[16:]
                self.requests += 1
                result = await self.store.connection.call(lambda c: c.search(
                    self.store.collection, data=[q for q, _ in batch], anns_field=self.field, limit=CANDIDATES,
                    output_fields=self.fields, timeout=60))
                for (_, future), rows in zip(batch, result, strict=True):
                    future.set_result(HitList.of_result(rows))
        finally:
            self.busy = False


async def main() -> None:
    dataset = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    queries, _ = load_eval(DATASETS[dataset])
    settings = settings_for(dataset)
    store = MilvusStore(settings.milvus_uri, settings.collection, timeout=60.0)
    texts = list(queries.values())
    vectors = encoder().encode_questions(texts)
    work = [(t, v) for t, v in zip(texts, vectors, strict=True)] * rounds
    random.Random(7).shuffle(work)

    async def plain(field: str, query: Any, fields: list[str]) -> Any:
        return await store.connection.call(lambda c: c.search(
            store.collection, data=[query], anns_field=field, limit=CANDIDATES, output_fields=fields, timeout=60))

    batches: dict[str, Batch] = {}

    def options() -> dict[str, Any]:
        def hybrid(text: str, vector: Any) -> Any:
            return store.search_hybrid(vector, text, LIMIT, candidates=CANDIDATES, rrf_k=60)

        async def hybrid_only(text: str, vector: Any) -> Any:
            return await hybrid(text, vector)

        async def hybrid_full(text: str, vector: Any) -> Any:
            return await asyncio.gather(hybrid(text, vector), plain("dense", vector.tolist(), OUTPUT_FIELDS),
                                        plain("sparse", text, OUTPUT_FIELDS))

        async def hybrid_ids(text: str, vector: Any) -> Any:
            return await asyncio.gather(hybrid(text, vector), plain("dense", vector.tolist(), []),
                                        plain("sparse", text, []))

        async def hybrid_ids_batch(text: str, vector: Any) -> Any:
            return await asyncio.gather(hybrid(text, vector), batches["d_ids"].search(vector.tolist()),
                                        batches["s_ids"].search(text))

        async def hybrid_full_batch(text: str, vector: Any) -> Any:
            return await asyncio.gather(hybrid(text, vector), batches["d_full"].search(vector.tolist()),
                                        batches["s_full"].search(text))

        async def hybrid_vec(text: str, vector: Any) -> Any:
            requests = [AnnSearchRequest(data=[vector.tolist()], anns_field="dense", param={"metric_type": "IP"},
                                         limit=CANDIDATES),
                        AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                                         limit=CANDIDATES)]
            return await store.connection.call(lambda c: c.hybrid_search(
                store.collection, requests, RRFRanker(60), limit=LIMIT, output_fields=[*OUTPUT_FIELDS, "dense"],
                timeout=60))

        async def hybrid_vec_sparse_ids(text: str, vector: Any) -> Any:
            return await asyncio.gather(hybrid_vec(text, vector), plain("sparse", text, []))

        async def two_lists_full(text: str, vector: Any) -> Any:
            return await asyncio.gather(plain("dense", vector.tolist(), OUTPUT_FIELDS),
                                        plain("sparse", text, OUTPUT_FIELDS))

        return {"hybrid_only": hybrid_only, "hybrid+full": hybrid_full, "hybrid+ids": hybrid_ids,
                "hybrid+ids_batch": hybrid_ids_batch, "hybrid_vec": hybrid_vec,
                "hybrid_vec+sparse_ids": hybrid_vec_sparse_ids, "hybrid+full_batch": hybrid_full_batch,
                "two_lists_full": two_lists_full}

    try:
        await store.count()
        for name, fields in (("d_ids", "dense"), ("s_ids", "sparse"), ("d_full", "dense"), ("s_full", "sparse")):
            batches[name] = Batch(store, fields, [] if name.endswith("ids") else OUTPUT_FIELDS)
        for t, v in work[:30]:  # warm up
            await options()["hybrid+full"](t, v)
        # Options interleave, so that a change of the machine's load falls on all of them alike:
        # at concurrency 1 every question runs each option in turn (rotating which goes first); at
        # concurrency 8 the options take turns by blocks of 40 questions.
        opts = options()
        names = list(opts)
        for concurrency in (1, 8):
            runs = [n for n in names if concurrency > 1 or not n.endswith("_batch")]
            times: dict[str, list[float]] = {n: [] for n in runs}
            busy: dict[str, float] = {n: 0.0 for n in runs}
            gate = asyncio.Semaphore(concurrency)

            async def one(name: str, text: str, vector: Any, gate: asyncio.Semaphore = gate,
                          times: dict[str, list[float]] = times) -> None:
                async with gate:
                    t0 = time.perf_counter()
                    await opts[name](text, vector)
                    times[name].append((time.perf_counter() - t0) * 1000)

            if concurrency == 1:
                for i, (t, v) in enumerate(work):
                    for j in range(len(runs)):
                        name = runs[(i + j) % len(runs)]
                        t0 = time.perf_counter()
                        await one(name, t, v)
                        busy[name] += time.perf_counter() - t0
            else:
                for start in range(0, len(work), 40):
                    block = work[start:start + 40]
                    for j in range(len(runs)):
                        name = runs[(start // 40 + j) % len(runs)]
                        t0 = time.perf_counter()
                        await asyncio.gather(*(one(name, t, v) for t, v in block))
                        busy[name] += time.perf_counter() - t0
            for name in runs:
                ts = sorted(times[name])
                row = {"kind": "bench_explain", "dataset": dataset, "option": name, "concurrency": concurrency,
                       "questions": len(ts), "p50_ms": round(statistics.median(ts), 2),
                       "p90_ms": round(ts[int(0.9 * len(ts))], 2), "qps": round(len(ts) / busy[name], 1),
                       "limit": LIMIT, "candidates": CANDIDATES}
                print(json.dumps(row))
                record(row)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
