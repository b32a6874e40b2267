"""Build the collections the grids read: `load.py DATASET [BM25]` (BM25 = full | title | text).

full  = the product's search_text (title + heading path + passage text);
title = title + passage text; text = passage text only. The dense vector is always the product's.
Each variant is its own Milvus Lite file under /tmp/fusion; embeddings come from /tmp/fusion-cache.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from common import build, record


async def main() -> None:
    dataset = sys.argv[1]
    variants = sys.argv[2:] or ["full"]
    for bm25 in variants:
        started = time.perf_counter()
        row = await build(dataset, bm25)
        row["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(row))
        record({"kind": "load", **row})


if __name__ == "__main__":
    asyncio.run(main())
