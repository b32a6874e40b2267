"""Shared pieces of the fusion research: data sets, an embedding cache, collections, and runs of qa_app.

Everything goes through qa_app's public names (Settings, QAService, open_loader, MilvusStore,
evaluate_mode, Query). Embeddings are cached on disk by what was embedded (a content hash), so every
collection after the first costs only Milvus inserts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_app.embedding.encoder import DenseEncoder
from qa_app.evaluation import judged_queries, read_qrels, read_queries
from qa_app.ingest.loader import open_loader
from qa_app.models import Passage
from qa_app.service import QAService
from qa_app.settings import Settings
from qa_app.store import MilvusStore

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CACHE = Path(os.environ.get("FUSION_CACHE", "/tmp/fusion-cache"))
WORK = Path(os.environ.get("FUSION_WORK", "/tmp/fusion"))
RESULTS = HERE / "results.jsonl"
# Pinned: `auto` picks a path by a speed probe at start-up, which differs from run to run on a busy
# machine; every passage and question vector of this study is bf16 (this CPU has avx512_bf16).
PRECISION = "bf16"

SCIFACT = Path("/work/shared/eval/scifact")
PYDOCS_HTML = Path("/usr/share/doc/python3.11/html")


@dataclasses.dataclass(frozen=True)
class DataSet:
    name: str
    corpus: tuple[Path, ...]
    queries: Path
    qrels: Path
    pages: bool = False  # qrels ids are FILE#PAGE (PDF manuals): passages count for their first page


DATASETS = {
    "scifact": DataSet("scifact", (SCIFACT / "corpus.jsonl",), SCIFACT / "queries.jsonl", SCIFACT / "qrels/dev.tsv"),
    "pydocs": DataSet("pydocs", (PYDOCS_HTML,), REPO / "data/eval/python-docs/queries.jsonl",
                      REPO / "data/eval/python-docs/qrels.tsv"),
    "pdf": DataSet("pdf", (Path("/usr/share/R/doc/manual/R-intro.pdf"), Path("/usr/share/doc/why3-doc-pdf/manual.pdf")),
                   REPO / "data/eval/pdf-manuals/queries.jsonl", REPO / "data/eval/pdf-manuals/qrels.tsv", pages=True),
}


def load_eval(ds: DataSet) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The judged queries and their qrels."""
    queries = read_queries(ds.queries)
    qrels = read_qrels(ds.qrels)
    chosen, _, _ = judged_queries(queries, qrels)
    return chosen, qrels


def file_level(qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """FILE#PAGE judgements as FILE judgements (the best grade of the file's pages)."""
    merged: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        for doc, rel in judged.items():
            key = doc.split("#", 1)[0]
            merged.setdefault(qid, {})[key] = max(rel, merged.get(qid, {}).get(key, 0))
    return merged


# -- embedding cache ----------------------------------------------------------------------------------


class CachedEncoder:
    """A DenseEncoder whose `encode` (passages) and `encode_questions` look vectors up by the hash of
    the text embedded first; new vectors are appended to a shard file under CACHE."""

    def __init__(self, encoder: DenseEncoder) -> None:
        self._encoder = encoder
        self.info = encoder.info
        self.folder = CACHE / f"{encoder.info.name}-{encoder.info.precision}".replace("/", "_")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("*.npz")):
            with np.load(shard) as data:
                for key, vector in zip(data["keys"], data["vectors"], strict=True):
                    self.vectors[str(key)] = vector
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:  # count_tokens, close, ... of the real encoder
        return getattr(self._encoder, name)

    @staticmethod
    def key(kind: str, text: str) -> str:
        return kind + hashlib.sha256(text.encode()).hexdigest()

    def _lookup(self, kind: str, texts: list[str], compute: Any) -> np.ndarray:
        keys = [self.key(kind, t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}.items())
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = compute([t for _, t in missing])
            new_keys = np.array([k for k, _ in missing])
            np.savez(self.folder / f"{time.time():.0f}-{uuid.uuid4().hex[:8]}.npz", keys=new_keys, vectors=fresh)
            for (k, _), v in zip(missing, fresh, strict=True):
                self.vectors[k] = v
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, self.info.dim),
                                                                                                   np.float32)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self._lookup("p", texts, lambda todo: self._encoder.encode(todo, batch_size))

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        return self._lookup("q", texts, self._encoder.encode_questions)


_ENCODER: CachedEncoder | None = None


def encoder() -> CachedEncoder:
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = CachedEncoder(DenseEncoder.load(Settings().model, PRECISION))
    return _ENCODER


# -- collections ----------------------------------------------------------------------------------


class BM25TextStore(MilvusStore):
    """A store whose BM25 field (`search_text`) holds less context than the product's title + heading
    path + text: the dense vector is still the product's (embedded from the full text by the loader),
    only the passage fields that feed `search_text` are blanked before the insert."""

    def __init__(self, *args: Any, bm25: str = "full", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bm25 = bm25

    async def insert(self, passages: Sequence[Passage], vectors: np.ndarray) -> int:
        if self.bm25 == "text":
            passages = [dataclasses.replace(p, title="", headings=()) for p in passages]
        elif self.bm25 == "title":
            passages = [dataclasses.replace(p, headings=()) for p in passages]
        return await super().insert(passages, vectors)


def db_path(dataset: str, bm25: str = "full", index: str = "") -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    return str(WORK / f"{dataset}-{bm25}{'-' + index if index else ''}.db")


def settings_for(dataset: str, bm25: str = "full", index: str = "", **changes: Any) -> Settings:
    return Settings().replace(milvus_uri=db_path(dataset, bm25, index), collection="passages", precision=PRECISION,
                              **changes)


async def build(dataset: str, bm25: str = "full", *, show_progress: bool = True) -> dict[str, Any]:
    """Load a data set's corpus into its own .db file (a variant of the BM25 text); embeddings cached."""
    ds = DATASETS[dataset]
    settings = settings_for(dataset, bm25)
    enc = encoder()
    store = BM25TextStore(settings.milvus_uri, settings.collection, timeout=60.0, bm25=bm25)
    try:
        await store.ensure(enc.info)
        loader = open_loader(settings, store, enc, show_progress=show_progress)  # type: ignore[arg-type]
        report = await loader.load(list(ds.corpus))
        count = await store.count()
    finally:
        await store.close()
    return {"dataset": dataset, "bm25": bm25, "passages": count, "load": report.as_dict(),
            "cache_hits": enc.hits, "cache_misses": enc.misses}


def open_service(settings: Settings) -> QAService:
    """A QAService on `settings` with the cached encoder (questions are embedded once per text)."""
    store = MilvusStore(settings.milvus_uri, settings.collection, timeout=60.0)
    return QAService(settings, encoder(), store)  # type: ignore[arg-type]


# -- results -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1.0
    flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0] if Path("/proc/cpuinfo").exists() else ""
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "avx512_vnni") if f" {f}" in flags]
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"load1": round(load, 2), "cpu_flags": isa, "python": platform.python_version(), "commit": commit}


def record(row: dict[str, Any], path: Path = RESULTS) -> None:
    row = {**row, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **machine()}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, sort_keys=False) + "\n")
