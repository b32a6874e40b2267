"""Encoder precision: bf16 (what `QA_PRECISION=auto` picks on a CPU with bf16 matrix instructions) and
ONNX Runtime int8 versus torch fp32: encode speed, and dense nDCG@10 on SciFact dev.

Method. Speed: the passages of the SciFact ingestion slice, batch 32, embedded by the app's
DenseEncoder in fp32, then bf16 (torch autocast), then ONNX int8 (bench/onnx_worker.py in its own venv,
when bench/setup_peers.sh made it), then fp32 again; each ratio is over the median of the two fp32
runs. Quality: dense retrieval on the SciFact dev split (binary qrels), documents embedded as title +
" " + text truncated at 256 tokens, questions by the same backend as the documents, nDCG@10 by
qa_app.evaluation. To fit the time budget the default run ranks the documents judged for the dev split
plus the first 1,000 others (quick: 300); `--ndcg-full` ranks the whole 5,183-doc corpus. Document
vectors are cached under bench/results/cache/ keyed by backend, model and text hash.
Acceptance for adopting a backend (issue 7): |delta nDCG@10| <= 0.005 against fp32.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CACHE, ONNX_PY, SCIFACT, Context, Row, median, on_worker

TOLERANCE = 0.005
Encode = Callable[[list[str]], tuple[np.ndarray, float]]  # vectors, and the seconds the encoding took


def _onnx_worker(*args: str) -> dict[str, Any]:
    proc = subprocess.run([str(ONNX_PY), str(Path(__file__).with_name("onnx_worker.py")), *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def onnx_encoder(model: Path, work: Path) -> Encode:
    def encode(texts: list[str]) -> tuple[np.ndarray, float]:
        tag = hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:8]
        src, dst = work / f"onnx-{tag}.json", work / f"onnx-{tag}.npy"
        src.write_text(json.dumps(texts))
        result = _onnx_worker("encode", "--model", str(model), "--texts", str(src), "--out", str(dst))
        return np.load(dst), result["seconds"]  # the worker's encode loop only, not its start

    return encode


def torch_encoder(ctx: Context, precision: str) -> Encode:
    from qa_app.encoders import DenseEncoder

    encoder = DenseEncoder.load(ctx.encoder.name, precision)  # its own copy: bf16 changes the weights' dtype

    def encode(texts: list[str]) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        vectors = on_worker(encoder.encode, texts, 32)
        return vectors, time.perf_counter() - started

    return encode


def cached(key: str, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
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
    from bench.ingestion import passages_for
    from qa_app.evaluation import read_qrels, read_queries

    backends: dict[str, Encode] = {"fp32": torch_encoder(ctx, "fp32"), "bf16": torch_encoder(ctx, "bf16")}
    model_keys = {"fp32": ctx.encoder.name, "bf16": ctx.encoder.name}
    skipped = ""
    if ONNX_PY.exists():
        model_dir = CACHE / "onnx-minilm"
        _onnx_worker("prepare", str(model_dir))
        int8 = model_dir / "model.int8.onnx"
        work = ctx.work / "onnx"
        work.mkdir(parents=True, exist_ok=True)
        backends["onnx-int8"] = onnx_encoder(int8, work)
        model_keys["onnx-int8"] = hashlib.sha256(int8.read_bytes()).hexdigest()[:16]
    else:
        skipped = f"ONNX int8 skipped: {ONNX_PY} missing (bash bench/setup_peers.sh)"
        ctx.log(skipped)

    # speed on the ingestion slice's passages; fp32 first and last, the others between
    texts = [p.embed_text for p in passages_for(ctx, ctx.scifact_slice())][: ctx.sizes.speed_passages]
    for encode in backends.values():
        encode(texts[:32])  # warm-up
    vectors: dict[str, np.ndarray] = {}
    seconds: dict[str, list[float]] = {name: [] for name in backends}
    for name in [*backends, "fp32"]:
        vecs, took = backends[name](texts)
        vectors.setdefault(name, vecs)
        seconds[name].append(took)
    rates = {name: len(texts) / median(s) for name, s in seconds.items()}
    cosines = {name: np.sum(vectors["fp32"] * v, axis=1) for name, v in vectors.items() if name != "fp32"}
    ctx.log("precision: " + ", ".join(f"{n} {r:.1f}/s" for n, r in rates.items()) + f" on {len(texts)} passages")

    # quality: dense nDCG@10 on the dev split, each backend embedding documents and questions
    qrels = read_qrels(SCIFACT / "qrels" / "dev.tsv")
    all_queries = read_queries(SCIFACT / "queries.jsonl")
    qids = sorted(q for q in all_queries if q in qrels)
    docs = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open()]
    if not ctx.sizes.ndcg_full_corpus:
        judged = {d for rel in qrels.values() for d in rel}
        docs = [d for d in docs if d["_id"] in judged] + [d for d in docs if d["_id"] not in judged][: ctx.sizes.ndcg_sample_docs]
    doc_texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
    doc_ids = [d["_id"] for d in docs]
    text_key = hashlib.sha256(json.dumps(doc_texts).encode()).hexdigest()[:16]
    q_texts = [all_queries[q] for q in qids]
    scores: dict[str, float] = {}
    from_cache: dict[str, bool] = {}
    for name, encode in backends.items():
        key = hashlib.sha256(f"{name}|{model_keys[name]}|{text_key}".encode()).hexdigest()[:16]
        doc_vecs, from_cache[name] = cached(f"{name}-{key}", lambda: encode(doc_texts)[0])
        scores[name] = ndcg(doc_vecs, doc_ids, encode(q_texts)[0], qids, qrels)
    corpus = f"{len(docs)} docs" + ("" if ctx.sizes.ndcg_full_corpus else " (judged + sample: not the full corpus)")
    ctx.log("precision: dense nDCG@10 " + ", ".join(f"{n} {s:.4f}" for n, s in scores.items()) + f" ({corpus})")
    ctx.details["precision"] = {
        "speed_passages": len(texts), "rates": rates, "seconds": seconds,
        "cosine_to_fp32": {n: {"mean": float(c.mean()), "min": float(c.min())} for n, c in cosines.items()},
        "ndcg_corpus": corpus, "ndcg": scores, "queries": len(qids), "vectors_cached": from_cache, "skipped": skipped,
    }
    for name in backends:
        if name == "fp32":
            continue
        delta = scores[name] - scores["fp32"]
        cos = cosines[name]
        ctx.rows.append(Row(f"encode speed, {name} vs fp32 (batch 32, {len(texts)} passages)",
                            f"{rates[name]:.1f} passages/s", f"{rates['fp32']:.1f} passages/s",
                            rates[name] / rates["fp32"], "(report)", None,
                            f"cosine to fp32 mean {cos.mean():.5f}, min {cos.min():.5f}"))
        ctx.rows.append(Row(f"dense nDCG@10, {name} vs fp32, SciFact dev ({corpus})", f"{scores[name]:.4f}",
                            f"{scores['fp32']:.4f} (fp32)", None, f"|delta| <= {TOLERANCE}", abs(delta) <= TOLERANCE,
                            f"delta {delta:+.4f}"))
    if skipped:
        ctx.rows.append(Row("ONNX int8 backend", "skipped", "", None, "(report)", None, skipped))
