"""Ingestion: passages/s of `qa-app load` versus the raw encode floor of the same path on the same texts,
and versus `qa-app load` in fp32 (today's code before the int8 path).

Method. For each corpus (a SciFact slice, a sample of the Python-docs pages) the passages are made by
the Loader's own chunker (`Loader.passages_of`), so the floor encodes exactly the texts the
load embeds. Floor: one `DenseEncoder.encode()` call over all those `embed_text`s with
`batch_size = settings.encode_batch`, on the path the load uses (`QA_PRECISION=auto`: the start-up
self-test's choice for this CPU, see the precision benchmark), in a fresh process
(bench/floor_worker.py), timed around the call only. Subject:
`qa-app load PATH --quiet --json` in a subprocess into a fresh .db; its own report gives the seconds
of `Loader.load` (discover + read + chunk + embed + insert + prune; the model load and Milvus start
before it are reported separately as the command's wall time). The first floor's path is pinned
(`QA_PRECISION`) for the loads and floors after it, so the ratio is of one path against itself even when a
busy machine would make two processes' self-tests choose differently. Runs alternate floor, load, floor, ...
and the ratio is the median over loads of each load's passages/s over the mean of the two floors beside it
(the machine's drift cancels). Goal >= 0.9. Besides, one
`QA_PRECISION=fp32 qa-app load` per corpus in the same run: the auto load's rate over it (goal >= 2.0
where the auto path is not fp32).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench.common import BENCH, PY, Context, Row, app_env, copy_db, median, pydocs_sample, run_load

GOAL = 0.9
FP32_GOAL = 2.0


def loader_for(ctx: Context) -> Any:
    """The app's Loader (its chunker and the app's model), over a store it never opens."""
    from qa_app.ingest.loader import open_loader
    from qa_app.settings import Settings
    from qa_app.store import open_store

    settings = Settings(milvus_uri=str(ctx.work / "unused.db"), collection="unused")
    return open_loader(settings, open_store(settings), ctx.encoder)


def passages_for(ctx: Context, path: Path) -> list[Any]:
    from qa_app.ingest.loader import LoadReport, discover

    loader = loader_for(ctx)
    files, _ = discover([path], LoadReport())
    return [p for f in files for p in loader.passages_of(f)]


def floor_seconds(ctx: Context, texts: list[str], precision: str = "") -> tuple[float, str]:
    """One encode() over `texts` in a fresh process (bench/floor_worker.py), timed around the call;
    and the path it ran on (`precision` pins it, else the process chooses as the app does)."""
    from qa_app.settings import DEFAULTS

    src = ctx.work / "floor-texts.json"
    src.write_text(json.dumps(texts))
    proc = subprocess.run([str(PY), str(BENCH / "floor_worker.py"), "--texts", str(src), "--batch",
                           str(DEFAULTS.encode_batch)], capture_output=True, text=True,
                          env=app_env(**({"QA_PRECISION": precision} if precision else {})))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["seconds"]), str(out["path"])


def measure(ctx: Context, name: str, path: Path, keep_db: Path | None = None) -> dict[str, Any]:
    passages = passages_for(ctx, path)
    texts = [p.embed_text for p in passages]
    ctx.log(f"ingestion/{name}: {len(texts)} passages from {path.name}")
    floors, loads = [], []
    seconds, path_name = floor_seconds(ctx, texts)
    floors.append(seconds)
    # The first floor's choice is pinned for the rest: on a busy machine the self-test of two processes
    # can choose differently, and the ratio is of one path against itself.
    precision = {"torch-fp32": "fp32", "torch-bf16": "bf16", "openvino-int8": "int8", "onnx-int8": "int8"}[path_name]
    ctx.log(f"  floor {len(texts) / floors[-1]:.1f} passages/s ({path_name}; pinned for the loads and floors below)")
    fp32 = run_load([path], ctx.work / "ingest" / f"{name}-fp32.db", precision="fp32")
    ctx.log(f"  load in fp32 {fp32['passages_added'] / fp32['seconds']:.1f} passages/s")
    for rep in range(ctx.sizes.ingest_reps):
        db = ctx.work / "ingest" / f"{name}-{rep}.db"
        report = run_load([path], db, precision=precision)
        if report["passages_added"] != len(texts):
            raise RuntimeError(f"load added {report['passages_added']} passages, expected {len(texts)}")
        loads.append(report)
        ctx.log(f"  load  {report['passages_added'] / report['seconds']:.1f} passages/s "
                f"(encode {report['encode_seconds']:.1f} s of {report['seconds']:.1f} s, wall {report['wall_seconds']:.1f} s)")
        if keep_db is not None and rep == 0:
            keep_db.parent.mkdir(parents=True, exist_ok=True)
            copy_db(db, keep_db)
        floors.append(floor_seconds(ctx, texts, precision)[0])
        ctx.log(f"  floor {len(texts) / floors[-1]:.1f} passages/s")
    floor_rates = [len(texts) / seconds for seconds in floors]
    load_rates = [r["passages_added"] / r["seconds"] for r in loads]
    # Each load against the floors just before and after it: a machine whose speed drifts (other work on
    # it) moves a load and its neighbours alike, where it would move separate medians apart.
    paired = [rate / ((floor_rates[i] + floor_rates[i + 1]) / 2) for i, rate in enumerate(load_rates)]
    return {
        "corpus": name, "passages": len(texts), "path": path_name, "floor_seconds": floors,
        "floor_rate": median(floor_rates), "fp32_load": fp32, "fp32_load_rate": fp32["passages_added"] / fp32["seconds"],
        "loads": loads, "load_rate": median(load_rates), "paired_ratios": paired, "ratio": median(paired),
        "load_rate_wall": median([r["passages_added"] / r["wall_seconds"] for r in loads]),
        "encode_rate_in_load": median([r["passages_added"] / r["encode_seconds"] for r in loads]),
    }


def run(ctx: Context) -> None:
    served = ctx.work / "served" / "scifact.db"
    results = [measure(ctx, f"scifact-{ctx.sizes.scifact_docs}", ctx.scifact_slice(), keep_db=served),
               measure(ctx, f"python-docs-{ctx.sizes.pydocs_pages}", pydocs_sample(ctx.work, ctx.sizes.pydocs_pages))]
    ctx._served_db = served
    ctx.details["ingestion"] = results
    for r in results:
        ctx.rows.append(Row(
            f"ingestion: qa-app load, {r['corpus']} ({r['passages']} passages)",
            f"{r['load_rate']:.1f} passages/s", f"{r['floor_rate']:.1f} passages/s (raw encode)",
            r["ratio"], f">= {GOAL}", r["ratio"] >= GOAL,
            f"{r['path']}; wall clock incl. model load {r['load_rate_wall']:.1f}/s; encode inside load "
            f"{r['encode_rate_in_load']:.1f}/s"))
        fp32_ratio = r["load_rate"] / r["fp32_load_rate"]
        ctx.rows.append(Row(
            f"ingestion: qa-app load ({r['path']}) vs qa-app load in fp32, {r['corpus']}", f"{r['load_rate']:.1f} passages/s",
            f"{r['fp32_load_rate']:.1f} passages/s (QA_PRECISION=fp32)", fp32_ratio, f">= {FP32_GOAL}",
            fp32_ratio >= FP32_GOAL if r["path"] != "torch-fp32" else None, "one fp32 load per corpus, in the same run"))

