"""A qa_app process with an event-loop lag probe: `load` runs QAService.load in-process, `serve` runs
create_app under uvicorn.Server in the same loop. The probe sleeps 10 ms in a loop and records how late
each wake-up is; the samples (wall time, overshoot seconds) go to --out as JSON when the work ends."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

TICK = 0.010


async def probe(samples: list[tuple[float, float]]) -> None:
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(TICK)
        samples.append((time.time(), time.perf_counter() - t0 - TICK))


async def do_load(args: argparse.Namespace, samples: list[tuple[float, float]]) -> dict[str, object]:
    from qa_app.service import QAService
    from qa_app.settings import Settings

    settings = Settings(milvus_uri=args.db, collection=args.collection)
    async with await QAService.open(settings) as service:
        await service.ensure_collection()
        task = asyncio.create_task(probe(samples))
        started = time.time()
        report = await service.load([Path(p) for p in args.paths])
        ended = time.time()
        task.cancel()
    return {"report": report.as_dict(), "window": [started, ended]}


async def do_serve(args: argparse.Namespace, samples: list[tuple[float, float]]) -> dict[str, object]:
    import uvicorn

    from qa_app.settings import Settings
    from qa_app.web import create_app

    settings = Settings(milvus_uri=args.db, collection=args.collection)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=args.port,
                                           log_level="warning"))
    task = asyncio.create_task(probe(samples))
    await server.serve()
    task.cancel()
    return {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["load", "serve"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--paths", nargs="*", default=[])
    args = parser.parse_args()
    samples: list[tuple[float, float]] = []
    extra: dict[str, object] = {}
    try:
        extra = asyncio.run(do_load(args, samples) if args.mode == "load" else do_serve(args, samples))
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT that stopped it
        pass
    finally:
        Path(args.out).write_text(json.dumps({"samples": samples, **extra}))


if __name__ == "__main__":
    main()
