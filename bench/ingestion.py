"""Ingestion: passages/s of `qa-app load` versus the raw `model.encode` floor on the same texts.

Method. For each corpus (a SciFact slice, a sample of the Python-docs pages) the passages are made by
the Loader's own chunker (`Pipeline.loader()._passages_of`), so the floor encodes exactly the texts the
load embeds. Floor: one `SentenceTransformer.encode()` call over all those `embed_text`s with
`batch_size = settings.encode_batch`, in the precision the load uses (bf16 where the CPU has bf16
matrix instructions, see the precision benchmark for bf16 against fp32), in a fresh process
(bench/floor_worker.py), timed around the call only. Subject:
`qa-app load PATH --quiet --json` in a subprocess into a fresh .db; its own report gives the seconds
of `Loader.load` (discover + read + chunk + embed + insert + prune; the model load and Milvus start
before it are reported separately as the command's wall time). Runs alternate floor, load, floor, ...
and the ratio is load passages/s over the median floor passages/s. Goal >= 0.9.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench.common import BENCH, PY, Context, Row, app_env, copy_db, median, pydocs_sample, run_load

GOAL = 0.9


def passages_for(ctx: Context, path: Path) -> list[Any]:
    from qa_app.config import Settings
    from qa_app.ingest import LoadReport, discover
    from qa_app.pipeline import Pipeline
    from qa_app.store import PassageStore

    settings = Settings()
    pipeline = Pipeline(settings, ctx.encoder, PassageStore(str(ctx.work / "unused.db"), "unused"))
    loader = pipeline.loader()
    files, _ = discover([path], LoadReport())
    return [p for f in files for p in loader._passages_of(f)]


def floor_seconds(ctx: Context, texts: list[str]) -> float:
    """One encode() over `texts` in a fresh process (bench/floor_worker.py), timed around the call."""
    from qa_app.config import Settings

    src = ctx.work / "floor-texts.json"
    src.write_text(json.dumps(texts))
    proc = subprocess.run([str(PY), str(BENCH / "floor_worker.py"), "--texts", str(src), "--batch",
                           str(Settings().encode_batch)], capture_output=True, text=True, env=app_env())
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def measure(ctx: Context, name: str, path: Path, keep_db: Path | None = None) -> dict[str, Any]:
    passages = passages_for(ctx, path)
    texts = [p.embed_text for p in passages]
    ctx.log(f"ingestion/{name}: {len(texts)} passages from {path.name}")
    floors, loads = [], []
    floors.append(floor_seconds(ctx, texts))
    ctx.log(f"  floor {len(texts) / floors[-1]:.1f} passages/s")
    for rep in range(ctx.sizes.ingest_reps):
        db = ctx.work / "ingest" / f"{name}-{rep}.db"
        report = run_load([path], db)
        if report["passages_added"] != len(texts):
            raise RuntimeError(f"load added {report['passages_added']} passages, expected {len(texts)}")
        loads.append(report)
        ctx.log(f"  load  {report['passages_added'] / report['seconds']:.1f} passages/s "
                f"(encode {report['encode_seconds']:.1f} s of {report['seconds']:.1f} s, wall {report['wall_seconds']:.1f} s)")
        if keep_db is not None and rep == 0:
            keep_db.parent.mkdir(parents=True, exist_ok=True)
            copy_db(db, keep_db)
        floors.append(floor_seconds(ctx, texts))
        ctx.log(f"  floor {len(texts) / floors[-1]:.1f} passages/s")
    floor_rate = len(texts) / median(floors)
    load_rates = [r["passages_added"] / r["seconds"] for r in loads]
    load_rate = median(load_rates)
    return {
        "corpus": name, "passages": len(texts), "floor_seconds": floors, "floor_rate": floor_rate,
        "loads": loads, "load_rate": load_rate, "ratio": load_rate / floor_rate,
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
            f"wall clock incl. model load {r['load_rate_wall']:.1f}/s; encode inside load {r['encode_rate_in_load']:.1f}/s"))

