"""A bare Starlette app under uvicorn, for the latency benchmark: what HTTP alone costs on this machine.

POST /ask {"question", "work_ms"} keeps a worker thread busy for work_ms (a spin, as a model call keeps
it) and answers with a JSON body of five 1,500-character passages (about /ask's size); GET /healthz
answers 200. The latency benchmark asks it with work_ms set to the floor's p50: the time its answers
take beyond work_ms is the cost of one HTTP request and of the two processes waking from their wait
(client and server), which any Python server pays here and which an in-process floor does not.

    python bench/bare_server.py --port 8766
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

PASSAGE = "x" * 1500


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def ask(request: Request) -> JSONResponse:
    data = await request.json()
    work = float(data.get("work_ms", 0)) / 1000
    if work > 0:
        await asyncio.to_thread(busy, work)
    return JSONResponse({"question": data.get("question"), "passages": [PASSAGE] * 5})


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/ask", ask, methods=["POST"]), Route("/healthz", healthz)])

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
