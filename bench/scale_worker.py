"""Insert N synthetic passages through qa_app.store.MilvusStore, then measure hybrid query latency and the
milvus-lite server's memory. One process per size, so each size starts from nothing. Prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run by path, as a child process

from bench.common import milvus_server_pid, pct, rss_bytes, size_of  # noqa: E402

DIM = 384
CONCURRENCY = 16
WORDS_PER_PASSAGE = 90


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """Pronounceable made-up words (so the english analyzer stems and indexes them like words)."""
    consonants, vowels = list("bcdfghklmnprstvz"), list("aeiou")
    words = set()
    while len(words) < size:
        n = int(rng.integers(1, 4))
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n)) + rng.choice(consonants))
    return sorted(words)


async def main(n: int, db: str, batch: int, queries: int) -> dict[str, object]:
    from qa_app.models import ModelInfo, Passage
    from qa_app.store import MilvusStore

    rng = np.random.default_rng(42)
    vocab = np.array(vocabulary(30_000, rng))
    zipf = 1.0 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()

    def batch_of(start: int, size: int) -> tuple[list[Passage], np.ndarray]:
        words = vocab[rng.choice(len(vocab), size=(size, WORDS_PER_PASSAGE), p=zipf)]
        vectors = rng.standard_normal((size, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        passages = [Passage(id=f"{start + i:032x}", source=f"/synthetic/doc{(start + i) // 10}.md",
                            doc_id="", title=f"Document {(start + i) // 10}", headings=("Section",),
                            chunk=(start + i) % 10, text=" ".join(row)) for i, row in enumerate(words)]
        return passages, vectors

    store = MilvusStore(db, "scale", timeout=60)
    await store.ensure(ModelInfo("all-MiniLM-L6-v2", DIM, 256))
    insert_seconds = 0.0
    gen_seconds = 0.0
    for start in range(0, n, batch):
        t0 = time.perf_counter()
        passages, vectors = batch_of(start, min(batch, n - start))
        t1 = time.perf_counter()
        await store.insert(passages, vectors)
        insert_seconds += time.perf_counter() - t1
        gen_seconds += t1 - t0
    t0 = time.perf_counter()
    count = await store.count()
    first_count_s = time.perf_counter() - t0
    qvecs = rng.standard_normal((queries + 10, DIM)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    qtexts = [" ".join(vocab[rng.choice(len(vocab), size=5, p=zipf)]) for _ in range(queries + 10)]
    t0 = time.perf_counter()
    await store.search_hybrid(qvecs[0], qtexts[0], 5, candidates=50, rrf_k=60)
    first_query_ms = (time.perf_counter() - t0) * 1000
    for i in range(1, 10):
        await store.search_hybrid(qvecs[i], qtexts[i], 5, candidates=50, rrf_k=60)
    lat = []
    for i in range(10, queries + 10):
        t0 = time.perf_counter()
        await store.search_hybrid(qvecs[i], qtexts[i], 5, candidates=50, rrf_k=60)
        lat.append(time.perf_counter() - t0)
    # 16 at once, as a served app sends them: latency of each, and searches per second.
    concurrent: list[float] = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        await store.search_hybrid(qvecs[i % len(qvecs)], qtexts[i % len(qtexts)], 5, candidates=50, rrf_k=60)
        concurrent.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    for start in range(0, queries, CONCURRENCY):
        await asyncio.gather(*(one(start + j) for j in range(CONCURRENCY)))
    concurrent_seconds = time.perf_counter() - t0
    server = milvus_server_pid(os.getpid())
    server_rss = rss_bytes(server) if server else 0
    client_rss = rss_bytes(os.getpid())
    await store.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(db)  # flush and stop, so the file size is final
    return {"n": n, "count": count, "insert_seconds": insert_seconds, "rows_per_s": n / insert_seconds,
            "generate_seconds": gen_seconds, "count_seconds": first_count_s, "first_query_ms": first_query_ms,
            "query_p50_ms": pct(lat, 50) * 1000, "query_p95_ms": pct(lat, 95) * 1000,
            "c16_p50_ms": pct(concurrent, 50) * 1000, "c16_qps": len(concurrent) / concurrent_seconds,
            "server_rss_mb": server_rss / 2**20, "client_rss_mb": client_rss / 2**20,
            "db_mb": size_of(Path(db)) / 2**20}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("--db", required=True)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(main(args.n, args.db, args.batch, args.queries))))
