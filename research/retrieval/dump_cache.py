"""Seed rload.py's embedding cache from a loaded collection (its search_text and dense vector).

Usage: .venv/bin/python research/retrieval/dump_cache.py --db /tmp/research/pydocs.db --cache minilm-py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# Pin qa_app: the working tree changes under concurrent edits (schema 2 appeared mid-run).
if os.environ.get("RESEARCH_QA_APP"):
    sys.path.insert(0, os.environ["RESEARCH_QA_APP"])
sys.path.insert(0, str(Path(__file__).resolve().parent))

from qa_app.store import PassageStore  # noqa: E402
from rload import CACHE_DIR, CachingEncoder  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", default="passages")
    parser.add_argument("--cache", required=True)
    args = parser.parse_args()
    store = PassageStore(args.db, args.collection, timeout=60)
    keys, vectors = [], []
    async for row in store.rows("", ["search_text", "dense"]):
        keys.append(CachingEncoder.key(row["search_text"]))
        vectors.append(np.asarray(row["dense"], dtype=np.float32))
    await store.close()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE_DIR / f"{args.cache}.npz", keys=np.array(keys), vectors=np.stack(vectors))
    print(f"{len(keys)} vectors -> {CACHE_DIR / (args.cache + '.npz')}")


if __name__ == "__main__":
    asyncio.run(main())
