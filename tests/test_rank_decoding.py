"""Both lists' ranks read off an RRF result: exact or silent, never wrong (pure logic: lists built by
hand or drawn by Hypothesis; the real-Milvus comparison is in test_rank_decoding_milvus.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from qa_app.search.rank_decoding import MAX_HITS, Ranks, decode_ranks, pairs_for

pytestmark = pytest.mark.unit


def fuse(dense: list[str], sparse: list[str], rrf_k: int, limit: int) -> tuple[list[str], list[float], list[Ranks]]:
    """What Milvus returns: the best `limit` of both lists by RRF (float32 scores), with the truth."""
    d = {pid: i for i, pid in enumerate(dense, 1)}
    s = {pid: i for i, pid in enumerate(sparse, 1)}
    scores = {pid: (1 / (rrf_k + d[pid]) if pid in d else 0.0) + (1 / (rrf_k + s[pid]) if pid in s else 0.0)
              for pid in {*dense, *sparse}}
    top = sorted(scores, key=lambda pid: (-scores[pid], pid))[:limit]
    return top, [float(np.float32(scores[p])) for p in top], [(d.get(p), s.get(p)) for p in top]


def test_a_fused_score_admits_a_pair_and_its_mirror() -> None:
    assert sorted(pairs_for(1 / 11 + 1 / 13, 10, 50), key=str) == [(1, 3), (3, 1)]
    assert (None, 1) in pairs_for(1 / 11, 10, 50) and (1, None) in pairs_for(1 / 11, 10, 50)


def test_the_cosines_tell_a_pair_from_its_mirror() -> None:
    # a is dense 1 / keyword 3, b dense 3 / keyword 1, c dense 2 / keyword 2: a's cosine is the highest
    dense, sparse = ["a", "c", "b", "x", "y"], ["b", "c", "a", "y", "x"]
    ids, scores, truth = fuse(dense, sparse, 10, limit=5)
    cosine = {"a": 0.9, "c": 0.8, "b": 0.7, "x": 0.6, "y": 0.5}
    assert decode_ranks(scores, [cosine[p] for p in ids], 10, 5, limit=5, needed=5) == truth


def test_it_declines_when_two_answers_fit() -> None:
    # one hit, alone in one list at rank 1: dense or keyword, nothing tells
    assert decode_ranks([1 / 11], [0.4], 10, 50, limit=10, needed=1) is None


@given(st.data())
def test_decoded_ranks_are_the_true_ones_or_none(data: st.DataObject) -> None:
    docs = [f"p{i}" for i in range(data.draw(st.integers(3, 40)))]
    depth = data.draw(st.integers(1, 20))
    rrf_k = data.draw(st.sampled_from([1, 10, 60]))
    limit = data.draw(st.integers(1, 15))
    needed = data.draw(st.integers(1, limit))
    # the dense list is exact: the passages closest to the question, in order of their cosines
    cosines = dict(zip(docs, sorted(data.draw(st.lists(st.floats(-1, 1), min_size=len(docs), max_size=len(docs),
                                                             unique=True)), reverse=True), strict=True))
    dense = docs[:depth]
    sparse = data.draw(st.permutations(docs))[:data.draw(st.integers(0, depth))]
    ids, scores, truth = fuse(dense, sparse, rrf_k, limit)
    decoded = decode_ranks(scores, [cosines[p] for p in ids], rrf_k, depth, limit, needed)
    event("declined" if decoded is None else "decoded")
    if decoded is None:
        return
    assert all(got is None or got == true for got, true in zip(decoded, truth, strict=True))
    best = sorted(scores, reverse=True)[min(needed, len(scores)) - 1]
    assert all(got is not None for got, score in zip(decoded, scores, strict=True) if score >= best)


def test_long_results_are_left_to_the_keyword_search() -> None:
    # decoding runs on the event loop: past MAX_HITS returned hits it declines at once
    dense = [f"p{i}" for i in range(MAX_HITS + 5)]
    ids, scores, truth = fuse(dense, list(reversed(dense)), 10, limit=MAX_HITS + 1)
    cosines = [1 - dense.index(p) / 100 for p in ids]
    assert decode_ranks(scores, cosines, 10, len(dense), MAX_HITS + 1, needed=5) is None
