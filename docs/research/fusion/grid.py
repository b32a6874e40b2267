"""The fusion grid on the cached lists: `grid.py DATASET [BM25 [INDEX]]` appends one line per
configuration to grid.jsonl (means and per-query nDCG@10 / hit@5 / MRR@10, for cross-validation).

RRF: k x dense candidates x BM25 candidates (x dense copies); weighted: dense weight x candidates;
rrf_doc (a what-if: RRF of document rankings); dense and BM25 alone.
"""

from __future__ import annotations

import itertools
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

from common import HERE, machine
from fuse import measure
from lists import lists_path

GRID = HERE / "grid.jsonl"
KS = (5, 10, 20, 30, 40, 60, 100)
CANDS = (10, 20, 30, 50, 100, 200)
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def configs() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [("dense", {}), ("sparse", {})]
    for k, cd, cs in itertools.product(KS, CANDS, CANDS):
        out.append(("rrf", {"k": k, "cd": cd, "cs": cs}))
    for k, c in itertools.product(KS, (20, 50, 100)):
        out.append(("rrf", {"k": k, "cd": c, "cs": c, "wd": 2}))
        out.append(("rrf", {"k": k, "cd": c, "cs": c, "wd": 3, "ws": 2}))
    for w, c in itertools.product(WEIGHTS, (20, 50, 100, 200)):
        out.append(("weighted", {"w": w, "cd": c, "cs": c}))
    for k, c in itertools.product(KS, (20, 50, 100, 200)):
        out.append(("rrf_doc", {"k": k, "cd": c, "cs": c}))
    return out


def small_configs() -> list[tuple[str, dict[str, Any]]]:
    """For variants of the collection (BM25 text, k1 and b): the neighbourhood of the candidates."""
    out: list[tuple[str, dict[str, Any]]] = [("dense", {}), ("sparse", {})]
    for k, (cd, cs) in itertools.product((5, 10, 20, 40, 60), ((20, 20), (30, 30), (50, 50), (100, 100),
                                                               (20, 50), (30, 50), (50, 20), (50, 30), (100, 50))):
        out.append(("rrf", {"k": k, "cd": cd, "cs": cs}))
    for w in WEIGHTS:
        out.append(("weighted", {"w": w, "cd": 50, "cs": 50}))
    return out


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    dataset = args[0]
    bm25 = args[1] if len(args) > 1 else "full"
    index = args[2] if len(args) > 2 else ""
    with open(lists_path(dataset, bm25, index), "rb") as handle:
        data = pickle.load(handle)
    levels = ["doc", "file"] if dataset == "pdf" else ["doc"]
    meta = {"dataset": dataset, "bm25": bm25, "index": index, "passages": data["passages"],
            "queries": len(data["lists"]), **machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    started = time.perf_counter()
    with Path(GRID).open("a", encoding="utf-8") as out:
        for level in levels:
            for method, params in (small_configs() if "--small" in sys.argv else configs()):
                row = {**meta, "level": level, "method": method, "params": params, **measure(data, method, params, level)}
                out.write(json.dumps(row) + "\n")
    print(f"{dataset} {bm25} {index}: done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
