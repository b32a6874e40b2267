"""Print the grid results (JSON lines from reval.py) as one Markdown table, SciFact and Python docs side by side."""

from __future__ import annotations

import json
import sys

rows: dict[tuple, dict] = {}
for line in open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/research/grid.jsonl"):
    d = json.loads(line)
    key = (d["label"], d["mode"], d["ranker"] if d["mode"] == "hybrid" else "-", d["candidates"] if d["mode"] == "hybrid" else "-")
    rows.setdefault(key, {})[d["set"]] = d

print("| collection | mode | fusion | cand. | SciFact nDCG@10 | SciFact R@100 (depth 250) | SciFact nDCG@10 at depth 250 "
      "| py hit@5 | py MRR@10 | py R@100 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for key, sets in rows.items():
    sf, py = sets.get("scifact", {}), sets.get("pydocs", {})
    print("| " + " | ".join(str(x) for x in [
        *key, sf.get("ndcg@10", ""), sf.get("recall@100", ""), sf.get("deep_ndcg@10", ""),
        py.get("hit@5", ""), py.get("mrr@10", ""), py.get("recall@100", "")]) + " |")
