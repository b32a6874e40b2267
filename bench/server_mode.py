"""Server mode figures for docs/deploy.md: /ask throughput with 1 and 2 workers over a Milvus server
(Milvus Lite 3.x's, the one that runs here), and the time of a zero-downtime re-index of the demo corpus.

    .venv/bin/python -m bench.server_mode [--requests 400] [--concurrency 16]

Needs .venv-milvus (bash scripts/setup.sh --test makes it). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.app_server import free_port, qa_app, serving

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = ["how do I cache the results of a function?", "read a csv file as dictionaries",
             "what is a generator?", "sort a list of dicts by a key", "parse a date string",
             "run a shell command and capture its output", "what does the with statement do?",
             "join paths in a portable way"]


async def throughput(url: str, requests: int, concurrency: int) -> tuple[float, float, list[str]]:
    """(requests per second, p50 ms, errors) of /ask at this concurrency."""
    latencies: list[float] = []
    errors: list[str] = []
    queue = list(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            i = queue.pop()
            t0 = time.perf_counter()
            response = await client.post("/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
            if response.is_success:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                errors.append(f"{response.status_code}: {response.text[:200]}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for question in QUESTIONS:  # warm up every worker's model and connection
            await client.post("/ask", json={"question": question})
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, statistics.median(latencies), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="qa-server-bench-"))
    port = free_port()
    server = subprocess.Popen([str(ROOT / ".venv-milvus/bin/python"), "-m", "milvus_lite", "server", "--data-dir",
                               str(data), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    try:
        time.sleep(3)
        started = time.perf_counter()
        loaded = qa_app("load", str(ROOT / "data/python-docs"), "--milvus-uri", uri, "--quiet")
        load_s = time.perf_counter() - started
        assert loaded.returncode == 0, loaded.stderr
        rows = []
        for workers in (1, 2):
            with serving(uri, "--workers", str(workers)) as url:
                rps, p50, errors = asyncio.run(throughput(url, args.requests, args.concurrency))
            rows.append((workers, rps, p50, errors))
        started = time.perf_counter()
        with serving(uri) as url:  # a re-index while an app serves
            result = qa_app("reindex", "--milvus-uri", uri, "--quiet", "--chunk-tokens", "160")
            assert result.returncode == 0, result.stderr
            health = httpx.get(url + "/healthz").json()
        reindex_s = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    print(f"| measure | value |\n|---|---|\n| load of data/python-docs into the server | {load_s:.0f} s |")
    for workers, rps, p50, errors in rows:
        print(f"| /ask throughput, {workers} worker(s), concurrency {args.concurrency} | {rps:.1f} req/s (p50 {p50:.0f} ms), "
              f"{len(errors)} errors{': ' + errors[0] if errors else ''} |")
    print(f"| 2 workers / 1 worker | {rows[1][1] / rows[0][1]:.2f}x |")
    print(f"| zero-downtime re-index of data/python-docs (chunk 160) | {reindex_s:.0f} s ({result.stdout.strip()}) |")
    print(f"| app serving after the switch | {health['passages']} passages |")


if __name__ == "__main__":
    main()
