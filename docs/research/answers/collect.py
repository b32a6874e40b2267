"""Collect what the answer research needs from a loaded collection, once, so that tuning runs offline.

For each question of a set: the passages the app retrieves (top 5, hybrid, as `qa-app ask` shows),
the units (sentences) of those passages, and the dense vector of the question and of every unit.
For each gold answer, the claim-check dev pairs: every sentence of the gold answer against its gold
passage (the passage of a gold page that holds the answer's keywords and is closest to it) and
against passages that do not hold the answer (retrieved passages of other pages, and passages
retrieved for off-topic questions).

    .venv/bin/python docs/research/answers/collect.py python-docs /tmp/qa16/pydocs.db /tmp/qa16/python-docs.pkl
    .venv/bin/python docs/research/answers/collect.py pdf-manuals /tmp/qa16/pdfs.db /tmp/qa16/pdf-manuals.pkl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import sys
from pathlib import Path
from typing import Any

from qa_app.answer.claims import texts_to_embed
from qa_app.answer.extractive import EMBED_CHARS, candidate_units, passage_units, split_sentences
from qa_app.evaluation import (
    _suffix_index,
    contains_keywords,
    document_of,
    read_answers,
    read_qrels,
    read_queries,
)
from qa_app.models import Passage
from qa_app.search.query import Query
from qa_app.service import QAService
from qa_app.settings import Settings

ROOT = Path(__file__).resolve().parents[3]

DATA = ROOT / "data" / "eval"
TOP_K = 5


def any_keyword(text: str, keywords: tuple[str, ...]) -> bool:
    return any(contains_keywords(text, [k]) for k in keywords)


async def gold_passages(service: QAService, judged: dict[str, int], sources: list[str]) -> list[Passage]:
    """The passages of the grade-2 pages (a PDF page: the passages that span it)."""
    found: list[Passage] = []
    for doc, grade in judged.items():
        if grade < 2:
            continue
        name, _, page = doc.partition("#")
        for source in sources:
            if source.replace("\\", "/").endswith("/" + name):
                passages = await service.source_passages(source, None)
                if page:
                    found += [p for p in passages if p.page <= int(page) <= max(p.page, p.page_end)]
                else:
                    found += passages
    return found


async def collect(name: str, db: str, out: Path, collection: str) -> None:
    settings = Settings(milvus_uri=db, collection=collection, precision="fp32")  # the same vectors every run
    service = await QAService.open(settings)
    try:
        await service.ready()
        queries = read_queries(DATA / name / "queries.jsonl")
        answers = read_answers(DATA / name / "answers.jsonl") if (DATA / name / "answers.jsonl").exists() else {}
        qrels = read_qrels(DATA / name / "qrels.tsv") if (DATA / name / "qrels.tsv").exists() else {}
        off_topic = read_queries(DATA / "off-topic" / "queries.jsonl")
        suffixes = _suffix_index({d for j in qrels.values() for d in j})
        sources = list((await service.corpus()).sources)
        records: list[dict[str, Any]] = []
        texts: dict[str, None] = {}
        for qid, question in {**queries, **{f"off-topic:{k}": v for k, v in off_topic.items()}}.items():
            result = await service.ask(Query(question, top_k=TOP_K))
            passages = result.passages
            judged = qrels.get(qid, {})
            gold = answers.get(qid)
            record: dict[str, Any] = {
                "qid": qid, "question": question, "passages": passages,
                "gold": [judged.get(document_of(p, suffixes), 0) > 0 for p in passages],
                "answer": gold.answer if gold else None, "keywords": gold.keywords if gold else None,
                "judged": judged,
            }
            texts.setdefault(question)
            for unit in candidate_units(passages, TOP_K):
                texts.setdefault(unit.embed_text)
            if gold is not None:
                candidates = [p for p in await gold_passages(service, judged, sources)
                              if any_keyword(p.embed_text, gold.keywords)]
                record["gold_passages"] = candidates
                record["answer_sentences"] = [gold.answer[s:e] for s, e in split_sentences(gold.answer)]
                for sentence in record["answer_sentences"]:
                    texts.setdefault(sentence)
                for p in candidates + passages:
                    texts.setdefault(p.text[:EMBED_CHARS * 3])
                    for unit in passage_units(1, p):
                        texts.setdefault(unit.embed_text)
            else:
                for p in passages:
                    texts.setdefault(p.text[:EMBED_CHARS * 3])
            records.append(record)
            print(f"{qid}: {len(passages)} passages, {len(texts)} texts", file=sys.stderr)
        ordered = list(texts)
        vectors = await service.embed_texts(ordered)
        _ = texts_to_embed  # the claim check embeds the same kinds of texts
        with out.open("wb") as handle:
            pickle.dump({"set": name, "records": records, "vectors": dict(zip(ordered, vectors, strict=True))}, handle)
        print(json.dumps({"set": name, "questions": len(records), "texts": len(ordered)}))
    finally:
        await service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("set", help="a folder of data/eval with queries.jsonl (answers.jsonl, qrels.tsv)")
    parser.add_argument("db", help="the Milvus Lite file that holds its corpus")
    parser.add_argument("out", type=Path)
    parser.add_argument("--collection", default="passages")
    args = parser.parse_args()
    asyncio.run(collect(args.set, args.db, args.out, args.collection))


if __name__ == "__main__":
    main()
