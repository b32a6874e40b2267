"""Soak: a bounded load test of `qa-app serve` on 127.0.0.1 with concurrency 32 and a mix of modes and
filters, and with a few re-loads while it runs. It reports 5xx responses, latency percentiles, and
the app's memory at the start and the end.

    .venv/bin/python -m bench.soak [--minutes 10] [--concurrency 32]

The app serves eight pages of data/python-docs from a Milvus Lite file with `serve --watch`. Every
`--reload-every` seconds the soak changes a file in that folder, and the app loads the change
in-process while it keeps answering. Memory is the RSS of the app process and of its Milvus Lite
child. Only 127.0.0.1 is contacted, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tests.app_server import QA_APP, free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = ["how do I cache the results of a function?", "read a csv file as dictionaries", "what is a generator?",
             "sort a list of dicts by a key", "parse a date string", "run a shell command and capture its output",
             "what does the with statement do?", "join paths in a portable way", "remove duplicates from a list",
             "how do I write a decorator?", "TypeError: unhashable type: 'list'", "format a float with 2 decimals"]
FILTERS = [{}, {}, {"contains": "def "}, {"source": "library"}, {"title": "functools"}, {"contains": "100%"},
           {"source": "tutorial", "contains": "list"}, {"contains": "a\\b"}]
MODES = ["hybrid", "hybrid", "dense", "sparse"]


def memory_mb(process: psutil.Process) -> dict[str, float]:
    app = process.memory_info().rss / 2**20
    milvus = sum(c.memory_info().rss for c in process.children(recursive=True)) / 2**20
    return {"app_mb": round(app, 1), "milvus_mb": round(milvus, 1)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def soak(url: str, minutes: float, concurrency: int, corpus: Path, reload_every: float,
               app: psutil.Process) -> dict[str, object]:
    rng = random.Random(7)
    statuses: dict[int, int] = {}
    windows: list[list[float]] = [[]]  # latencies per minute
    deadline = time.monotonic() + minutes * 60
    started = time.monotonic()
    reloads = 0

    async def user(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            body = {"question": rng.choice(QUESTIONS), "mode": rng.choice(MODES), "filter": rng.choice(FILTERS),
                    "top_k": rng.choice([3, 5, 10])}
            t0 = time.perf_counter()
            try:
                response = await client.post("/ask", json=body)
                status = response.status_code
            except httpx.HTTPError:
                status = 0  # no answer at all counts as a failure
            elapsed = (time.perf_counter() - t0) * 1000
            statuses[status] = statuses.get(status, 0) + 1
            minute = int((time.monotonic() - started) // 60)
            while len(windows) <= minute:
                windows.append([])
            windows[minute].append(elapsed)

    async def reloader() -> None:
        nonlocal reloads
        target = corpus / "soak-notes.md"
        while time.monotonic() + reload_every < deadline:
            await asyncio.sleep(reload_every)
            reloads += 1
            target.write_text(f"# Soak notes {reloads}\n\nReload number {reloads} at {time.time():.0f}.\n")

    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        start_memory = memory_mb(app)
        await asyncio.gather(reloader(), *(user(client) for _ in range(concurrency)))
        end_memory = memory_mb(app)
        health = (await client.get("/healthz")).json()
    all_latencies = [v for w in windows for v in w]
    return {
        "minutes": minutes, "concurrency": concurrency, "requests": sum(statuses.values()), "statuses": statuses,
        "server_errors": sum(n for s, n in statuses.items() if s >= 500 or s == 0),
        "p50_ms": round(percentile(all_latencies, 0.5), 1), "p99_ms": round(percentile(all_latencies, 0.99), 1),
        "first_minute_p99_ms": round(percentile(windows[0], 0.99), 1),
        "last_minute_p99_ms": round(percentile(windows[-1] or windows[-2], 0.99), 1),
        "memory_start": start_memory, "memory_end": end_memory, "reloads_written": reloads,
        "last_load": health.get("watch", {}).get("last_load"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--reload-every", type=float, default=120)
    parser.add_argument("--log", type=Path, help="Write the server's output here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    corpus = work / "python-docs"
    corpus.mkdir()
    for page in ("functools", "itertools", "collections", "json", "csv", "pathlib", "re", "datetime"):
        shutil.copy(ROOT / "data" / "python-docs" / "library" / f"{page}.rst", corpus)
    port = free_port()
    log = args.log.open("w") if args.log else subprocess.DEVNULL
    process = subprocess.Popen([*QA_APP, "serve", "--port", str(port), "--milvus-uri", str(work / "soak.db"),
                                "--watch", str(corpus)], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "QA_WATCH_INTERVAL": "2"})
    url = f"http://127.0.0.1:{port}"
    try:
        def loaded() -> bool:
            try:
                return bool(httpx.get(url + "/healthz", timeout=5).json().get("watch", {}).get("last_load"))
            except httpx.HTTPError:
                return False
        wait_ready(process, loaded, 900, "qa-app serve --watch", lambda: "")
        result = asyncio.run(soak(url, args.minutes, args.concurrency, corpus, args.reload_every,
                                  psutil.Process(process.pid)))
    finally:
        stop(process)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    growth = result["memory_end"]["app_mb"] - result["memory_start"]["app_mb"]  # type: ignore[index]
    print(f"\n| figure | value |\n|---|---|\n| requests | {result['requests']} |\n"
          f"| 5xx or no answer | {result['server_errors']} |\n| p50 / p99 | {result['p50_ms']} / {result['p99_ms']} ms |\n"
          f"| p99 first / last minute | {result['first_minute_p99_ms']} / {result['last_minute_p99_ms']} ms |\n"
          f"| app RSS start / end | {result['memory_start']['app_mb']} / {result['memory_end']['app_mb']} MB "
          f"({growth:+.1f}) |\n| Milvus RSS start / end | {result['memory_start']['milvus_mb']} / "
          f"{result['memory_end']['milvus_mb']} MB |\n| re-loads during the run | {result['reloads_written']} |")


if __name__ == "__main__":
    main()
