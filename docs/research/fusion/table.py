"""Side-by-side lines of grid.jsonl: `table.py` prints chosen configurations on both dev sets."""
from __future__ import annotations

import json

from common import HERE

ROWS = [json.loads(line) for line in (HERE / "grid.jsonl").read_text().splitlines()]


def find(dataset: str, method: str, params: dict, bm25: str = "full", index: str = "", level: str = "doc") -> dict | None:
    for r in reversed(ROWS):
        if (r["dataset"], r["method"], r["bm25"], r["index"], r.get("level", "doc")) == (dataset, method, bm25, index, level) \
                and r["params"] == params:
            return r
    return None


def line(method: str, params: dict, datasets=("scifact", "pydocs"), **kw) -> str:
    cells = []
    for ds in datasets:
        r = find(ds, method, params, **kw)
        cells.append("-" if r is None else f"{r['ndcg@10']:.4f} {r['hit@5']:.3f} {r['mrr@10']:.4f} {r['recall@100']:.3f}")
    return f"{method:8} {json.dumps(params):38} | " + " | ".join(cells)


if __name__ == "__main__":
    print(" " * 48 + "| SciFact nDCG hit5 MRR R100      | pydocs nDCG hit5 MRR R100")
    rrf = [("rrf", {"k": k, "cd": c, "cs": c}) for k in (5, 10, 20, 40, 60, 100) for c in (20, 50, 100)]
    weighted = [("weighted", {"w": w, "cd": 50, "cs": 50}) for w in (0.4, 0.5, 0.6, 0.7)]
    for m, p in [("dense", {}), ("sparse", {}), *rrf, *weighted]:
        print(line(m, p))
