"""Where passages are kept: a small interface, and Milvus behind it.

Callers use the verbs of `PassageStore`; `MilvusStore` is the implementation (an embedded Milvus Lite
file or a server, by URI). Nothing here imports from the layers above (ingest, search, answer, web).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import numpy as np

from qa_app.models import ModelInfo, Passage
from qa_app.settings import Settings
from qa_app.store.milvus import MilvusStore
from qa_app.store.rows import HitList

__all__ = ["HitList", "MilvusStore", "PassageStore", "open_store"]


class PassageStore(Protocol):
    """What the loader, the retriever and the service need of a store."""

    collection: str

    @property
    def is_embedded(self) -> bool: ...

    async def exists(self) -> bool: ...

    async def ensure(self, model: ModelInfo, *, reset: bool = False) -> bool: ...

    async def check_model(self, model: ModelInfo) -> None: ...

    async def insert(self, passages: Sequence[Passage], vectors: np.ndarray) -> int: ...

    async def delete(self, ids: Sequence[str]) -> int: ...

    async def count(self, expr: str = "") -> int: ...

    def rows(self, expr: str, fields: Sequence[str]) -> AsyncIterator[dict[str, Any]]: ...

    async def passages_of(self, source: str, doc_id: str | None = None, limit: int = 500) -> list[Passage]: ...

    async def sources(self) -> dict[str, int]: ...

    async def corpora(self) -> dict[str, int]: ...

    async def search_many(self, field: str, queries: Sequence[Any], limit: int, expr: str = "",
                          partitions: Sequence[str] = (), *, ids_only: bool = False) -> list[HitList]: ...

    async def search_hybrid(self, vector: np.ndarray, text: str, limit: int, *, candidates: int,
                            rrf_k: int, expr: str = "", partitions: Sequence[str] = (),
                            with_vectors: bool = False) -> HitList: ...

    async def close(self) -> None: ...


def open_store(settings: Settings, collection: str | None = None) -> MilvusStore:
    """The store the settings name (or another collection at the same Milvus)."""
    return MilvusStore(settings.milvus_uri, collection or settings.collection, token=settings.milvus_token,
                       timeout=settings.timeout)
