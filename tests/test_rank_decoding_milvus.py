"""On real Milvus Lite and the real model: the ranks read off the RRF result are the ranks the keyword
list gives, passage for passage, and most questions need no keyword search at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_app.embedding.encoder import DenseEncoder
from qa_app.search.query import Query
from qa_app.settings import Settings
from qa_app.store.milvus import MilvusStore
from tests.conftest import load_into, make_pipeline, make_settings, run

DOCS = Path(__file__).parent.parent / "data" / "python-docs"
QUESTIONS = Path(__file__).parent.parent / "data" / "eval" / "python-docs" / "queries.jsonl"


def explained(settings: Settings, encoder: DenseEncoder, questions: list[str],
              top_k: int) -> tuple[list[object], dict[str, int]]:
    async def ask_all() -> tuple[list[object], dict[str, int]]:
        async with make_pipeline(settings, encoder) as service:
            results = [await service.ask(Query(q, top_k=top_k)) for q in questions]
            stats = service._live.retriever.stats()["rrf_ranks"]
        return [[(p.id, p.rank, p.dense_rank, p.sparse_rank, p.dense_score) for p in r.passages]
                for r in results], stats
    return run(ask_all())


@pytest.mark.parametrize("top_k", [5, 12])
def test_decoded_ranks_match_the_keyword_list(tmp_path: Path, encoder: DenseEncoder, top_k: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path / "docs.db")
    run(load_into(settings, encoder, DOCS / "tutorial", DOCS / "howto"))
    questions = [json.loads(line)["text"] for line in QUESTIONS.read_text().splitlines()][:40]
    decoded, stats = explained(settings, encoder, questions, top_k)
    assert stats["decoded"] + stats["keyword_searches"] == len(questions)
    assert stats["decoded"] >= len(questions) // 2  # the point of it: most questions need one search

    # the same questions with the ranks always read from the keyword list (as against a server)
    monkeypatch.setattr(MilvusStore, "is_embedded", property(lambda self: False))
    listed, stats = explained(settings, encoder, questions, top_k)
    assert stats == {"decoded": 0, "keyword_searches": len(questions)}
    for a, b in zip(decoded, listed, strict=True):
        assert a == b, (a, b)
