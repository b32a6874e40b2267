"""The README's tables from results.jsonl: the product runs (confirm.py), the latency of the per-list
ranks (bench_explain.py), the whole-document calibration (wholedoc.py). `summarize.py` prints markdown."""
from __future__ import annotations

import json

from common import RESULTS

ROWS = [json.loads(line) for line in RESULTS.read_text().splitlines()]
NAMES = {"dense": "dense only", "sparse": "BM25 only", "rrf k60 c50 (before)": "RRF k=60, 50/50 (before)",
         "rrf k10 c50 (recommended)": "**RRF k=10, 50/50 (recommended)**", "rrf k10 c20": "RRF k=10, 20/20",
         "weighted 0.6 c50 (before)": "weighted 0.6, 50/50 (default before)"}
SETS = [("scifact", "doc", "SciFact dev (100)"), ("pydocs", "doc", "Python docs (94)"), ("pdf", "page", "PDF manuals, page (55)")]


def latest_confirm() -> dict[tuple[str, str, str], dict]:
    out: dict[tuple[str, str, str], dict] = {}
    for r in ROWS:
        if r.get("kind") != "confirm":
            continue
        if r["mode"] == "hybrid" and r["settings"].get("fusion") == "rrf" and r.get("tag") != "dense-first-ties":
            continue  # RRF before the tie order edit: kept in results.jsonl, not in the table
        out[(r["dataset"], r["level"], r["config"])] = r
    return out


def main() -> None:
    rows = latest_confirm()
    head = "| configuration | " + " | ".join(f"{title}: nDCG@10 / hit@5 / MRR@10 / R@100" for _, _, title in SETS) + " |"
    print(head)
    print("|---" * (1 + len(SETS)) + "|")
    for config, name in NAMES.items():
        cells = []
        for ds, level, _ in SETS:
            r = rows.get((ds, level, config))
            cells.append("-" if r is None else " / ".join(
                f"{r[m]:.3f}" for m in ("ndcg@10", "hit@5", "mrr@10", "recall@100_depth100")))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| option | concurrency | p50 ms | p90 ms | questions/s |")
    print("|---|---|---|---|---|")
    bench = {}
    for r in ROWS:
        if r.get("kind") == "bench_explain":
            bench[(r["option"], r["concurrency"])] = r  # the last run wins
    for (option, conc), r in sorted(bench.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"| {option} | {conc} | {r['p50_ms']} | {r['p90_ms']} | {r['qps']} |")
    print()
    for r in ROWS:
        if r.get("kind") == "wholedoc":
            print(f"wholedoc {r['system']}: dev {r['dev_ndcg@10']}, full-300 {r['full300_ndcg@10']}, implied held-out "
                  f"{r['implied_heldout_ndcg@10']}, dev - held-out {r['dev_minus_heldout']}")


if __name__ == "__main__":
    main()
