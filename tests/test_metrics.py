"""The eval metrics against hand-computed cases, and against trec_eval (pytrec-eval-terrier) when installed."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from qa_app.errors import EvalInputError
from qa_app.evaluation import (
    _suffix_index,
    hit_at_k,
    judged_queries,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    qrels_by_file,
    query_metrics,
    rank_documents,
    read_qrels,
    read_queries,
    recall_at_k,
)
from qa_app.models import Passage

pytestmark = pytest.mark.unit

L3 = math.log2(3)


def test_ndcg_one_relevant_at_rank_two() -> None:
    assert ndcg_at_k(["a", "b", "c"], {"b": 1}, 10) == pytest.approx(1 / L3)  # 0.6309


def test_ndcg_perfect_and_empty() -> None:
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "b"], {"b": 1, "a": 1}, 10) == pytest.approx(1.0)  # order of the qrels is irrelevant
    assert ndcg_at_k(["x", "y"], {"a": 1}, 10) == 0.0
    assert ndcg_at_k([], {"a": 1}, 10) == 0.0
    assert ndcg_at_k(["a"], {}, 10) == 0.0  # nothing relevant: 0, never a division by zero
    assert ndcg_at_k(["a"], {"a": 0, "b": -1}, 10) == 0.0  # zero and negative grades are not relevant


def test_ndcg_graded_gain_is_the_grade() -> None:
    judged = {"a": 2, "b": 1, "c": 3}
    # DCG = 2/log2(3) + 1/log2(4); ideal = 3/log2(2) + 2/log2(3) + 1/log2(4)
    expected = (2 / L3 + 0.5) / (3 + 2 / L3 + 0.5)
    assert ndcg_at_k(["x", "a", "b"], judged, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.369994, abs=1e-6)


def test_ndcg_binary_counts_every_relevant_document_once() -> None:
    judged = {"a": 2, "b": 1, "c": 3}
    expected = (1 / L3 + 0.5) / (1 + 1 / L3 + 0.5)
    assert ndcg_at_k(["x", "a", "b"], judged, 10, binary=True) == pytest.approx(expected)
    assert expected == pytest.approx(0.530721, abs=1e-6)


def test_ndcg_ideal_is_cut_at_k_and_uses_unretrieved_documents() -> None:
    judged = {f"d{i}": 1 for i in range(12)}  # 12 relevant, only 10 fit in the ideal top 10
    ranked = [f"d{i}" for i in range(10)]
    assert ndcg_at_k(ranked, judged, 10) == pytest.approx(1.0)
    # one relevant found at rank 1, the other 11 never retrieved: 1 / ideal of ten ones
    ideal = sum(1 / math.log2(r + 1) for r in range(1, 11))
    assert ndcg_at_k(["d0", "x"], judged, 10) == pytest.approx(1 / ideal)


def test_cut_off_at_k() -> None:
    ranked = [f"x{i}" for i in range(10)] + ["a"]  # the relevant one at rank 11
    judged = {"a": 1}
    assert ndcg_at_k(ranked, judged, 10) == 0.0
    assert recall_at_k(ranked, judged, 10) == 0.0
    assert recall_at_k(ranked, judged, 100) == 1.0
    assert mrr_at_k(ranked, judged, 10) == 0.0
    assert mrr_at_k(ranked, judged, 11) == pytest.approx(1 / 11)


def test_recall_counts_relevant_found_over_relevant_judged() -> None:
    judged = {"a": 1, "b": 2, "c": 1, "n": 0}
    assert recall_at_k(["a", "x", "c", "n"], judged, 10) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "x", "c"], judged, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a"], {}, 10) == 0.0


def test_mrr_is_first_relevant_rank() -> None:
    judged = {"b": 1, "c": 1}
    assert mrr_at_k(["a", "b", "c"], judged, 10) == pytest.approx(0.5)
    assert mrr_at_k(["c", "b"], judged, 10) == 1.0
    assert mrr_at_k(["a", "n"], {"n": 0}, 10) == 0.0


def test_hit_at_5() -> None:
    assert hit_at_k(["1", "2", "3", "4", "a"], {"a": 1}, 5) == 1.0
    assert hit_at_k(["1", "2", "3", "4", "5", "a"], {"a": 1}, 5) == 0.0


def test_query_metrics_and_mean() -> None:
    one = query_metrics(["a", "b"], {"b": 1})
    assert one == pytest.approx({"ndcg@10": 1 / L3, "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 0.5,
                                 "hit@5": 1.0})
    two = query_metrics(["x"], {"b": 1})
    assert mean_metrics([one, two]) == pytest.approx({"ndcg@10": 1 / L3 / 2, "recall@10": 0.5, "recall@100": 0.5,
                                                      "mrr@10": 0.25, "hit@5": 0.5})
    assert mean_metrics([])["ndcg@10"] == 0.0


def _passage(rank: int, doc_id: str = "", source: str = "corpus.jsonl") -> Passage:
    return Passage(id=f"p{rank}", rank=rank, score=1 / rank, text="", source=source, doc_id=doc_id,
                         title="", headings=(), chunk=0)


def test_documents_rank_by_their_best_passage() -> None:
    passages = [_passage(1, "d2"), _passage(2, "d1"), _passage(3, "d2"), _passage(4, "d3"), _passage(5, "d1")]
    assert rank_documents(passages, {}) == ["d2", "d1", "d3"]


def test_documents_by_source_path_suffix() -> None:
    suffixes = _suffix_index(["library/functools.html", "tutorial/index.html", "index.html"])
    root = "/usr/share/doc/python3.11/html/"
    passages = [
        _passage(1, source=root + "library/functools.html"),
        _passage(2, source=root + "library/itertools.html"),  # not judged: named by its source
        _passage(3, source=root + "library/functools.html"),  # a second passage of the same page
        _passage(4, source=root + "tutorial/index.html"),  # the longest matching suffix wins
        _passage(5, source=root + "index.html"),
        _passage(6, source=root + "library/xfunctools.html"),  # a suffix must be whole path components
    ]
    assert rank_documents(passages, suffixes) == [
        "library/functools.html", root + "library/itertools.html", "tutorial/index.html", "index.html",
        root + "library/xfunctools.html"]


def test_doc_id_wins_over_source() -> None:
    suffixes = _suffix_index(["corpus.jsonl"])
    assert rank_documents([_passage(1, "d1", source="/data/corpus.jsonl")], suffixes) == ["d1"]


def test_a_pdf_passage_counts_for_its_judged_page_or_by_file_for_its_file() -> None:
    qrels = {"q1": {"R-intro.pdf#12": 2, "R-intro.pdf#99": 1, "manual.pdf#3": 1, "index.html": 1}}
    by_page = _suffix_index(qrels["q1"])
    on_12 = replace(_passage(2, source="/usr/share/R/doc/manual/R-intro.pdf"), page=11, page_end=12)
    on_40 = replace(_passage(1, source="/usr/share/R/doc/manual/R-intro.pdf"), page=40, page_end=40)
    assert rank_documents([on_40, on_12], by_page) == ["/usr/share/R/doc/manual/R-intro.pdf", "R-intro.pdf#12"]
    files = qrels_by_file(qrels)
    assert files == {"q1": {"R-intro.pdf": 2, "manual.pdf": 1, "index.html": 1}}  # a file at its best page's grade
    assert rank_documents([on_40, on_12], _suffix_index(files["q1"])) == ["R-intro.pdf"]


def test_read_queries_and_qrels(tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "1", "text": "first"}\n\n{"_id": 2, "text": "second", "metadata": {}}\n')
    assert read_queries(queries) == {"1": "first", "2": "second"}
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n2\td3\t0\n3\td4\t1\n")
    parsed = read_qrels(qrels)
    assert parsed == {"1": {"d1": 1, "d2": 2}, "2": {"d3": 0}, "3": {"d4": 1}}
    # query 2 has no relevant document (skipped, as trec_eval does), query 3 is not in the queries file
    assert judged_queries(read_queries(queries), parsed) == ({"1": "first"}, 1, 1)


def test_bad_input_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"_id": "1", "text": "ok"}\n{"text": "no id"}\n')
    with pytest.raises(EvalInputError, match="line 2"):
        read_queries(bad)
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\td1\tyes\n")
    with pytest.raises(EvalInputError, match="line 2"):
        read_qrels(qrels)


def test_matches_trec_eval() -> None:
    """Same numbers as trec_eval (through pytrec-eval-terrier) on random graded judgements and runs."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(300)]
    qrels: dict[str, dict[str, int]] = {}
    runs: dict[str, list[str]] = {}
    for q in range(60):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 25))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if not any(qrels[qid].values()):
            qrels[qid][judged[0]] = 1
        # rankings that mix judged and unjudged documents, some longer than 100
        pool = judged + rng.sample(docs, 40)
        rng.shuffle(pool)
        runs[qid] = list(dict.fromkeys(pool))[: rng.randint(5, 130)]
    # trec_eval ranks by score: distinct, decreasing scores keep our order (no tie-breaking by docid)
    as_run = {qid: {d: float(len(r) - i) for i, d in enumerate(r)} for qid, r in runs.items()}
    measures = {"ndcg_cut.10", "recall.10", "recall.100"}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(as_run)
    # trec_eval's recip_rank has no cut-off: give it only the top 10 for MRR@10
    top10 = {qid: dict(list(r.items())[:10]) for qid, r in as_run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    for qid, ranked in runs.items():
        ours = query_metrics(ranked, qrels[qid])
        assert ours["ndcg@10"] == pytest.approx(reference[qid]["ndcg_cut_10"], abs=1e-9), qid
        assert ours["recall@10"] == pytest.approx(reference[qid]["recall_10"], abs=1e-9), qid
        assert ours["recall@100"] == pytest.approx(reference[qid]["recall_100"], abs=1e-9), qid
        assert ours["mrr@10"] == pytest.approx(mrr[qid]["recip_rank"], abs=1e-9), qid
