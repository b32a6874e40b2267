"""Calibrate the dev split against the held-out queries with the three whole-document systems whose
scores over all 300 SciFact test queries STACK.md gives (BM25 0.679, MiniLM 0.645, RRF k=60 0.716).

Re-run here on the 100 dev queries, each system's held-out score follows without seeing a held-out
query: held_out = (300 x full - 100 x dev) / 200. The difference dev - held_out is how much easier
the dev split is, for systems like ours.

Run: PYTHONPATH=/tmp/fusion-pkgs .venv/bin/python docs/research/fusion/wholedoc.py
(bm25s and PyStemmer installed there with pip --target, outside the project's environment).
`--no-dense` skips the dense part (5,183 abstracts to embed the first time).
"""

from __future__ import annotations

import json
import sys

import numpy as np
from common import DATASETS, encoder, load_eval, record

from qa_app.evaluation import mean_metrics, query_metrics

FULL_300 = {"bm25": 0.679, "dense": 0.645, "rrf60": 0.716}  # STACK.md


def main() -> None:
    ds = DATASETS["scifact"]
    queries, qrels = load_eval(ds)
    docs = [json.loads(line) for line in ds.corpus[0].read_text().splitlines() if line.strip()]
    ids = [d["_id"] for d in docs]
    texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
    qids = list(queries)
    runs: dict[str, dict[str, list[str]]] = {}

    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    found, _ = retriever.retrieve(bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer,
                                                 show_progress=False), k=1000, show_progress=False)
    runs["bm25"] = {q: [ids[i] for i in row] for q, row in zip(qids, found, strict=True)}

    if "--no-dense" not in sys.argv:
        enc = encoder()
        doc_vectors = enc.encode(texts, 32)
        q_vectors = enc.encode(list(queries.values()), 32)  # MTEB embeds queries like documents
        scores = q_vectors @ doc_vectors.T
        order = np.argsort(-scores, axis=1)[:, :1000]
        runs["dense"] = {q: [ids[i] for i in row] for q, row in zip(qids, order, strict=True)}
        fused = {}
        for q in qids:
            s: dict[str, float] = {}
            for lst in (runs["bm25"][q], runs["dense"][q]):
                for r, d in enumerate(lst[:1000], 1):
                    s[d] = s.get(d, 0.0) + 1 / (60 + r)
            fused[q] = sorted(s, key=lambda d: -s[d])[:1000]
        runs["rrf60"] = fused

    for name, run in runs.items():
        per_query = {q: query_metrics(run[q], qrels[q], binary=True) for q in qids}
        dev = mean_metrics(per_query.values())
        held_out = (300 * FULL_300[name] - 100 * dev["ndcg@10"]) / 200
        row = {"kind": "wholedoc", "system": name, "dev_ndcg@10": round(dev["ndcg@10"], 4),
               "dev_recall@100": round(dev["recall@100"], 4), "full300_ndcg@10": FULL_300[name],
               "implied_heldout_ndcg@10": round(held_out, 4), "dev_minus_heldout": round(dev["ndcg@10"] - held_out, 4),
               "per_query_ndcg": {q: round(m["ndcg@10"], 5) for q, m in per_query.items()}}
        print(json.dumps({k: v for k, v in row.items() if k != "per_query_ndcg"}))
        record(row)


if __name__ == "__main__":
    main()
