"""The chosen configurations through the product itself: QAService.ask via qa_app.evaluation.evaluate_mode
(the code behind `qa-app eval`), on each data set's `full` collection. `confirm.py DATASET [...]`.

Served metrics (nDCG@10, hit@5, MRR@10) at depth 20, so the candidates are the configured ones
(Retriever asks max(candidates, top_k) a list); Recall@100 from a separate run at depth 100, where
the candidates are therefore 100 a list whatever the setting (the trap docs/research/retrieval notes).
`--only TEXT` runs the configurations whose name contains TEXT; `--tag NAME` labels the rows.
PDF manuals: page-level qrels (FILE#PAGE, as qa_app.evaluation now reads them) and file level.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from common import DATASETS, file_level, load_eval, open_service, record, settings_for

from qa_app.evaluation import evaluate_mode

CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("dense", "dense", {}),
    ("sparse", "sparse", {}),
    ("rrf k60 c50 (before)", "hybrid", {"fusion": "rrf", "rrf_k": 60, "candidates": 50}),
    ("rrf k10 c50 (recommended)", "hybrid", {"fusion": "rrf", "rrf_k": 10, "candidates": 50}),
    ("rrf k10 c20", "hybrid", {"fusion": "rrf", "rrf_k": 10, "candidates": 20}),
    ("weighted 0.6 c50 (before)", "hybrid", {"fusion": "weighted", "dense_weight": 0.6, "candidates": 50}),
]


TAG = ""  # --tag NAME: what state of the product code ran (e.g. the RRF tie order)


async def run(dataset: str, only: str = "") -> None:
    ds = DATASETS[dataset]
    queries, qrels = load_eval(ds)
    levels = [("page", qrels), ("file", file_level(qrels))] if ds.pages else [("doc", qrels)]
    for name, mode, changes in CONFIGS:
        if only and only not in name:
            continue
        settings = settings_for(dataset, **changes)
        service = open_service(settings)
        try:
            for level, judged in levels:
                served = await evaluate_mode(service, queries, judged, mode, depth=20, show_progress=False)
                deep = await evaluate_mode(service, queries, judged, mode, depth=100, show_progress=False)
                row = {"kind": "confirm", "dataset": dataset, "level": level, "config": name, "tag": TAG, "mode": mode,
                       "settings": changes, "queries": served.queries,
                       **{m: round(served.metrics[m], 4) for m in ("ndcg@10", "hit@5", "mrr@10", "recall@10")},
                       "recall@100_depth100": round(deep.metrics["recall@100"], 4),
                       "ndcg@10_depth100": round(deep.metrics["ndcg@10"], 4),
                       "seconds_depth20": round(served.seconds, 2),
                       "per_query_ndcg": {q: round(m["ndcg@10"], 5) for q, m in served.per_query.items()}}
                print(json.dumps({k: v for k, v in row.items() if k != "per_query_ndcg"}))
                record(row)
        finally:
            await service.close()


async def main() -> None:
    global TAG
    args = sys.argv[1:]
    only = ""
    while args and args[0].startswith("--"):
        flag, value, args = args[0], args[1], args[2:]
        if flag == "--tag":
            TAG = value
        elif flag == "--only":
            only = value
    for dataset in args:
        await run(dataset, only)


if __name__ == "__main__":
    asyncio.run(main())
