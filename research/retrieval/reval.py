"""Research evaluation grid: one Pipeline opened once, many retrieval settings, qa_app's own metrics.

For each configuration it runs qa_app.evaluation.evaluate_mode (the code behind `qa-app eval`) and
prints one JSON line. Two depths per configuration, because the Retriever fetches
max(candidates, top_k) from each list: an eval at depth 100 or 250 silently raises the candidate depth
to 100 or 250, so it does not measure what is served with top_k 5 and QA_CANDIDATES 50.
  * "served" depth (--served-depth, default 20 passages): candidates are really `candidates`;
    nDCG@10, MRR@10, hit@5 are read here.
  * "deep" depth (--deep-depth, default 250): Recall@100 (candidates are then 250 per list).

Rankers: rrf:K (Milvus RRFRanker); weighted:WD (Milvus WeightedRanker(WD, 1-WD), norm_score on);
weightedraw:WD (the same, norm_score off); crrf:K and cw:WD fuse in Python from the dense and sparse
lists (RRF; WD * min-max(cosine) + (1-WD) * min-max(BM25)).

Usage:
  .venv/bin/python research/retrieval/reval.py --db /tmp/research/sf200.db --set scifact \
      --grid "hybrid rrf:60 c50" "hybrid rrf:20 c100" "dense" "sparse"
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# Pin qa_app: the working tree changes under concurrent edits (schema 2 appeared mid-run).
if os.environ.get("RESEARCH_QA_APP"):
    sys.path.insert(0, os.environ["RESEARCH_QA_APP"])
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker  # noqa: E402

from qa_app import store as store_mod  # noqa: E402
from qa_app.config import load_settings  # noqa: E402
from qa_app.evaluation import evaluate_mode, judged_queries, read_qrels, read_queries  # noqa: E402
from qa_app.pipeline import Pipeline  # noqa: E402

SETS = {
    "scifact": ("/work/shared/eval/scifact/queries.jsonl", "/work/shared/eval/scifact/qrels/dev.tsv"),
    "pydocs": ("/work/main/data/eval/python-docs/queries.jsonl", "/work/main/data/eval/python-docs/qrels.tsv"),
}


def install_ranker(store: store_mod.PassageStore, ranker: str) -> None:
    """Replace search_hybrid of this store with one that uses `ranker` (same requests as the app's)."""
    kind, _, value = ranker.partition(":")

    async def search_hybrid(vector, text, limit, *, candidates, rrf_k, expr=""):
        if kind in ("cw", "crrf", "wrrf"):  # fused here, from the two lists the Retriever fetches anyway
            dense, sparse = await asyncio.gather(store.search_dense(vector, candidates, expr),
                                                 store.search_sparse(text, candidates, expr))
            return client_fusion(kind, value, dense, sparse)[:limit]
        requests = [
            AnnSearchRequest(data=[vector.tolist()], anns_field="dense", param={"metric_type": "IP"},
                             limit=candidates, expr=expr or None),
            AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                             limit=candidates, expr=expr or None),
        ]
        if kind == "rrf":
            rank = RRFRanker(int(value))
        else:  # weighted: Milvus normalizes (norm_score); weightedraw: raw IP and BM25 scores
            w = float(value)
            rank = WeightedRanker(w, 1.0 - w, norm_score=(kind == "weighted"))
        result = await store._call(lambda c: c.hybrid_search(
            store.collection, requests, rank, limit=limit, output_fields=store_mod.OUTPUT_FIELDS,
            timeout=store.timeout))
        return [store_mod._hit(raw) for raw in result[0]]

    store.search_hybrid = search_hybrid  # type: ignore[method-assign]


def client_fusion(kind: str, spec: str, dense: list, sparse: list) -> list:
    """crrf:K = RRF with k=K; wrrf:K:W = 2W/(K+rank_dense) + 2(1-W)/(K+rank_sparse);
    cw:W = W * minmax(cosine) + (1-W) * minmax(BM25) over each list."""
    numbers = [float(x) for x in spec.split(":")]
    k = numbers[0]
    value = numbers[-1] if kind != "crrf" else 0.5
    scores: dict[str, float] = {}
    hits = {h.id: h for h in [*sparse, *dense]}
    for weight, hits_of in ((value, dense), (1.0 - value, sparse)):
        if not hits_of:
            continue
        if kind in ("crrf", "wrrf"):
            for rank, h in enumerate(hits_of, 1):
                scores[h.id] = scores.get(h.id, 0.0) + 2 * weight / (k + rank)
        else:
            top, low = max(h.score for h in hits_of), min(h.score for h in hits_of)
            for h in hits_of:
                norm = (h.score - low) / (top - low) if top > low else 1.0
                scores[h.id] = scores.get(h.id, 0.0) + weight * norm
    order = sorted(scores, key=lambda i: -scores[i])
    return [dataclasses.replace(hits[i], score=scores[i]) for i in order]


def parse_config(text: str) -> dict:
    parts = text.split()
    config = {"mode": parts[0], "ranker": "rrf:60", "candidates": 50}
    for part in parts[1:]:
        if part[0] == "c" and part[1:].isdigit():
            config["candidates"] = int(part[1:])
        else:
            config["ranker"] = part
    return config


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", default="passages")
    parser.add_argument("--set", required=True, choices=sorted(SETS))
    parser.add_argument("--grid", nargs="+", required=True)
    parser.add_argument("--served-depth", type=int, default=20)
    parser.add_argument("--deep-depth", type=int, default=250)
    parser.add_argument("--no-deep", action="store_true")
    parser.add_argument("--encoder", default="minilm", choices=["minilm"])
    parser.add_argument("--label", default="")
    parser.add_argument("--out", help="append JSON lines here too")
    args = parser.parse_args()

    settings = load_settings(os.environ).replace(milvus_uri=args.db, collection=args.collection)
    pipeline = await Pipeline.open(settings)
    qpath, rpath = SETS[args.set]
    queries, _, _ = judged_queries(read_queries(Path(qpath)), read_qrels(Path(rpath)))
    qrels = read_qrels(Path(rpath))
    try:
        for spec in args.grid:
            config = parse_config(spec)
            install_ranker(pipeline.store, config["ranker"])
            pipeline.retriever.candidates = config["candidates"]
            pipeline.retriever.rrf_k = int(float(config["ranker"].split(":")[1])) if "rrf" in config["ranker"] else 60
            started = time.perf_counter()
            served = await evaluate_mode(pipeline, queries, qrels, config["mode"], depth=args.served_depth,
                                         show_progress=False)
            line = {"set": args.set, "label": args.label, "db": args.db, **config,
                    "ndcg@10": round(served.metrics["ndcg@10"], 4), "mrr@10": round(served.metrics["mrr@10"], 4),
                    "hit@5": round(served.metrics["hit@5"], 4), "recall@10": round(served.metrics["recall@10"], 4)}
            if not args.no_deep:
                deep = await evaluate_mode(pipeline, queries, qrels, config["mode"], depth=args.deep_depth,
                                           show_progress=False)
                line.update({"deep_ndcg@10": round(deep.metrics["ndcg@10"], 4),
                             "recall@100": round(deep.metrics["recall@100"], 4),
                             "deep_mean_docs": round(deep.mean_documents, 1)})
            line["seconds"] = round(time.perf_counter() - started, 1)
            print(json.dumps(line), flush=True)
            if args.out:
                with open(args.out, "a") as handle:
                    handle.write(json.dumps(line) + "\n")
    finally:
        await pipeline.close()


if __name__ == "__main__":
    asyncio.run(main())
