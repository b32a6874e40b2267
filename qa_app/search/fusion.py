"""Fusing a dense and a keyword ranking into one, and explaining each passage's place: pure functions
of the two lists."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from qa_app.models import Explanation, Passage
from qa_app.search.rank_decoding import SCORE_TOLERANCE, Ranks
from qa_app.store import HitList


def scaled(scores: list[float]) -> list[float]:
    """Scores mapped to 1 for the first hit and 0 for the last, whichever way the backend orders them
    (Milvus Lite 3.x reports BM25 as negative distances)."""
    if not scores:
        return []
    best, worst = scores[0], scores[-1]
    if best == worst:
        return [1.0] * len(scores)
    return [(s - worst) / (best - worst) for s in scores]


def weighted(dense: HitList, sparse: HitList, limit: int, dense_weight: float) -> list[Passage]:
    """Fuse by score: each list's scores scaled to 0..1 over its candidates (best 1, last 0), then
    dense_weight x dense + (1 - dense_weight) x keyword; a passage missing from a list gets 0 there.
    Only the best `limit` become passages (this runs on the event loop for every question)."""
    dense_parts = {pid: dense_weight * s for pid, s in zip(dense.ids, scaled(dense.scores), strict=True)}
    sparse_parts = {pid: (1 - dense_weight) * s for pid, s in zip(sparse.ids, scaled(sparse.scores), strict=True)}
    dense_ranks = _ranks(dense)
    sparse_ranks = _ranks(sparse)
    totals = {pid: dense_parts.get(pid, 0.0) + sparse_parts.get(pid, 0.0) for pid in [*sparse.ids, *dense.ids]}
    best = heapq.nsmallest(limit, totals, key=lambda pid: (-totals[pid], pid))
    passages = []
    for rank, pid in enumerate(best, 1):
        total = totals[pid]
        share = dense_parts.get(pid, 0.0) / total if total else None
        dense_rank, sparse_rank = dense_ranks.get(pid), sparse_ranks.get(pid)
        hit = dense[dense_rank - 1] if dense_rank else sparse[sparse_rank - 1]  # type: ignore[operator]
        why = Explanation(dense_rank, sparse_rank, _rounded(share, 3), _score_at(dense, dense_rank))
        passages.append(hit.ranked(rank, round(total, 6), why))
    return passages


def ranks_with_keyword_list(fused: HitList, sparse: HitList, rrf_k: int) -> list[Ranks]:
    """Each fused hit's (dense rank, keyword rank), given the (ids-only) keyword list: the dense rank
    is read off the fused score, 1 / (k + dense rank) + 1 / (k + keyword rank)."""
    sparse_ranks = _ranks(sparse)
    return [(_dense_rank(score, sparse_ranks.get(pid), rrf_k), sparse_ranks.get(pid))
            for pid, score in zip(fused.ids, fused.scores, strict=True)]


def explain_rrf(fused: HitList, ranks: Sequence[Ranks], question: np.ndarray, rrf_k: int,
                keep: int | None = None) -> list[Passage]:
    """Milvus's RRF ranking, each passage with its rank in both lists (`ranks`, in the hits' order:
    decoded from the fused scores, search.rank_decoding, or read with the keyword list,
    ranks_with_keyword_list) and the dense part of its score: the cosine to the question from the
    passage's vector, which the hybrid search returns.
    Equal fused scores are common (rank r in one list only against rank r in the other only) and
    Milvus leaves their order arbitrary: they come in the dense list's order here, which measured
    better than either arbitrary or keyword-first order on every dev set (docs/research/fusion).
    Only the first `keep` passages (all without it) are built: the hits past them only fix the order."""
    unranked = 1 << 30  # after every rank
    order = sorted(range(len(fused)), key=lambda i: (-round(fused.scores[i], 9), ranks[i][0] or unranked,
                                                      ranks[i][1] or unranked, fused.ids[i]))
    cosines = fused.vectors @ question if fused.vectors is not None and len(fused) else None
    passages = []
    for rank, i in enumerate(order[:keep], 1):
        hit, (d, s) = fused[i], ranks[i]
        d_part = 1 / (rrf_k + d) if d else 0.0
        s_part = 1 / (rrf_k + s) if s else 0.0
        share = d_part / (d_part + s_part) if d_part + s_part else None
        cosine = None if cosines is None or d is None else _rounded(float(cosines[i]))
        passages.append(hit.ranked(rank, round(hit.score, 6), Explanation(d, s, _rounded(share, 3), cosine)))
    return passages


def _dense_rank(fused_score: float, sparse_rank: int | None, rrf_k: int) -> int | None:
    """The dense rank that, with `sparse_rank`, gives `fused_score` under RRF (None: not in the dense
    list). Scores come as float32: a rank is accepted only where it explains the score closely."""
    dense_part = fused_score - (1 / (rrf_k + sparse_rank) if sparse_rank else 0.0)
    if dense_part <= SCORE_TOLERANCE:  # float32 rounding of a keyword-only score, not a dense term
        return None
    rank = round(1 / dense_part - rrf_k)
    return rank if rank >= 1 and abs(1 / (rrf_k + rank) - dense_part) < 1e-5 else None


def single(hits: Sequence[Passage], *, dense: bool) -> list[Passage]:
    """One retriever's ranking as the result."""
    if dense:
        return [h.ranked(i, round(h.score, 6), Explanation(dense_rank=i, dense_score=_rounded(h.score)))
                for i, h in enumerate(hits, 1)]
    return [h.ranked(i, round(h.score, 6), Explanation(sparse_rank=i)) for i, h in enumerate(hits, 1)]


def _ranks(hits: HitList) -> dict[str, int]:
    return {pid: i for i, pid in enumerate(hits.ids, 1)}


def _score_at(hits: HitList, rank: int | None) -> float | None:
    return None if rank is None else _rounded(hits.scores[rank - 1])


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)
