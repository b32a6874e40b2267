"""Calibrate the relevance floor (QA_ANSWER_FLOOR): the best passage's cosine similarity for questions
a corpus answers, against questions it does not (those of another corpus).

    python -m bench.calibrate_floor --corpus scifact=/tmp/scifact.db:scifact \
        --corpus pydocs=/tmp/demo.db:passages

Each corpus is NAME=DB_FILE:COLLECTION; its questions are data/eval or ../shared/eval sets by name.
Answerable: a corpus's own questions whose gold document is among its top 5 passages (so a retrieval
miss is not counted as "unanswerable"). Unanswerable: every other corpus's questions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import numpy as np

from qa_app.search.query import Query
from qa_app.service import QAService
from qa_app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = {
    "scifact": (ROOT.parent / "shared/eval/scifact/queries.jsonl", ROOT.parent / "shared/eval/scifact/qrels/dev.tsv"),
    "pydocs": (ROOT / "data/eval/python-docs/queries.jsonl", ROOT / "data/eval/python-docs/qrels.tsv"),
}


def read_questions(name: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    queries_path, qrels_path = QUESTIONS[name]
    queries = {q["_id"]: q["text"] for q in map(json.loads, queries_path.read_text().splitlines()) if q}
    gold: dict[str, set[str]] = {}
    for line in qrels_path.read_text().splitlines()[1:]:
        qid, doc, _ = line.split("\t")
        gold.setdefault(qid, set()).add(doc.rsplit(".", 1)[0])  # library/x.html ~ library/x.rst
    return queries, gold


def found(passage_source: str, doc_id: str, gold: set[str]) -> bool:
    if doc_id:
        return doc_id in gold
    stem = passage_source.rsplit(".", 1)[0]
    return any(stem.endswith("/" + g) for g in gold)


async def best_cosines(pipeline: QAService, questions: dict[str, str], gold: dict[str, set[str]] | None
                       ) -> list[float]:
    scores = []
    for qid, text in questions.items():
        result = await pipeline.ask(Query(text, top_k=5, mode="dense"))
        if not result.passages:
            continue
        if gold is not None and not any(found(p.source, p.doc_id, gold.get(qid, set())) for p in result.passages):
            continue  # a retrieval miss says nothing about the floor
        scores.append(max(p.dense_score or 0.0 for p in result.passages))
    return scores


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="NAME=DB_FILE:COLLECTION")
    args = parser.parse_args()
    corpora = {}
    for spec in args.corpus:
        name, _, where = spec.partition("=")
        db, _, collection = where.partition(":")
        corpora[name] = (db, collection or "passages")
    answerable: list[float] = []
    unanswerable: list[float] = []
    for name, (db, collection) in corpora.items():
        pipeline = await QAService.open(Settings(milvus_uri=db, collection=collection))
        try:
            own, gold = read_questions(name)
            mine = await best_cosines(pipeline, own, gold)
            others: list[float] = []
            for other in corpora:
                if other != name:
                    others += await best_cosines(pipeline, read_questions(other)[0], None)
        finally:
            await pipeline.close()
        print(f"{name}: answerable n={len(mine)} p5={np.percentile(mine, 5):.3f} median={np.median(mine):.3f}; "
              f"other corpora's questions n={len(others)} p95={np.percentile(others, 95):.3f} "
              f"median={np.median(others):.3f}")
        answerable += mine
        unanswerable += others
    print(f"{'floor':>6} {'answerable kept':>16} {'off-topic refused':>18}")
    for floor in np.arange(0.20, 0.56, 0.05):
        kept = np.mean(np.array(answerable) >= floor)
        refused = np.mean(np.array(unanswerable) < floor)
        print(f"{floor:6.2f} {kept:16.1%} {refused:18.1%}")


if __name__ == "__main__":
    asyncio.run(main())
