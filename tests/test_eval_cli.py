"""`qa-app eval` end to end: the fixture corpus loaded by the CLI into Milvus Lite, the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_app.cli import cli

CORPUS = Path(__file__).parent / "corpus"
METRIC_KEYS = {"ndcg@10", "recall@10", "recall@100", "mrr@10", "hit@5", "queries", "seconds", "mean_documents"}

QUERIES = [
    {"_id": "bees", "text": "How do honey bees tell their hive mates where the flowers are?"},
    {"_id": "octopus", "text": "How many hearts does an octopus have?"},
    {"_id": "mallard", "text": "Which steam locomotive set the world speed record in 1938?"},
    {"_id": "unjudged", "text": "What is sourdough starter made of?"},
]
# d1 and d2 are BEIR ids (doc_id); corpus/trains.html is a path suffix of the HTML page's source.
QRELS = "query-id\tcorpus-id\tscore\nbees\td1\t1\nbees\td2\t0\noctopus\td2\t1\nmallard\tcorpus/trains.html\t2\n"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp_path = tmp_path_factory.mktemp("eval")
    db = str(tmp_path / "t.db")
    result = CliRunner().invoke(cli, ["load", str(CORPUS), "--milvus-uri", db, "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files_added"] == 5 and not report["skipped"]
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(QRELS)
    return {"db": db, "queries": str(queries), "qrels": str(qrels), "dir": str(tmp_path)}


def _eval(loaded: dict[str, str], *args: str, qrels: str | None = None) -> object:
    return CliRunner().invoke(cli, ["eval", "--queries", loaded["queries"], "--qrels", qrels or loaded["qrels"],
                                    "--milvus-uri", loaded["db"], "--quiet", *args])


def test_eval_all_modes_json(loaded: dict[str, str]) -> None:
    result = _eval(loaded, "--mode", "all", "--json", "--concurrency", "2")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"queries", "unjudged", "missing", "depth", "relevance", "modes"}
    assert (report["queries"], report["unjudged"], report["missing"]) == (3, 1, 0)
    assert (report["depth"], report["relevance"]) == (100, "graded")
    assert list(report["modes"]) == ["hybrid", "dense", "sparse"]
    for mode, row in report["modes"].items():
        assert set(row) == METRIC_KEYS, mode
        assert row["queries"] == 3
        # the whole corpus is a few passages: every relevant document is within 100
        assert row["recall@100"] == 1.0, mode
    hybrid = report["modes"]["hybrid"]
    # easy questions: each relevant document first, found by its doc_id or by its path suffix
    assert hybrid["ndcg@10"] == 1.0
    assert hybrid["mrr@10"] == 1.0
    assert hybrid["recall@10"] == 1.0
    assert hybrid["hit@5"] == 1.0
    # dense ranks every passage: 5 files, 7 documents (3 JSONL lines + 4 pages), passages deduped by document
    assert report["modes"]["dense"]["mean_documents"] == 7.0


def test_eval_counts_misses(loaded: dict[str, str]) -> None:
    """Judgements that point at the wrong documents must lower the numbers (the metric can fail)."""
    wrong = Path(loaded["dir"], "wrong.tsv")
    wrong.write_text("query-id\tcorpus-id\tscore\nbees\td2\t1\noctopus\tno-such-doc\t1\n")
    result = _eval(loaded, "--json", qrels=str(wrong))
    assert result.exit_code == 0, result.output
    hybrid = json.loads(result.stdout)["modes"]["hybrid"]
    assert hybrid["queries"] == 2
    assert hybrid["recall@100"] == 0.5  # d2 is in the corpus, no-such-doc is not
    assert 0.0 < hybrid["ndcg@10"] < 0.5  # d2 found for the bee question, but not first
    assert hybrid["mrr@10"] < 0.5


def test_eval_table(loaded: dict[str, str]) -> None:
    result = _eval(loaded, "--mode", "sparse")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["mode", "ndcg@10", "recall@10", "recall@100", "mrr@10", "hit@5", "docs", "queries",
                                "seconds"]
    assert lines[1].split()[0] == "sparse" and lines[1].split()[-2] == "3"
    assert "1 queries without relevant judgements skipped" in lines[-1]


def test_eval_without_judged_queries_fails(loaded: dict[str, str]) -> None:
    none = Path(loaded["dir"], "none.tsv")
    none.write_text("query-id\tcorpus-id\tscore\nother\td1\t1\n")
    result = _eval(loaded, qrels=str(none))
    assert result.exit_code == 1
    assert "no query in the queries file has a relevant judgement" in result.output
