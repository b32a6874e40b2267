"""Weighted fusion of the dense and keyword lists, and the order of the searches (pure logic: hits
and stores built by hand)."""

import asyncio
import gc

import numpy as np
import pytest

from qa_app.models import Passage as Hit
from qa_app.search.fusion import explain_rrf, ranks_with_keyword_list, weighted
from qa_app.search.fusion import scaled as _scaled
from qa_app.search.query import Query
from qa_app.search.retriever import Retriever
from qa_app.store import HitList

pytestmark = pytest.mark.unit


def hit(pid: str, score: float) -> Hit:
    return Hit(pid, "s", "", "", (), 0, "", score=score)


def test_scaling_maps_the_first_hit_to_one_and_the_last_to_zero_in_either_order() -> None:
    assert _scaled([0.9, 0.6, 0.3]) == pytest.approx([1.0, 0.5, 0.0])
    assert _scaled([-4.0, -2.0, 0.0]) == pytest.approx([1.0, 0.5, 0.0])  # Lite 3.x
    assert _scaled([2.0, 2.0]) == [1.0, 1.0]
    assert _scaled([]) == []


def test_weighted_fusion_ranks_by_the_weighted_sum_and_explains_it() -> None:
    dense = HitList.of([hit("a", 0.8), hit("b", 0.5), hit("c", 0.2)])
    sparse = HitList.of([hit("c", 12.0), hit("d", 6.0), hit("b", 0.0)])
    fused = weighted(dense, sparse, 10, dense_weight=0.6)
    assert [(p.id, round(p.score, 3)) for p in fused] == [("a", 0.6), ("c", 0.4), ("b", 0.3), ("d", 0.2)]
    a, c, b, d = fused
    assert (a.dense_rank, a.sparse_rank, a.dense_share, a.dense_score) == (1, None, 1.0, 0.8)
    assert (c.dense_rank, c.sparse_rank, c.dense_share) == (3, 1, 0.0)
    assert (d.dense_rank, d.sparse_rank, d.dense_share, d.dense_score) == (None, 2, 0.0, None)
    assert [p.rank for p in fused] == [1, 2, 3, 4]


def test_weighted_fusion_keeps_only_the_best_limit_in_the_same_order() -> None:
    dense = HitList.of([hit(f"d{i}", 1.0 - i / 20) for i in range(20)])
    sparse = HitList.of([hit(f"d{i * 2}", 20.0 - i) for i in range(20)])
    everything = weighted(dense, sparse, 100, dense_weight=0.6)
    best = weighted(dense, sparse, 5, dense_weight=0.6)
    assert len(everything) == 30 and [p.rank for p in best] == [1, 2, 3, 4, 5]
    assert best == everything[:5]


def test_rrf_ranks_are_read_off_the_fused_score_and_ties_keep_the_dense_order() -> None:
    """1/(k + dense) + 1/(k + keyword) with the keyword rank known gives the dense rank; the cosine is
    the passage's vector against the question's. d (dense 2 only) and s (keyword 2 only) tie."""
    sparse = HitList.of([hit("a", 9.0), hit("s", 7.0)])
    ids, scores = ["a", "s", "d", "x"], [2 / 11, 1 / 12, 1 / 12, 1 / 20]
    vectors = np.array([[1, 0], [0, 1], [0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    fused = HitList(ids, scores, lambda i: hit(ids[i], scores[i]), vectors)
    explained = explain_rrf(fused, ranks_with_keyword_list(fused, sparse, 10), np.array([1, 0], dtype=np.float32),
                            rrf_k=10)
    assert [(p.id, p.rank, p.dense_rank, p.sparse_rank) for p in explained] == [
        ("a", 1, 1, 1), ("d", 2, 2, None), ("s", 3, None, 2), ("x", 4, 10, None)]
    assert [p.dense_score for p in explained] == [1.0, pytest.approx(0.8), None, pytest.approx(0.6)]
    assert [p.dense_share for p in explained] == [0.5, 1.0, 0.0, 1.0]


class OrderedStore:
    """Records the order of searches; the embedding waits until the keyword search has started."""

    is_embedded = False  # a server's approximate index: the keyword list explains RRF, searched meanwhile

    def __init__(self) -> None:
        self.events: list[str] = []
        self.keyword_started = asyncio.Event()
        self.keyword_error: Exception | None = None

    async def search_sparse(self, text: str, limit: int, expr: str = "", partitions: object = ()) -> HitList:
        self.events.append("keyword")
        self.keyword_started.set()
        if self.keyword_error:
            raise self.keyword_error
        return HitList.of([hit("k", 3.0), hit("d", 1.0)])

    async def search_dense(self, vector: object, limit: int, expr: str = "", partitions: object = ()) -> HitList:
        self.events.append("dense")
        return HitList.of([hit("d", 0.9), hit("e", 0.5)])

    async def search_many(self, field: str, queries: list[object], limit: int, expr: str = "",
                          partitions: object = (), **options: object) -> list[HitList]:
        search = self.search_dense if field == "dense" else self.search_sparse
        return [await search(q, limit) for q in queries]  # type: ignore[arg-type]

    async def search_hybrid(self, vector: object, text: str, limit: int, **options: object) -> HitList:
        """RRF (k = 60) of the two lists above: d is dense 1 and keyword 2, k keyword 1, e dense 2."""
        self.events.append("hybrid")
        ids, scores = ["d", "k", "e"], [1 / 61 + 1 / 62, 1 / 61, 1 / 62]
        vectors = np.full((3, 4), 0.5, dtype=np.float32)
        return HitList(ids, scores, lambda i: hit(ids[i], scores[i]), vectors if options.get("with_vectors") else None)


class WaitingEmbedder:
    def __init__(self, store: OrderedStore, error: Exception | None = None) -> None:
        self.store, self.error = store, error

    async def encode(self, text: str) -> np.ndarray:
        await asyncio.wait_for(self.store.keyword_started.wait(), 5)  # fails unless BM25 runs meanwhile
        self.store.events.append("embedded")
        if self.error:
            raise self.error
        return np.ones(4, dtype=np.float32)


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
def test_the_keyword_search_runs_while_the_question_is_embedded(fusion: str) -> None:
    store = OrderedStore()
    retriever = Retriever(store, WaitingEmbedder(store), candidates=10, rrf_k=60, fusion=fusion, dense_weight=0.6)  # type: ignore[arg-type]
    result = asyncio.run(retriever.search(Query("why?", top_k=3)))
    assert store.events[:2] == ["keyword", "embedded"] and store.events.count("keyword") == 1
    assert {p.id for p in result.passages} == {"k", "d", "e"}
    assert next(p for p in result.passages if p.id == "d").found_by == "dense + keyword"


def test_a_failed_embedding_is_the_error_reported_and_leaves_no_keyword_task_behind() -> None:
    store = OrderedStore()
    store.keyword_error = RuntimeError("keyword failed too")
    embedder = WaitingEmbedder(store, ValueError("model failed"))
    retriever = Retriever(store, embedder, candidates=10, rrf_k=60, fusion="weighted", dense_weight=0.6)  # type: ignore[arg-type]
    unretrieved: list[object] = []

    async def ask() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unretrieved.append(context))
        with pytest.raises(ValueError, match="model failed"):
            await retriever.search(Query("why?"))
        await asyncio.sleep(0)

    asyncio.run(ask())
    gc.collect()
    assert unretrieved == []


def test_keyword_mode_never_embeds() -> None:
    store = OrderedStore()
    retriever = Retriever(store, None, candidates=10, rrf_k=60, fusion="weighted", dense_weight=0.6)  # type: ignore[arg-type]
    result = asyncio.run(retriever.search(Query("why?", mode="sparse")))
    assert store.events == ["keyword"] and [p.id for p in result.passages] == ["k", "d"]


def test_a_hit_list_builds_each_hit_once_and_only_when_read() -> None:
    built: list[int] = []

    def build(i: int) -> Hit:
        built.append(i)
        return hit(f"p{i}", 1.0 - i / 10)

    hits = HitList([f"p{i}" for i in range(10)], [1.0 - i / 10 for i in range(10)], build)
    assert len(hits) == 10 and hits.ids[3] == "p3" and built == []
    assert hits[3].id == "p3" and hits[3] is hits[3] and hits[-1].id == "p9" and built == [3, 9]
    assert [h.id for h in hits[:2]] == ["p0", "p1"] and [h.id for h in hits][-1] == "p9"
    with pytest.raises(IndexError):
        hits[10]


def test_a_ranked_passage_is_a_copy_with_rank_score_and_explanation_set() -> None:
    from qa_app.models import Explanation

    original = Hit("p1", "doc.md", "d", "Title", ("A", "B"), 3, "text", page=2, score=0.5)
    why = Explanation(dense_rank=1, sparse_rank=4, dense_share=0.6, dense_score=0.8)
    ranked = original.ranked(2, 0.25, why)
    assert (ranked.rank, ranked.score, ranked.why) == (2, 0.25, why)
    assert (original.rank, original.score, original.why) == (0, 0.5, Explanation())  # the original is untouched
    assert ranked == Hit("p1", "doc.md", "d", "Title", ("A", "B"), 3, "text", page=2, rank=2, score=0.25, why=why)
    assert hash(ranked) == hash(Hit("p1", "doc.md", "d", "Title", ("A", "B"), 3, "text", page=2, rank=2, score=0.25,
                                    why=why))
    again = ranked.ranked(1)  # score and explanation kept unless given
    assert (again.rank, again.score, again.why) == (1, 0.25, why)
