"""ONNX Runtime (qint8) backend for the dense model: speed versus torch, and nDCG@10 on SciFact dev. Report only.

Method. bench/onnx_worker.py (own venv) exports all-MiniLM-L6-v2 to ONNX and quantizes it dynamically
(QInt8 MatMul weights, per channel) and embeds through onnxruntime directly (no sentence-transformers[onnx], which would
downgrade sentence-transformers and transformers). Speed: the same passages of the SciFact ingestion
slice, batch 32, torch (`SentenceTransformer.encode`, this process) then ONNX int8 then torch again;
ratio = ONNX passages/s over the median torch passages/s. Quality: dense retrieval on the SciFact dev
split (100 queries, binary qrels), documents embedded as title + " " + text truncated at 256 tokens
(as MTEB/BEIR, so comparable with STACK.md's 0.6451 on test), nDCG@10 by qa_app.evaluation, torch vs ONNX.
To fit the time budget the default run ranks the documents judged for the dev split plus the first
1,000 others (the quick run: 300); `--ndcg-full` ranks the whole 5,183-doc corpus. Corpus vectors are
cached under bench/results/cache/ keyed by model bytes and text hash.
Acceptance: |delta nDCG@10| <= 0.005.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CACHE, ONNX_PY, SCIFACT, Context, Row, median, on_worker

TOLERANCE = 0.005


def _worker(*args: str) -> dict[str, Any]:
    proc = subprocess.run([str(ONNX_PY), str(Path(__file__).with_name("onnx_worker.py")), *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def onnx_encode(model: Path, texts: list[str], work: Path, tag: str) -> tuple[np.ndarray, float]:
    src, dst = work / f"onnx-{tag}.json", work / f"onnx-{tag}.npy"
    src.write_text(json.dumps(texts))
    result = _worker("encode", "--model", str(model), "--texts", str(src), "--out", str(dst))
    return np.load(dst), result["seconds"]


def torch_encode(ctx: Context, texts: list[str]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    vectors = on_worker(ctx.encoder._model.encode, texts, batch_size=32, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32), time.perf_counter() - started


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()[:16]


def cached(key: str, compute: Any) -> tuple[np.ndarray, bool]:
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path), True
    CACHE.mkdir(parents=True, exist_ok=True)
    vectors = compute()
    np.save(path, vectors)
    return vectors, False


def ndcg(doc_vecs: np.ndarray, doc_ids: list[str], q_vecs: np.ndarray, qids: list[str],
         qrels: dict[str, dict[str, int]]) -> float:
    from qa_app.evaluation import ndcg_at_k

    scores = q_vecs @ doc_vecs.T
    values = []
    for i, qid in enumerate(qids):
        top = np.argsort(-scores[i], kind="stable")[:10]
        values.append(ndcg_at_k([doc_ids[j] for j in top], qrels[qid], 10, binary=True))
    return float(np.mean(values))


def run(ctx: Context) -> None:
    from qa_app.evaluation import read_qrels, read_queries

    from bench.ingestion import passages_for

    if not ONNX_PY.exists():
        ctx.rows.append(Row("ONNX int8 backend", "skipped", "", None, "(report)", None,
                            f"{ONNX_PY} missing: run bash bench/setup_peers.sh"))
        return
    model_dir = CACHE / "onnx-minilm"
    prep = _worker("prepare", str(model_dir))
    int8 = model_dir / "model.int8.onnx"
    work = ctx.work / "onnx"
    work.mkdir(parents=True, exist_ok=True)

    # speed on the ingestion slice's passages
    texts = [p.embed_text for p in passages_for(ctx, ctx.scifact_slice())][: ctx.sizes.onnx_speed_passages]
    torch_encode(ctx, texts[:32])
    t_vecs, t1 = torch_encode(ctx, texts)
    o_vecs, o = onnx_encode(int8, texts, work, "speed")
    _, t2 = torch_encode(ctx, texts)
    torch_rate, onnx_rate = len(texts) / median([t1, t2]), len(texts) / o
    cos = np.sum(t_vecs * o_vecs, axis=1)
    ctx.log(f"onnx: torch {torch_rate:.1f}/s, onnx int8 {onnx_rate:.1f}/s on {len(texts)} passages; "
            f"cosine to torch mean {cos.mean():.4f} min {cos.min():.4f}")

    # quality: dense nDCG@10 on the dev split
    qrels = read_qrels(SCIFACT / "qrels" / "dev.tsv")
    all_queries = read_queries(SCIFACT / "queries.jsonl")
    qids = sorted(q for q in all_queries if q in qrels)
    docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open()]
    if not ctx.sizes.ndcg_full_corpus:
        judged = {d for rel in qrels.values() for d in rel}
        docs = [d for d in docs if d["_id"] in judged] + [d for d in docs if d["_id"] not in judged][: ctx.sizes.ndcg_sample_docs]
    doc_texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
    doc_ids = [d["_id"] for d in docs]
    text_key = _digest(json.dumps(doc_texts).encode())
    torch_key = _digest(b"torch", ctx.encoder.name.encode(), text_key.encode())
    onnx_key = _digest(b"onnx-int8", int8.read_bytes(), text_key.encode())
    started = time.perf_counter()
    t_docs, t_cached = cached(f"torch-{torch_key}", lambda: torch_encode(ctx, doc_texts)[0])
    o_docs, o_cached = cached(f"onnx-{onnx_key}", lambda: onnx_encode(int8, doc_texts, work, "docs")[0])
    q_texts = [all_queries[q] for q in qids]
    tq, _ = torch_encode(ctx, q_texts)
    oq, _ = onnx_encode(int8, q_texts, work, "queries")
    nd_torch = ndcg(t_docs, doc_ids, tq, qids, qrels)
    nd_onnx = ndcg(o_docs, doc_ids, oq, qids, qrels)
    delta = nd_onnx - nd_torch
    corpus = f"{len(docs)} docs" + ("" if ctx.sizes.ndcg_full_corpus else " (judged + sample: not the full corpus)")
    ctx.log(f"onnx: dense nDCG@10 dev ({corpus}): torch {nd_torch:.4f}, onnx int8 {nd_onnx:.4f}, "
            f"delta {delta:+.4f} (vectors cached: torch {t_cached}, onnx {o_cached}; {time.perf_counter() - started:.0f} s)")
    ctx.details["onnx"] = {
        "prepare": prep, "speed_passages": len(texts), "torch_rate": torch_rate, "onnx_int8_rate": onnx_rate,
        "torch_seconds": [t1, t2], "onnx_seconds": o, "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
        "ndcg_corpus": corpus, "ndcg_torch": nd_torch, "ndcg_onnx_int8": nd_onnx, "ndcg_delta": delta,
        "vectors_cached": {"torch": t_cached, "onnx": o_cached}, "queries": len(qids),
    }
    ctx.rows.append(Row("ONNX int8 encode speed vs torch (report)", f"{onnx_rate:.1f} passages/s",
                        f"{torch_rate:.1f} passages/s", onnx_rate / torch_rate, "(report)", None,
                        f"cosine to torch mean {cos.mean():.4f}, min {cos.min():.4f}"))
    ctx.rows.append(Row(f"ONNX int8 dense nDCG@10, SciFact dev ({corpus})", f"{nd_onnx:.4f}", f"{nd_torch:.4f} (torch)",
                        None, "|delta| <= 0.005 (report)", abs(delta) <= TOLERANCE, f"delta {delta:+.4f}"))
