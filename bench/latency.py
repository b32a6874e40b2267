"""Query latency at concurrency 1: `/ask` over HTTP versus the in-process floor.

Method. `qa-app serve` runs as a subprocess on a free 127.0.0.1 port against the SciFact slice loaded by
`qa-app load`; this process sends POST /ask {"question", "top_k": 5} (hybrid, no LLM), one at a time, over a
kept-alive HTTP/1.1 connection it speaks directly (bench.common.RawHTTP: a client library would add its own
CPU time, which is not the server's). The floor runs in this process against a copy of the same .db (Milvus
Lite opens a file from one process only): `DenseEncoder.encode_questions([q])` (the app's fastest way to
embed one question on the chosen path: the traced transformer, with packed linear layers in bf16, or the
int8 ONNX session) on a one-core worker thread, then `MilvusStore.search_hybrid` (dense 50 + BM25 50, RRF
k=60, limit 5), called directly. Two more in-process variants split the gap: "floor with 2 searches" (embed,
then the dense and the BM25 search that the default weighted fusion runs concurrently, each returning its 50
candidates with their fields) and "QAService.ask" (the whole retrieval path: QueryBatcher, thread hop, the
BM25 search started while the question is embedded, the dense search, fusion, ranking). The variants take
turns in blocks of consecutive questions (the same questions for each, the order rotated every round, each
block after a few untimed questions), so each runs warm and machine load hits them alike; the percentiles
pool all requests. One more variant, "bare HTTP", asks bench/bare_server.py (a bare Starlette app under
uvicorn) to keep a worker thread busy for the floor's p50 and return a body of /ask's size: its time beyond
that work is what one HTTP request costs any Python server on this machine, with both processes waking from
their wait (a report row; that cost is most of /ask's distance from the floor on a VM). Each /ask answer
carries the server's own retrieval time (timings_ms.total: embedding, searches, rank decoding), read after
the clock stops: the split row puts the HTTP time beyond it (HTTP, web layer, parsing, JSON) beside the
retrieval's distance from the floor. Goal: HTTP p50 <= 1.15 x floor p50.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import Context, RawHTTP, Row, Server, app_env, free_port, pct, qa_serve, queries

GOAL = 1.15
# Questions asked, untimed, at the start of each block. The server's model sits idle while the other
# variants' blocks run on this process's model; its first questions of a block then ran 1-2 ms slower
# (its caches cold), a cost the in-process floors, sharing one warm model, never paid.
BLOCK_WARM_UP = 4


async def _ask(client: RawHTTP, payload: dict[str, Any]) -> bytes:
    status, body = await client.post_json("/ask", payload)
    if status != 200:
        raise RuntimeError(f"/ask on {client.host}:{client.port} answered {status}: {body[:300]!r}")
    return body


def bare_serve(log: Path) -> Server:
    port = free_port()
    return Server([sys.executable, str(Path(__file__).with_name("bare_server.py")), "--port", str(port)], port,
                  env=app_env(), log=log)


async def _measure(ctx: Context, url: str, bare_url: str) -> tuple[dict[str, list[float]], float]:
    from qa_app.embedding.question_batcher import question_threads
    from qa_app.search.query import parse_query
    from qa_app.search.retriever import TIE_MARGIN, decoded_ranks
    from qa_app.service import QAService
    from qa_app.settings import Settings
    from qa_app.store import open_store

    settings = Settings(milvus_uri=str(ctx.db_copy("latency")), collection="scifact")
    store = open_store(settings)
    pipeline = QAService(settings, ctx.encoder, store)
    await pipeline.ready()
    encoder = ctx.encoder
    cand, rrf_k = settings.candidates, settings.rrf_k

    pool = question_threads(1)  # a worker thread of one core, as the app's question threads are

    async def floor_embed(q: str) -> Any:
        return (await asyncio.get_running_loop().run_in_executor(pool, encoder.encode_questions, [q]))[0]

    async def floor(q: str) -> None:
        vector = (await floor_embed(q))
        await store.search_hybrid(vector, q, 5, candidates=cand, rrf_k=rrf_k)

    async def two_searches(q: str, vector: Any) -> None:
        await asyncio.gather(store.search_dense(vector, cand), store.search_sparse(q, cand))

    async def floor_same_request(q: str) -> None:
        """The floor with the service's own request (TIE_MARGIN more passages, with their vectors) and
        the ranks read off its result: what the retriever must do, without its machinery."""
        vector = await floor_embed(q)
        fused = await store.search_hybrid(vector, q, 5 + TIE_MARGIN, candidates=cand, rrf_k=rrf_k, with_vectors=True)
        decoded_ranks(fused, vector, rrf_k, cand, 5 + TIE_MARGIN, 5)

    async def floor2(q: str) -> None:
        await two_searches(q, await floor_embed(q))

    async def search_only(q: str, vector: Any) -> None:
        await store.search_hybrid(vector, q, 5, candidates=cand, rrf_k=rrf_k)

    async def in_process(q: str) -> None:
        await pipeline.ask(parse_query({"question": q, "top_k": 5}, settings))

    samples: dict[str, list[float]] = {"http": [], "floor": [], "floor_same_request": [], "floor_2_searches": [],
                                       "service_ask": [], "bare_http": [],
                                       "embed_only": [], "hybrid_search_only": [], "two_searches_only": []}
    client, bare_client = RawHTTP(url), RawHTTP(bare_url)
    server_ms: list[float] = []  # each measured /ask's own retrieval time (timings_ms.total, in the server)
    work_ms = 0.0  # the floor's p50 over the warm-up: what the bare server's requests keep a thread busy for
    try:
        async def http(q: str) -> bytes:
            return await _ask(client, {"question": q, "top_k": 5})

        async def bare_http(q: str) -> None:
            await _ask(bare_client, {"question": q, "work_ms": work_ms})

        variants: dict[str, Callable[[str], Awaitable[bytes | None]]] = {
            "http": http, "floor": floor, "floor_same_request": floor_same_request, "floor_2_searches": floor2,
            "service_ask": in_process, "bare_http": bare_http}
        warm = queries(20, seed=1)
        block_warm = queries(BLOCK_WARM_UP, seed=2)
        floor_warm: list[float] = []
        for name, fn in variants.items():
            if name == "bare_http":  # the floors ran: the bare server works as long as the floor takes
                work_ms = pct(floor_warm, 50) * 1000
            for q in warm:
                t0 = time.perf_counter()
                await fn(q)
                if name == "floor":
                    floor_warm.append(time.perf_counter() - t0)
        names = list(variants)
        n = ctx.sizes.latency_per_round
        for rnd in range(ctx.sizes.latency_rounds):
            # a block of n questions per variant, in an order that rotates every round: each path runs
            # warm, as under steady use (one request of each in turn left the server's threads and its
            # Milvus idle while three in-process variants kept this process's warm), and blocks are
            # short enough that changes in machine load meet every variant
            shift = rnd % len(names)
            for name in names[shift:] + names[:shift]:
                for q in block_warm:  # untimed: the model of a process idle through the other blocks starts cold
                    await variants[name](q)
                for q in queries(n, seed=100 + rnd):
                    t0 = time.perf_counter()
                    body = await variants[name](q)
                    samples[name].append(time.perf_counter() - t0)
                    if body is not None:  # /ask's answer: its timings_ms are read after the clock stopped
                        server_ms.append(float(json.loads(body)["timings_ms"]["total"]))
            for q in queries(n, seed=100 + rnd):  # the parts of the floor, for the breakdown
                t0 = time.perf_counter()
                vector = (await floor_embed(q))
                t1 = time.perf_counter()
                await search_only(q, vector)
                t2 = time.perf_counter()
                await two_searches(q, vector)
                t3 = time.perf_counter()
                samples["embed_only"].append(t1 - t0)
                samples["hybrid_search_only"].append(t2 - t1)
                samples["two_searches_only"].append(t3 - t2)
    finally:
        client.close()
        bare_client.close()
    await pipeline.close()
    samples["http_beyond_retrieval"] = [t - ms / 1000 for t, ms in zip(samples["http"], server_ms, strict=True)]
    samples["server_retrieval"] = [ms / 1000 for ms in server_ms]
    return samples, work_ms


def run(ctx: Context) -> None:
    ctx.log(f"embedding path {ctx.encoder.path_name}")  # loaded first: pinned for the servers below (see Context.encoder)
    db = ctx.served_db()
    server = qa_serve(db, ctx.work / "logs" / "latency-serve.log")
    bare = bare_serve(ctx.work / "logs" / "latency-bare.log")
    try:
        startup = server.wait_ready()
        bare.wait_ready()
        ctx.log(f"latency: qa-app serve ready in {startup:.1f} s on {server.url}")
        samples, work_ms = asyncio.run(_measure(ctx, server.url, bare.url))
    finally:
        server.stop()
        bare.stop()
    stats = {name: {"p50_ms": pct(v, 50) * 1000, "p95_ms": pct(v, 95) * 1000, "n": len(v)}
             for name, v in samples.items()}
    ctx.details["latency"] = {"stats": stats, "server_startup_s": startup, "bare_work_ms": work_ms}
    for name, s in stats.items():
        ctx.log(f"  {name:20s} p50 {s['p50_ms']:7.2f} ms  p95 {s['p95_ms']:7.2f} ms  (n={s['n']})")
    http, floor = stats["http"], stats["floor"]
    ratio50 = http["p50_ms"] / floor["p50_ms"]
    ratio95 = http["p95_ms"] / floor["p95_ms"]
    two = stats["two_searches_only"]["p50_ms"] / stats["hybrid_search_only"]["p50_ms"]
    ctx.rows.append(Row("query latency p50: /ask over HTTP, concurrency 1", f"{http['p50_ms']:.1f} ms",
                        f"{floor['p50_ms']:.1f} ms (embed + hybrid_search in-process)", ratio50, "<= 1.15x", ratio50 <= GOAL,
                        f"QAService.ask in-process {stats['service_ask']['p50_ms']:.1f} ms; "
                        f"embed + 2 searches {stats['floor_2_searches']['p50_ms']:.1f} ms"))
    from qa_app.search.retriever import TIE_MARGIN

    same = stats["floor_same_request"]["p50_ms"]
    ctx.rows.append(Row("query latency p50: /ask over HTTP vs the floor with the service's own request",
                        f"{http['p50_ms']:.1f} ms",
                        f"{same:.1f} ms (embed + hybrid_search of 5+{TIE_MARGIN} passages with vectors + rank decoding)",
                        http["p50_ms"] / same, "(report)", None))
    bare_cost = stats["bare_http"]["p50_ms"] - work_ms
    ctx.rows.append(Row("HTTP alone, p50: a bare Starlette app under uvicorn whose request keeps a thread busy "
                        f"{work_ms:.1f} ms (the floor's p50), time beyond that work",
                        f"{bare_cost:.2f} ms", f"{http['p50_ms'] - floor['p50_ms']:.2f} ms (/ask over HTTP - floor)",
                        bare_cost / (http["p50_ms"] - floor["p50_ms"]), "(report)", None,
                        f"/ask over HTTP vs floor + HTTP alone: {http['p50_ms'] / (floor['p50_ms'] + bare_cost):.2f}"))
    beyond, retrieval = stats["http_beyond_retrieval"]["p50_ms"], stats["server_retrieval"]["p50_ms"]
    ctx.rows.append(Row("/ask split, p50: the server's own retrieval (its timings_ms.total: embed, search, rank "
                        "decoding) vs the floor; and the time beyond it (HTTP, web layer, parsing, JSON)",
                        f"{retrieval:.1f} ms + {beyond:.2f} ms", f"{floor['p50_ms']:.1f} ms (floor)",
                        retrieval / floor["p50_ms"], "(report)", None,
                        f"retrieval beyond the floor {retrieval - floor['p50_ms']:.2f} ms, HTTP and web layer "
                        f"{beyond:.2f} ms"))
    ctx.rows.append(Row("query latency p95: /ask over HTTP, concurrency 1", f"{http['p95_ms']:.1f} ms",
                        f"{floor['p95_ms']:.1f} ms", ratio95, "(report)", None))
    ctx.rows.append(Row("cost of the 2 concurrent searches (dense, BM25) of weighted fusion vs one hybrid_search, p50",
                        f"{stats['two_searches_only']['p50_ms']:.2f} ms", f"{stats['hybrid_search_only']['p50_ms']:.2f} ms",
                        two, "(report)", None, f"embed alone p50 {stats['embed_only']['p50_ms']:.1f} ms"))
