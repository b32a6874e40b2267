"""Fusion of the cached deep lists (lists.py), as Milvus and qa_app would do it, and the metrics.

* rrf: Milvus RRFRanker over two AnnSearchRequests with limits c_dense and c_sparse: a passage's score
  is sum 1/(k + rank) over the lists whose top-c it is in (rank from 1). `dense_copies` > 1 is the
  dense request sent that many times (an RRF weight Milvus can express).
* weighted: qa_app.search.fusion.weighted itself, on the two truncated lists.
* rrf_doc: RRF over document rankings (each list reduced to its documents, best passage first) - a
  what-if, not something Milvus's hybrid_search does.
Documents are ranked by their best passage, as qa_app.evaluation.rank_documents does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qa_app.evaluation import mean_metrics, query_metrics
from qa_app.models import Passage
from qa_app.search import fusion
from qa_app.store import HitList

Hit = tuple[str, float, str, int]  # passage id, score, document key, page

SERVED_DEPTH = 20  # passages asked for: the eval's depth at the served configuration (limit 20)
DEEP = 250  # Recall@100: candidates and passages for the deep run


def rrf(dense: Sequence[Hit], sparse: Sequence[Hit], k: float, c_dense: int, c_sparse: int, limit: int,
        dense_copies: int = 1, sparse_copies: int = 1) -> list[Hit]:
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    for hits_list, c, copies in ((dense, c_dense, dense_copies), (sparse, c_sparse, sparse_copies)):
        for rank, hit in enumerate(hits_list[:c], 1):
            scores[hit[0]] = scores.get(hit[0], 0.0) + copies / (k + rank)
            hits.setdefault(hit[0], hit)
    best = sorted(scores, key=lambda pid: -scores[pid])[:limit]
    return [hits[pid] for pid in best]


def _hitlist(hits: Sequence[Hit]) -> HitList:
    def build(i: int) -> Passage:
        pid, score, doc, page = hits[i]
        return Passage(pid, "", doc, "", (), 0, "", page=page, score=score)

    return HitList([h[0] for h in hits], [h[1] for h in hits], build)


def weighted(dense: Sequence[Hit], sparse: Sequence[Hit], w: float, c_dense: int, c_sparse: int,
             limit: int) -> list[Hit]:
    passages = fusion.weighted(_hitlist(dense[:c_dense]), _hitlist(sparse[:c_sparse]), limit, w)
    return [(p.id, p.score, p.doc_id, p.page) for p in passages]


def doc_ranking(hits: Sequence[Hit]) -> list[Hit]:
    seen: dict[str, Hit] = {}
    for hit in hits:
        seen.setdefault(hit[2], hit)
    return list(seen.values())


def rrf_doc(dense: Sequence[Hit], sparse: Sequence[Hit], k: float, c_dense: int, c_sparse: int,
            limit: int) -> list[Hit]:
    """RRF of the document rankings within each list's top-c passages."""
    d = [(h[2], h[1], h[2], h[3]) for h in doc_ranking(dense[:c_dense])]
    s = [(h[2], h[1], h[2], h[3]) for h in doc_ranking(sparse[:c_sparse])]
    return rrf(d, s, k, len(d), len(s), limit)


def rrf_agg(dense: Sequence[Hit], sparse: Sequence[Hit], k: float, c_dense: int, c_sparse: int, limit: int,
            share: float = 1.0) -> list[Hit]:
    """Passage-level RRF, then each document scored by its best passage plus `share` x the rest of
    its passages' fused scores (1: the sum), and shown by its best passage."""
    fused = rrf(dense, sparse, k, c_dense, c_sparse, c_dense + c_sparse)
    scores: dict[str, float] = {}
    rrf_score: dict[str, float] = {}
    for hits_list, c in ((dense, c_dense), (sparse, c_sparse)):
        for rank, hit in enumerate(hits_list[:c], 1):
            rrf_score[hit[0]] = rrf_score.get(hit[0], 0.0) + 1 / (k + rank)
    best: dict[str, Hit] = {}
    for hit in fused:
        doc = hit[2]
        if doc not in best:
            best[doc] = hit
            scores[doc] = rrf_score[hit[0]]
        else:
            scores[doc] += share * rrf_score[hit[0]]
    order = sorted(best, key=lambda d: -scores[d])[:limit]
    return [best[d] for d in order]


def docs_of(hits: Sequence[Hit], level: str = "doc") -> list[str]:
    keys = [h[2] if level == "doc" else h[2].split("#", 1)[0] for h in hits]
    return list(dict.fromkeys(keys))


def evaluate(run: dict[str, list[Hit]], qrels: dict[str, dict[str, int]], level: str = "doc") -> tuple[
        dict[str, float], dict[str, dict[str, float]]]:
    per_query = {qid: query_metrics(docs_of(hits, level), qrels[qid]) for qid, hits in run.items()}
    return mean_metrics(per_query.values()), per_query


def fuse_all(data: dict[str, Any], method: str, params: dict[str, Any], limit: int) -> dict[str, list[Hit]]:
    out = {}
    for qid, lists in data["lists"].items():
        dense, sparse = lists["dense"], lists["sparse"]
        if method == "rrf":
            out[qid] = rrf(dense, sparse, params["k"], params["cd"], params["cs"], limit,
                           params.get("wd", 1), params.get("ws", 1))
        elif method == "weighted":
            out[qid] = weighted(dense, sparse, params["w"], params["cd"], params["cs"], limit)
        elif method == "rrf_agg":
            out[qid] = rrf_agg(dense, sparse, params["k"], params["cd"], params["cs"], limit, params.get("share", 1.0))
        elif method == "rrf_doc":
            out[qid] = rrf_doc(dense, sparse, params["k"], params["cd"], params["cs"], limit)
        elif method == "dense":
            out[qid] = list(dense[:limit])
        elif method == "sparse":
            out[qid] = list(sparse[:limit])
        else:
            raise ValueError(method)
    return out


def measure(data: dict[str, Any], method: str, params: dict[str, Any], level: str = "doc") -> dict[str, Any]:
    """Served metrics (limit 20 passages, the configured candidates) and deep Recall@100 (250
    candidates a list, 250 passages), as the earlier round's grid read them."""
    qrels = data["qrels"]
    if level == "file":
        from common import file_level
        qrels = file_level(qrels)
    served, per_query = evaluate(fuse_all(data, method, params, SERVED_DEPTH), qrels, level)
    deep_params = dict(params)
    if "cd" in params:
        deep_params.update(cd=max(params["cd"], DEEP), cs=max(params["cs"], DEEP))
    deep, _ = evaluate(fuse_all(data, method, deep_params, DEEP), qrels, level)
    return {"ndcg@10": served["ndcg@10"], "hit@5": served["hit@5"], "mrr@10": served["mrr@10"],
            "recall@10": served["recall@10"], "recall@100": deep["recall@100"],
            "per_query_ndcg": {q: round(m["ndcg@10"], 5) for q, m in per_query.items()}}
