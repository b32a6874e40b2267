"""Throughput: requests/s at concurrency 16 over HTTP, qa_app versus (a) a naive server and (b) langchain-milvus.

Method. Three servers, each on its own copy of the same SciFact-slice .db: `qa-app serve`, and
bench/peer_server.py as (a) `naive` (sync MilvusClient + one SentenceTransformer.encode per request in a
ThreadPoolExecutor(16), the same hybrid request, the model in fp32 as sentence-transformers loads it)
and (b) `langchain` (langchain-milvus 0.3.3 in its own
venv, bench/.venvs/lc, reading our collection with vector_field=["dense","sparse"] and the built-in BM25
function). When qa_app embeds in bf16, a report-only `naive-bf16` (the naive server with the model
under bf16 autocast) separates what precision buys from what batching and the pipeline buy. This
process keeps 16 requests in flight (closed loop, bench.common.RawHTTP, one kept-alive connection
each) for a fixed window per subject; rounds rotate the order and the reported figure is the median over rounds. All
run on the same 2 cores (the client too). Goal: >= 3x (a) and >= 1.5x (b).
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import httpx

from bench.common import (
    BENCH,
    LC_PY,
    PY,
    Context,
    Row,
    Server,
    app_env,
    closed_loop,
    free_port,
    median,
    qa_serve,
    queries,
)

CONCURRENCY = 16
GOALS = {"naive": 3.0, "langchain": 1.5}


def langchain_available() -> str | None:
    """None when the langchain venv works, else why not."""
    if not LC_PY.exists():
        return f"{LC_PY} missing: run bash bench/setup_peers.sh"
    probe = subprocess.run([str(LC_PY), "-c", "import langchain_milvus, milvus_lite"], capture_output=True, text=True)
    return None if probe.returncode == 0 else probe.stderr.strip().splitlines()[-1]


def peer(impl: str, python: str, db: str, ctx: Context, *extra: str) -> Server:
    port = free_port()
    name = impl + "".join(extra).replace("--", "-")
    return Server([python, str(BENCH / "peer_server.py"), "--impl", impl, "--db", db, "--port", str(port), *extra],
                  port, env=app_env(), log=ctx.work / "logs" / f"peer-{name}.log")


async def _overlap(urls: dict[str, str]) -> dict[str, float]:
    """Mean top-5 id overlap of each server with qa_app on 10 questions (a check that they do the same work)."""
    out: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        ref: list[set[str]] = []
        for q in queries(10, seed=3):
            r = await client.post(urls["qa_app"] + "/ask", json={"question": q, "top_k": 5})
            ref.append({p["id"] for p in r.json()["passages"]})
        for name, url in urls.items():
            shared = []
            for q, ids in zip(queries(10, seed=3), ref, strict=True):
                r = await client.post(url + "/ask", json={"question": q, "top_k": 5})
                got = {str(p["id"]) for p in r.json()["passages"]}
                shared.append(len(got & ids) / max(1, len(ids)))
            out[name] = sum(shared) / len(shared)
    return out


def run(ctx: Context) -> None:
    ctx.log(f"embedding path {ctx.encoder.path_name}")  # loaded first: pinned for the servers below (see Context.encoder)
    servers: dict[str, Server] = {}
    skipped: dict[str, str] = {}
    try:
        servers["qa_app"] = qa_serve(ctx.served_db(), ctx.work / "logs" / "tput-serve.log")
        servers["naive"] = peer("naive", str(PY), str(ctx.db_copy("naive")), ctx)
        if ctx.encoder.precision == "bf16":
            servers["naive-bf16"] = peer("naive", str(PY), str(ctx.db_copy("naive-bf16")), ctx, "--bf16")
        why = langchain_available()
        if why is None:
            servers["langchain"] = peer("langchain", str(LC_PY), str(ctx.db_copy("langchain")), ctx)
        else:
            skipped["langchain"] = why
        for name, server in list(servers.items()):
            try:
                ctx.log(f"throughput: {name} ready in {server.wait_ready():.1f} s")
            except RuntimeError as exc:
                if name == "qa_app":
                    raise
                skipped[name] = str(exc)[-500:]
                server.stop()
                del servers[name]
                ctx.log(f"throughput: {name} skipped: {skipped[name]}")
        urls = {name: s.url for name, s in servers.items()}
        overlap = asyncio.run(_overlap(urls))
        qs = queries()
        per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        names = list(servers)
        for rnd in range(ctx.sizes.tput_rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                asyncio.run(closed_loop(urls[name] + "/ask", qs, CONCURRENCY, 1.5))  # warm
                res = asyncio.run(closed_loop(urls[name] + "/ask", qs, CONCURRENCY, ctx.sizes.tput_seconds))
                per_round[name].append(res)
                ctx.log(f"  round {rnd}: {name:10s} {res['rps']:7.1f} req/s  p50 {res['p50_ms']:.0f} ms "
                        f"p95 {res['p95_ms']:.0f} ms  errors {res['errors']}")
    finally:
        for server in servers.values():
            server.stop()
    rps = {name: median([r["rps"] for r in rounds]) for name, rounds in per_round.items()}
    ctx.details["throughput"] = {"rounds": per_round, "rps": rps, "skipped": skipped, "top5_overlap_with_qa_app": overlap,
                                 "concurrency": CONCURRENCY}
    for base, goal in GOALS.items():
        label = {"naive": "(a) naive: sync MilvusClient + encode per request, 16 threads",
                 "langchain": "(b) langchain-milvus 0.3.3 hybrid (RRF)"}[base]
        if base not in rps:
            ctx.rows.append(Row(f"throughput c=16 vs {label}", f"{rps['qa_app']:.1f} req/s", "skipped", None,
                                f">= {goal}x", None, skipped.get(base, "")))
            continue
        ratio = rps["qa_app"] / rps[base]
        ctx.rows.append(Row(f"throughput c=16 vs {label}", f"{rps['qa_app']:.1f} req/s", f"{rps[base]:.1f} req/s",
                            ratio, f">= {goal}x", ratio >= goal,
                            f"top-5 overlap with qa_app {overlap.get(base, float('nan')):.2f}"))
    if "naive-bf16" in rps:
        ctx.rows.append(Row("throughput c=16 vs naive with the model in bf16 too (report: precision alone)",
                            f"{rps['qa_app']:.1f} req/s", f"{rps['naive-bf16']:.1f} req/s",
                            rps["qa_app"] / rps["naive-bf16"], "(report)", None, ""))
