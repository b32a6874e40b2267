"""How well would a configuration chosen on these queries do on queries not yet seen?

Reads grid.jsonl (per-query nDCG@10 of every configuration). For each of N random splits of the dev
queries into halves A and B (SciFact and the Python docs split independently), the configuration
with the best mean on A is chosen, and scored on B. The mean B score is the estimate of the
selection procedure on new queries from the same distribution; A - B is its optimism.

Families (what the selection may choose from):
  rrf_sym    RRF, same candidates for both lists, any k
  rrf_any    RRF, any candidates per list, any k
  weighted   weighted fusion, any weight and candidates
Objectives: scifact (SciFact nDCG@10), joint (mean of SciFact nDCG@10 and Python-docs nDCG@10).
Fixed configurations are scored on B beside them: the current RRF setting (k 60, 50/50), the
weighted default (0.6, 50) and the recommended one (see README).

`cv.py [SPLITS]` prints a table and writes cv.jsonl.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from typing import Any

import numpy as np
from common import HERE

GRID = HERE / "grid.jsonl"
OUT = HERE / "cv.jsonl"


def key(row: dict[str, Any]) -> str:
    return json.dumps([row["method"], row["params"], row.get("bm25", "full"), row.get("index", "")], sort_keys=True)


def load() -> dict[str, dict[str, dict[str, float]]]:
    """config key -> dataset -> per-query nDCG@10 (the last line of a config wins)."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for line in GRID.read_text().splitlines():
        row = json.loads(line)
        if row.get("level", "doc") != "doc" or row["dataset"] not in ("scifact", "pydocs"):
            continue
        table.setdefault(key(row), {})[row["dataset"]] = row["per_query_ndcg"]
    return table


def family(k: str) -> str:
    method, params, bm25, index = json.loads(k)
    if bm25 != "full" or index:
        return "variant"
    if method == "rrf" and params.get("wd", 1) == 1 and params.get("ws", 1) == 1:
        return "rrf_sym" if params["cd"] == params["cs"] else "rrf_asym"
    return method


def fixed(method: str, bm25: str = "full", index: str = "", **params: Any) -> str:
    return json.dumps([method, params, bm25, index], sort_keys=True)


FIXED = {
    "rrf k60 50/50": fixed("rrf", k=60, cd=50, cs=50),
    "weighted 0.6 50": fixed("weighted", w=0.6, cd=50, cs=50),
}


def main() -> None:
    splits = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    recommended = json.loads((HERE / "recommended.json").read_text()) if (HERE / "recommended.json").exists() else {}
    fixed_configs = dict(FIXED)
    for name, cfg in recommended.items():
        fixed_configs[name] = fixed(cfg["method"], cfg.get("bm25", "full"), cfg.get("index", ""), **cfg["params"])
    table = load()
    both = {k: v for k, v in table.items() if "scifact" in v and "pydocs" in v}
    qids = {ds: sorted(next(iter(both.values()))[ds]) for ds in ("scifact", "pydocs")}
    keys = list(both)
    matrix = {ds: np.array([[both[k][ds][q] for q in qids[ds]] for k in keys]) for ds in qids}
    families = {"rrf_sym": [i for i, k in enumerate(keys) if family(k) == "rrf_sym"],
                "rrf_any": [i for i, k in enumerate(keys) if family(k) in ("rrf_sym", "rrf_asym")],
                "weighted": [i for i, k in enumerate(keys) if family(k) == "weighted"]}
    fixed_index = {name: keys.index(k) for name, k in fixed_configs.items() if k in keys}
    rng = random.Random(16)
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    chosen: dict[tuple[str, str], Counter[str]] = {}
    for _ in range(splits):
        masks = {}
        for ds, ids in qids.items():
            order = list(range(len(ids)))
            rng.shuffle(order)
            a = np.zeros(len(ids), bool)
            a[order[: len(ids) // 2]] = True
            masks[ds] = a
        means = {ds: (matrix[ds][:, masks[ds]].mean(1), matrix[ds][:, ~masks[ds]].mean(1)) for ds in qids}
        for fam, members in [*families.items(), *((f"fixed:{n}", [i]) for n, i in fixed_index.items())]:
            for objective in ("scifact", "joint"):
                score_a = means["scifact"][0] if objective == "scifact" else (means["scifact"][0] + means["pydocs"][0]) / 2
                best = max(members, key=lambda i: score_a[i])
                cell = results.setdefault((fam, objective), {"a_scifact": [], "b_scifact": [], "b_pydocs": []})
                cell["a_scifact"].append(float(means["scifact"][0][best]))
                cell["b_scifact"].append(float(means["scifact"][1][best]))
                cell["b_pydocs"].append(float(means["pydocs"][1][best]))
                chosen.setdefault((fam, objective), Counter())[keys[best]] += 1
    lines = []
    print(f"{splits} random 50/50 splits; nDCG@10 on the chosen half (A) and on the other (B)")
    print(f"{'family':28} {'objective':8} {'SciFact A':>9} {'SciFact B':>9} {'optimism':>8} {'py B':>7}  most chosen")
    for (fam, objective), cell in results.items():
        a, b, p = (float(np.mean(cell[x])) for x in ("a_scifact", "b_scifact", "b_pydocs"))
        top = chosen[(fam, objective)].most_common(3)
        row = {"kind": "cv", "family": fam, "objective": objective, "splits": splits, "scifact_a": round(a, 4),
               "scifact_b": round(b, 4), "optimism": round(a - b, 4), "pydocs_b": round(p, 4),
               "scifact_b_sd": round(float(np.std(cell["b_scifact"])), 4),
               "most_chosen": [(json.loads(k)[:2], n) for k, n in top]}
        lines.append(row)
        print(f"{fam:28} {objective:8} {a:9.4f} {b:9.4f} {a - b:8.4f} {p:7.4f}  "
              + "; ".join(f"{json.loads(k)[0]} {json.loads(k)[1]} x{n}" for k, n in top[:2]))
    with OUT.open("w") as handle:
        for row in lines:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
