"""Each passage's rank in the dense and in the keyword list, read off Milvus's RRF result alone.

A hybrid search returns fused scores f = 1/(k + dense rank) + 1/(k + keyword rank) (a term is absent
where the passage is not in that list) and, on request, each passage's vector, so its cosine to the
question. That is enough to recover both ranks without a second search in most cases:

- a fused score admits few (dense, keyword) pairs: a pair and its mirror, and rare coincidences;
- dense ranks follow the cosines: a passage closer to the question ranks higher in the dense list,
  and a passage in the dense list has every closer passage in it too (the dense search is exact);
- every rank whose term alone beats the last fused score belongs to a returned passage: a passage
  with that rank scores at least the term, so it would have been returned.

The decoder lists every assignment of pairs that meets these rules and answers only where all of them
agree on the passages shown (and on any tied with the last of them); otherwise the caller searches the
keyword list to learn the ranks (Retriever.search). Where the
dense index is approximate (a Milvus server's HNSW), the second rule does not hold: the caller does
not decode there.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from functools import lru_cache

Ranks = tuple[int | None, int | None]  # (dense rank, keyword rank); None: not in that list

SCORE_TOLERANCE = 2e-6   # Milvus returns fused scores as float32: ~1e-8 at these magnitudes
COSINE_TIE = 1e-6        # cosines this close may come in either order from the server
# It runs on the event loop: bounded to a millisecond or two, else the keyword search answers instead.
MAX_HITS = 32            # more returned hits are not decoded (top_k above ~25)
MAX_STEPS = 5_000        # assignments tried before giving up
MAX_SOLUTIONS = 256      # assignments compared; more gives up too


@lru_cache(maxsize=8)
def _pairs(rrf_k: int, depth: int) -> tuple[list[float], list[Ranks]]:
    """Every (dense, keyword) pair of ranks up to `depth` with its fused score, sorted by score."""
    entries: list[tuple[float, Ranks]] = []
    for d in range(depth + 1):
        for s in range(depth + 1):
            if d or s:
                score = (1 / (rrf_k + d) if d else 0.0) + (1 / (rrf_k + s) if s else 0.0)
                entries.append((score, (d or None, s or None)))
    entries.sort(key=lambda e: e[0])
    return [e[0] for e in entries], [e[1] for e in entries]


def pairs_for(score: float, rrf_k: int, depth: int) -> list[Ranks]:
    """The (dense, keyword) rank pairs whose fused score is `score`, within float32 rounding."""
    scores, ranks = _pairs(rrf_k, depth)
    lo = bisect.bisect_left(scores, score - SCORE_TOLERANCE)
    hi = bisect.bisect_right(scores, score + SCORE_TOLERANCE)
    return ranks[lo:hi]


def decode_ranks(scores: Sequence[float], cosines: Sequence[float], rrf_k: int, depth: int,
                 limit: int, needed: int) -> list[Ranks | None] | None:
    """Each hit's (dense rank, keyword rank), in the hits' order, where every assignment that meets
    the rules agrees on it (None elsewhere); None in all when that is not so for each of the best
    `needed` hits and the hits tied with them (or when no assignment meets the rules: then the lists
    were not what they assume).

    `scores` and `cosines` are of the hits a hybrid search returned with `limit`, each list searched
    to `depth`; fewer hits than `limit` means every passage of either list was returned."""
    n = len(scores)
    if n == 0:
        return []
    if n > MAX_HITS:
        return None
    options = [pairs_for(f, rrf_k, depth) for f in scores]
    if any(not o for o in options):
        return None
    complete = n < limit
    floor = min(scores)
    # ranks every returned set must hold: their term alone beats the last fused score
    required = [r for r in range(1, depth + 1) if 1 / (rrf_k + r) > floor + SCORE_TOLERANCE]
    order = sorted(range(n), key=lambda i: -cosines[i])
    # Dense ranks fall as cosines fall: a hit's dense rank must exceed every dense rank placed before
    # it in `order`, and none of those may be outside the dense list, except hits whose cosine ties
    # with it (either order). Those not tied form a prefix of `order` (cosines fall along it):
    # `untied[p]` is its length for position p, and `highest[q]` the highest dense rank among the
    # first q placed (OUTSIDE where one of them is not in the dense list), so each check is one lookup.
    untied = []
    first = 0  # moves only forward: cosines fall along `order`
    for p in range(n):
        while cosines[order[first]] - cosines[order[p]] > COSINE_TIE:
            first += 1
        untied.append(first)
    outside = depth + 1
    highest = [0] * (n + 1)
    solutions: list[list[Ranks]] = []
    chosen: list[Ranks | None] = [None] * n
    steps = 0

    def finish() -> bool:
        picked = [c for c in chosen if c is not None]
        dense = {c[0] for c in picked if c[0] is not None}
        sparse = {c[1] for c in picked if c[1] is not None}
        if any(r not in dense or r not in sparse for r in required):
            return False
        # everything returned (complete): both lists' ranks run 1..length without a gap
        return not complete or (not dense or max(dense) == len(dense)) and (not sparse or max(sparse) == len(sparse))

    def place(position: int, used_dense: int, used_sparse: int) -> bool:
        """Try each pair for the hit at `position` of `order`; the used ranks are bit masks."""
        nonlocal steps
        steps += 1
        if steps > MAX_STEPS:
            return False
        if position == n:
            if finish():
                solutions.append([c for c in chosen if c is not None])
            return len(solutions) >= MAX_SOLUTIONS
        i = order[position]
        before = highest[untied[position]]
        for d, s in options[i]:
            if d is not None and (used_dense >> d & 1 or before >= d) or s is not None and used_sparse >> s & 1:
                continue
            chosen[i] = (d, s)
            highest[position + 1] = max(highest[position], outside if d is None else d)
            if place(position + 1, used_dense | (1 << d if d else 0), used_sparse | (1 << s if s else 0)):
                return True
            chosen[i] = None
        return False

    place(0, 0, 0)
    if steps > MAX_STEPS or not solutions or len(solutions) >= MAX_SOLUTIONS:
        return None
    agreed = [solutions[0][i] if all(s[i] == solutions[0][i] for s in solutions) else None for i in range(n)]
    by_score = sorted(scores, reverse=True)
    cut = by_score[min(needed, n) - 1] - SCORE_TOLERANCE  # the needed hits and any tied with the last
    if any(agreed[i] is None for i in range(n) if scores[i] >= cut):
        return None
    return agreed
