"""Paired differences of per-query nDCG@10 between configurations (grid.jsonl), with a bootstrap 95%
interval: `paired.py` prints the comparisons the README quotes and appends them to results.jsonl."""
from __future__ import annotations

import random

from common import record
from table import find

PAIRS = [
    (("rrf", {"k": 10, "cd": 50, "cs": 50}), ("rrf", {"k": 60, "cd": 50, "cs": 50})),
    (("rrf", {"k": 10, "cd": 20, "cs": 20}), ("rrf", {"k": 60, "cd": 50, "cs": 50})),
    (("rrf", {"k": 10, "cd": 50, "cs": 50}), ("rrf", {"k": 10, "cd": 20, "cs": 20})),
    (("weighted", {"w": 0.6, "cd": 50, "cs": 50}), ("rrf", {"k": 10, "cd": 50, "cs": 50})),
    (("rrf", {"k": 10, "cd": 50, "cs": 50}), ("dense", {})),
    (("rrf", {"k": 10, "cd": 50, "cs": 50}), ("sparse", {})),
]


def main() -> None:
    rng = random.Random(16)
    for (ma, pa), (mb, pb) in PAIRS:
        for ds in ("scifact", "pydocs", "pdf"):
            a, b = find(ds, ma, pa), find(ds, mb, pb)
            if a is None or b is None:
                continue
            qids = sorted(a["per_query_ndcg"])
            diff = [a["per_query_ndcg"][q] - b["per_query_ndcg"][q] for q in qids]
            mean = sum(diff) / len(diff)
            boots = sorted(sum(rng.choice(diff) for _ in diff) / len(diff) for _ in range(2000))
            lo, hi = boots[50], boots[1949]
            wins, losses = sum(d > 1e-9 for d in diff), sum(d < -1e-9 for d in diff)
            print(f"{ds:8} {ma} {pa} - {mb} {pb}: {mean:+.4f} [{lo:+.4f}, {hi:+.4f}] better/worse on {wins}/{losses} queries")
            record({"kind": "paired", "dataset": ds, "a": [ma, pa], "b": [mb, pb], "mean_diff_ndcg@10": round(mean, 4),
                    "ci95": [round(lo, 4), round(hi, 4)], "better": wins, "worse": losses})


if __name__ == "__main__":
    main()
