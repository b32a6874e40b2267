"""Event-loop lag while loading and while serving at concurrency 16.

Method. bench/lag_worker.py runs the real code in one asyncio loop together with a probe task that
sleeps 10 ms in a loop and records each wake-up's overshoot (how late the loop got to it). Loading:
QAService.open + QAService.load of a SciFact slice in that process (what `qa-app load` runs). Serving:
create_app under uvicorn.Server in that loop (what `qa-app serve` runs), while this process keeps 16
/ask requests in flight; only probe samples inside the load window count. Goal: p99 < 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

from bench.common import BENCH, PY, Context, Row, Server, app_env, closed_loop, free_port, pct, queries, write_slice

GOAL_MS = 50.0


def _stats(samples: list[list[float]], start: float, end: float) -> dict[str, float]:
    lags = [s[1] * 1000 for s in samples if start <= s[0] <= end]
    return {"n": len(lags), "p50_ms": pct(lags, 50), "p99_ms": pct(lags, 99), "max_ms": max(lags, default=float("nan"))}


def run(ctx: Context) -> None:
    ctx.log(f"embedding path {ctx.encoder.path_name}")  # loaded first: pinned for the servers below (see Context.encoder)
    logs = ctx.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # loading
    data = ctx.work / f"lag-scifact-{ctx.sizes.lag_load_docs}.jsonl"
    write_slice(data, ctx.sizes.lag_load_docs)
    out = ctx.work / "lag-load.json"
    proc = subprocess.run([str(PY), str(BENCH / "lag_worker.py"), "load", "--db", str(ctx.work / "lag" / "load.db"),
                           "--out", str(out), "--paths", str(data)], env=app_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    result = json.loads(out.read_text())
    loading = _stats(result["samples"], *result["window"])
    loading["passages"] = result["report"]["passages_added"]
    ctx.log(f"loop lag while loading {loading['passages']} passages: p50 {loading['p50_ms']:.1f} ms "
            f"p99 {loading['p99_ms']:.1f} ms max {loading['max_ms']:.1f} ms")
    # serving
    port = free_port()
    out = ctx.work / "lag-serve.json"
    server = Server([str(PY), str(BENCH / "lag_worker.py"), "serve", "--db", str(ctx.db_copy("lag")), "--port",
                     str(port), "--out", str(out)], port, env=app_env(), log=logs / "lag-serve.log")
    try:
        server.wait_ready()
        asyncio.run(closed_loop(server.url + "/ask", queries(), 16, 1.5))  # warm
        idle_start = time.time()
        time.sleep(2)
        start = time.time()
        load = asyncio.run(closed_loop(server.url + "/ask", queries(), 16, ctx.sizes.lag_seconds))
        end = time.time()
    finally:
        server.stop()
    samples = json.loads(out.read_text())["samples"]
    serving = _stats(samples, start, end)
    idle = _stats(samples, idle_start, start)
    serving["rps"] = load["rps"]
    ctx.log(f"loop lag while serving c=16 ({load['rps']:.1f} req/s): p50 {serving['p50_ms']:.1f} ms "
            f"p99 {serving['p99_ms']:.1f} ms max {serving['max_ms']:.1f} ms (idle p99 {idle['p99_ms']:.1f} ms)")
    ctx.details["loop_lag"] = {"loading": loading, "serving": serving, "idle": idle}
    for what, s in (("loading", loading), ("serving at c=16", serving)):
        ctx.rows.append(Row(f"event-loop lag p99 while {what}", f"{s['p99_ms']:.1f} ms",
                            f"{GOAL_MS:.0f} ms (goal)" if what == "loading" else f"{idle['p99_ms']:.1f} ms idle",
                            s["p99_ms"] / GOAL_MS, "< 50 ms", s["p99_ms"] < GOAL_MS,
                            f"p50 {s['p50_ms']:.1f} ms, max {s['max_ms']:.1f} ms, {s['n']} probe samples"))
