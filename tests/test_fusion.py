"""Weighted fusion of the dense and keyword lists (pure logic: hits built by hand)."""

import pytest

from qa_app.retrieval import Retriever, _scaled
from qa_app.store import Hit


def hit(pid: str, score: float) -> Hit:
    return Hit(pid, score, "", "s", "", "", (), 0)


def test_scaling_maps_the_first_hit_to_one_and_the_last_to_zero_in_either_order() -> None:
    assert _scaled([hit("a", 0.9), hit("b", 0.6), hit("c", 0.3)]) == pytest.approx([1.0, 0.5, 0.0])
    assert _scaled([hit("a", -4.0), hit("b", -2.0), hit("c", 0.0)]) == pytest.approx([1.0, 0.5, 0.0])  # Lite 3.x
    assert _scaled([hit("a", 2.0), hit("b", 2.0)]) == [1.0, 1.0]
    assert _scaled([]) == []


def test_weighted_fusion_ranks_by_the_weighted_sum_and_explains_it() -> None:
    retriever = Retriever(None, None, candidates=10, rrf_k=60, fusion="weighted", dense_weight=0.6)  # type: ignore[arg-type]
    dense = [hit("a", 0.8), hit("b", 0.5), hit("c", 0.2)]
    sparse = [hit("c", 12.0), hit("d", 6.0), hit("b", 0.0)]
    fused = retriever._weighted(dense, sparse, 10)
    assert [(p.id, round(p.score, 3)) for p in fused] == [("a", 0.6), ("c", 0.4), ("b", 0.3), ("d", 0.2)]
    a, c, b, d = fused
    assert (a.dense_rank, a.sparse_rank, a.dense_share, a.dense_score) == (1, None, 1.0, 0.8)
    assert (c.dense_rank, c.sparse_rank, c.dense_share) == (3, 1, 0.0)
    assert (d.dense_rank, d.sparse_rank, d.dense_share, d.dense_score) == (None, 2, 0.0, None)
    assert [p.rank for p in fused] == [1, 2, 3, 4]


def test_weighted_fusion_keeps_only_the_best_limit_in_the_same_order() -> None:
    retriever = Retriever(None, None, candidates=10, rrf_k=60, fusion="weighted", dense_weight=0.6)  # type: ignore[arg-type]
    dense = [hit(f"d{i}", 1.0 - i / 20) for i in range(20)]
    sparse = [hit(f"d{i * 2}", 20.0 - i) for i in range(20)]
    everything = retriever._weighted(dense, sparse, 100)
    best = retriever._weighted(dense, sparse, 5)
    assert len(everything) == 30 and [p.rank for p in best] == [1, 2, 3, 4, 5]
    assert best == everything[:5]
