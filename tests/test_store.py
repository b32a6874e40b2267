"""One test per store operation, against a real Milvus Lite file."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from qa_app.embedding.encoder import DenseEncoder
from qa_app.errors import ModelMismatch, StoreUnavailable
from qa_app.models import ModelInfo, Passage
from qa_app.search.batcher import SearchBatcher
from qa_app.store import MilvusStore
from qa_app.store.compat import MAX_BYTES, truncate_utf8
from qa_app.store.rows import passage_row
from tests.conftest import Backend, run

MODEL = ModelInfo("test-model", 4, 256)


def passage(i: int, text: str, source: str = "/docs/a.md") -> Passage:
    return Passage(f"id{i:03d}", source, "", f"Title {i}", ("H1", "H2"), i, text)


def vectors(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    v = rng.random((n, 4), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def new_store(backend: Backend) -> MilvusStore:
    settings = backend.settings("t")
    return MilvusStore(settings.milvus_uri, settings.collection, timeout=10)


async def filled(backend: Backend, n: int = 3) -> MilvusStore:
    store = new_store(backend)
    await store.ensure(MODEL)
    texts = ["volcanoes erupt lava", "bread needs yeast", "trains run on rails"]
    await store.insert([passage(i, texts[i % 3]) for i in range(n)], vectors(n))
    return store


def test_ensure_creates_once_and_records_the_model(backend: Backend) -> None:
    async def go() -> tuple[bool, bool, dict[str, object]]:
        store = new_store(backend)
        try:
            return await store.ensure(MODEL), await store.ensure(MODEL), await store.fingerprint()
        finally:
            await store.close()
    first, second, meta = run(go())
    assert (first, second) == (True, False)
    assert (meta["model"], meta["dim"]) == ("test-model", 4)


def test_a_collection_of_another_model_is_refused(backend: Backend) -> None:
    async def go() -> None:
        store = new_store(backend)
        try:
            await store.ensure(MODEL)
            await store.ensure(ModelInfo("other-model", 4, 256))
        finally:
            await store.close()
    with pytest.raises(ModelMismatch, match="built with test-model \\(4-d\\), not other-model"):
        run(go())


@pytest.mark.unit
def test_the_fingerprint_records_the_precision_and_admits_another() -> None:
    from qa_app.store.schema import check_fingerprint, fingerprint_of

    int8 = ModelInfo("test-model", 4, 256, "int8")
    meta = fingerprint_of(int8)
    assert meta["precision"] == "int8" and (meta["model"], meta["dim"]) == ("test-model", 4)
    for precision in ("fp32", "bf16", "int8"):  # measured compatible: searched by questions of any path
        check_fingerprint("c", meta, ModelInfo("test-model", 4, 256, precision))
    check_fingerprint("c", {k: v for k, v in meta.items() if k != "precision"}, int8)  # made before it was recorded
    with pytest.raises(ModelMismatch, match="built with test-model \\(4-d\\), not other-model"):
        check_fingerprint("c", meta, ModelInfo("other-model", 4, 256, "int8"))


def test_insert_get_and_count(backend: Backend) -> None:
    async def go() -> tuple[int, list[str], str]:
        store = await filled(backend)
        try:
            hits = await store.get(["id001"])
            return await store.count(), [h.id for h in hits], hits[0].text
        finally:
            await store.close()
    assert run(go()) == (3, ["id001"], "bread needs yeast")


def test_delete_removes_rows(backend: Backend) -> None:
    async def go() -> tuple[int, int]:
        store = await filled(backend)
        try:
            removed = await store.delete(["id000", "id002"])
            return removed, await store.count()
        finally:
            await store.close()
    assert run(go()) == (2, 1)


def test_rows_pages_past_one_query_limit(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa_app.store.milvus.QUERY_PAGE", 4)
    async def go() -> list[str]:
        store = await filled(backend, n=10)
        try:
            return [row["id"] async for row in store.rows('source == "/docs/a.md"', ["source"])]
        finally:
            await store.close()
    assert run(go()) == [f"id{i:03d}" for i in range(10)]


def test_sources_counts_passages_per_source(backend: Backend) -> None:
    async def go() -> dict[str, int]:
        store = await filled(backend, n=2)
        try:
            await store.insert([passage(9, "x", source="/docs/b.md")], vectors(1))
            return await store.sources()
        finally:
            await store.close()
    assert run(go()) == {"/docs/a.md": 2, "/docs/b.md": 1}


def test_search_dense_sparse_and_hybrid_apply_the_filter(backend: Backend) -> None:
    async def go() -> tuple[list[str], list[str], list[str], list[str]]:
        store = await filled(backend, n=6)
        try:
            v = vectors(6)[1]
            dense = await store.search_dense(v, 2)
            sparse = await store.search_sparse("yeast", 3)
            hybrid = await store.search_hybrid(v, "yeast", 3, candidates=10, rrf_k=60, expr='text like "%bread%"')
            none = await store.search_hybrid(v, "yeast", 3, candidates=10, rrf_k=60, expr='title like "%nothing%"')
            return [h.id for h in dense], [h.id for h in sparse], [h.id for h in hybrid], [h.id for h in none]
        finally:
            await store.close()
    dense, sparse, hybrid, none = run(go())
    assert dense[0] == "id001"
    assert sorted(sparse) == ["id001", "id004"]  # BM25 finds only the passages with the word
    assert sorted(hybrid) == ["id001", "id004"]
    assert none == []


def test_hybrid_search_returns_each_hits_own_stored_vector_and_fields(backend: Backend) -> None:
    async def go() -> tuple[list[str], np.ndarray | None, list[str]]:
        store = await filled(backend, n=6)
        try:
            hits = await store.search_hybrid(vectors(6)[4], "yeast", 6, candidates=10, rrf_k=60, with_vectors=True)
            return hits.ids, hits.vectors, [hits[i].text for i in range(len(hits))]
        finally:
            await store.close()
    ids, returned, texts = run(go())
    stored = vectors(6)
    assert returned is not None and returned.shape == (len(ids), 4) and len(ids) == 6
    for row, pid in enumerate(ids):  # each row is the vector inserted with that passage, in the hits' order
        i = int(pid.removeprefix("id"))
        assert np.allclose(returned[row], stored[i], atol=1e-6), pid
        assert texts[row] == ["volcanoes erupt lava", "bread needs yeast", "trains run on rails"][i % 3]


def test_concurrent_searches_share_requests_and_each_gets_its_own_ranking(backend: Backend) -> None:
    texts = ["volcanoes", "yeast", "rails", "lava", "bread", "trains"] * 4
    vecs = vectors(6)

    async def go() -> tuple[list[list[str]], list[list[str]], list[list[str]], list[list[str]], int, int, str]:
        store = await filled(backend, n=6)
        batcher = SearchBatcher(store, concurrency=1)
        try:
            alone_sparse = [[h.id for h in await store.search_sparse(t, 3)] for t in texts]
            alone_dense = [[h.id for h in await store.search_dense(v, 3)] for v in vecs]
            together_sparse, together_dense = await asyncio.gather(
                asyncio.gather(*(batcher.search("sparse", t, 3) for t in texts)),
                asyncio.gather(*(batcher.search("dense", v, 3) for v in vecs)))
            with pytest.raises(StoreUnavailable) as failure:  # a failed request fails each of its queries
                await asyncio.gather(*(batcher.search("sparse", t, 3, expr="no_such_field == 1") for t in texts[:3]))
            return (alone_sparse, [[h.id for h in r] for r in together_sparse], alone_dense,
                    [[h.id for h in r] for r in together_dense], batcher.requests, batcher.queries, str(failure.value))
        finally:
            await store.close()

    alone_sparse, together_sparse, alone_dense, together_dense, requests, queries, failure = run(go())
    assert [sorted(r) for r in together_sparse] == [sorted(r) for r in alone_sparse]  # BM25 ties may swap
    assert together_dense == alone_dense
    assert sorted(alone_sparse[1][:2]) == ["id001", "id004"] and alone_dense[4][0] == "id004"  # the yeast rows
    # Per kind, the first query goes alone and the rest wait for it, in batches of at most 16:
    # sparse 1 + 16 + 7, dense 1 + 5, the failing filter 1 + 2.
    assert (queries, requests) == (len(texts) + len(vecs) + 3, 7)
    assert "no_such_field" in failure


def test_drop_removes_the_collection(backend: Backend) -> None:
    async def go() -> bool:
        store = await filled(backend)
        try:
            await store.drop()
            return await store.exists()
        finally:
            await store.close()
    assert run(go()) is False


def test_long_values_are_cut_by_utf8_bytes_without_splitting_characters() -> None:
    assert truncate_utf8("é" * 10, 5) == "éé"
    row = passage_row(Passage("x", "s" * 5000, "", "t", (), 0, "東" * 30000), vectors(1)[0])
    assert len(row["source"].encode()) <= MAX_BYTES["source"]
    assert len(row["text"].encode()) <= MAX_BYTES["text"] and row["text"] == "東" * (65535 // 3)


def test_store_reports_the_real_model_info(encoder: DenseEncoder) -> None:
    assert (encoder.info.name, encoder.info.dim, encoder.info.window) == ("all-MiniLM-L6-v2", 384, 256)
