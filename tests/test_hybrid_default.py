"""The default hybrid question runs Milvus's hybrid_search with RRFRanker, the filter on each request."""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus import AnnSearchRequest, AsyncMilvusClient, RRFRanker
from starlette.testclient import TestClient

from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings
from qa_app.web import create_app
from tests.conftest import make_pipeline


def test_the_default_hybrid_search_is_milvus_rrf_with_the_filter_on_each_request(
        loaded: Settings, encoder: DenseEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().fusion == "rrf"
    calls: list[tuple[list[AnnSearchRequest], Any]] = []
    real = AsyncMilvusClient.hybrid_search

    async def recording(self: AsyncMilvusClient, collection: str, reqs: list[AnnSearchRequest], ranker: Any,
                        **options: Any) -> Any:
        calls.append((reqs, ranker))
        return await real(self, collection, reqs, ranker, **options)

    monkeypatch.setattr(AsyncMilvusClient, "hybrid_search", recording)
    with TestClient(create_app(loaded, make_pipeline(loaded, encoder))) as client:
        body = client.post("/ask", json={"question": "which volcano is the largest?",
                                         "filter": {"contains": "Mauna"}}).json()
    assert body["ok"] and "Mauna Loa" in body["passages"][0]["text"]
    top = body["passages"][0]
    assert top["dense_rank"] == 1 and top["sparse_rank"] == 1  # each list's rank is still shown
    assert top["score"] == pytest.approx(2 / (Settings().rrf_k + 1), rel=1e-3)
    (requests, ranker), = calls
    assert isinstance(ranker, RRFRanker) and ranker.dict()["params"]["k"] == Settings().rrf_k
    assert [r.anns_field for r in requests] == ["dense", "sparse"]
    assert [r.expr for r in requests] == ['text like "%Mauna%"'] * 2
