"""Tiny stand-ins for unit tests of pure logic (the feature tests use the real model and Milvus):
an encoder that needs no torch and counts its calls, and a store that keeps rows in a dict."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np

from qa_app.models import ModelInfo, Passage
from qa_app.store import HitList

DIM = 8


class FakeEncoder:
    """Words are tokens; a text's vector comes from its hash (the same text, the same unit vector)."""

    def __init__(self) -> None:
        self.info = ModelInfo("fake-encoder", DIM, 256)
        self.batches: list[int] = []  # the size of each encode() call

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        return vector / np.linalg.norm(vector)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        self.batches.append(len(texts))
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


class MemoryStore:
    """The verbs the loader uses, over a dict; expressions are ignored (the loader re-checks sources)."""

    def __init__(self) -> None:
        self.collection = "memory"
        self.rows_by_id: dict[str, dict[str, Any]] = {}
        self.inserts = 0
        self.deletes = 0

    @property
    def is_embedded(self) -> bool:
        return True

    async def insert(self, passages: Sequence[Passage], vectors: np.ndarray) -> int:
        self.inserts += 1
        for passage in passages:
            self.rows_by_id[passage.id] = {"id": passage.id, "source": passage.source, "text": passage.text,
                                           "page": passage.page, "corpus": passage.corpus}
        return len(passages)

    async def delete(self, ids: Sequence[str]) -> int:
        self.deletes += 1
        for pid in ids:
            self.rows_by_id.pop(pid, None)
        return len(ids)

    async def rows(self, expr: str, fields: Sequence[str]) -> AsyncIterator[dict[str, Any]]:
        for row in list(self.rows_by_id.values()):
            yield {"id": row["id"], **{f: row[f] for f in fields}}

    async def search_many(self, field: str, queries: Sequence[Any], limit: int, expr: str = "",
                          partitions: Sequence[str] = (), *, ids_only: bool = False) -> list[HitList]:
        return [HitList.of([]) for _ in queries]
