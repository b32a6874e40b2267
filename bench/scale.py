"""Scale: insert time, .db size, milvus-lite server RSS and hybrid query p50 at growing collection sizes.

Method. bench/scale_worker.py (one process per size) creates the qa_app collection and inserts N
synthetic passages through qa_app.store.MilvusStore.insert in batches of settings.insert_batch (256):
random unit vectors (no model: this measures the store) and 90 made-up words drawn from a Zipf
distribution over a 30,000-word vocabulary (so BM25 has a realistic vocabulary). Then 10 warm-up and
N_q timed hybrid searches (dense 50 + BM25 50, RRF, limit 5), sequentially, then the same number 16 at a time
(concurrency 16: p50 of each and searches per second); RSS of the milvus-lite child
process from /proc; the .db size after the server released it. 1M rows are run only with --scale-1m.
Report only (no goal): the growth curve.
"""

from __future__ import annotations

import json
import subprocess

from bench.common import BENCH, PY, Context, Row, app_env


def run(ctx: Context, sizes: tuple[int, ...] | None = None) -> None:
    from qa_app.settings import DEFAULTS

    results = []
    for n in sizes or ctx.sizes.scale_sizes:
        db = ctx.work / "scale" / f"scale-{n}.db"
        proc = subprocess.run([str(PY), str(BENCH / "scale_worker.py"), str(n), "--db", str(db), "--batch",
                               str(DEFAULTS.insert_batch), "--queries", str(ctx.sizes.scale_queries)],
                              env=app_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        ctx.log(f"scale {n:>9,}: insert {r['insert_seconds']:.1f} s ({r['rows_per_s']:,.0f} rows/s), "
                f".db {r['db_mb']:.0f} MB, server RSS {r['server_rss_mb']:.0f} MB, "
                f"query p50 {r['query_p50_ms']:.1f} ms p95 {r['query_p95_ms']:.1f} ms")
        db.unlink(missing_ok=True)
    ctx.details["scale"] = results
    base = results[0]
    for r in results:
        ctx.rows.append(Row(
            f"scale {r['n']:,} synthetic passages: hybrid query p50", f"{r['query_p50_ms']:.1f} ms",
            f"{base['query_p50_ms']:.1f} ms at {base['n']:,}", r["query_p50_ms"] / base["query_p50_ms"], "(report)", None,
            f"insert {r['insert_seconds']:.1f} s ({r['rows_per_s']:,.0f}/s), .db {r['db_mb']:.0f} MB, "
            f"server RSS {r['server_rss_mb']:.0f} MB ({r['server_rss_mb'] * 2**20 / r['n']:,.0f} bytes a passage), "
            f"client RSS {r['client_rss_mb']:.0f} MB; c=16: p50 {r.get('c16_p50_ms', float('nan')):.1f} ms, "
            f"{r.get('c16_qps', float('nan')):.0f} searches/s"))
