"""The loader's bookkeeping with a fake encoder and an in-memory store: what is embedded, written,
kept and removed on each run (the real model and Milvus are in test_load.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qa_app.ingest.chunking import Chunker
from qa_app.ingest.loader import Loader
from tests.fakes import FakeEncoder, MemoryStore

pytestmark = pytest.mark.unit


def loader_for(store: MemoryStore, encoder: FakeEncoder) -> Loader:
    chunker = Chunker(encoder.count_tokens, max_tokens=5, overlap=0, window=256)
    return Loader(store, encoder, chunker, encode_batch=4, insert_batch=3)  # type: ignore[arg-type]


def test_reloading_embeds_nothing_and_a_changed_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nalpha beta gamma\n\nsecond paragraph here\n")
    (tmp_path / "b.txt").write_text("just one line of text\n")
    store, encoder = MemoryStore(), FakeEncoder()
    first = asyncio.run(loader_for(store, encoder).load([tmp_path]))
    assert (first.files_added, first.passages_added, len(store.rows_by_id)) == (2, 3, 3)
    assert sum(encoder.batches) == 3 and store.inserts == 1  # one insert batch of 3

    again = asyncio.run(loader_for(store, encoder).load([tmp_path]))
    assert (again.files_unchanged, again.passages_added, again.passages_unchanged) == (2, 0, 3)
    assert sum(encoder.batches) == 3  # nothing embedded again

    (tmp_path / "b.txt").write_text("a different line now\n")
    changed = asyncio.run(loader_for(store, encoder).load([tmp_path]))
    assert (changed.files_updated, changed.passages_added, changed.passages_removed) == (1, 1, 1)
    assert sorted(r["text"] for r in store.rows_by_id.values()) == [
        "a different line now", "alpha beta gamma", "second paragraph here"]


def test_a_file_gone_from_a_loaded_folder_is_pruned_and_a_bad_file_keeps_its_passages(tmp_path: Path) -> None:
    (tmp_path / "keep.md").write_text("kept text\n")
    (tmp_path / "gone.md").write_text("soon gone\n")
    (tmp_path / "bad.txt").write_text("fine for now\n")
    store, encoder = MemoryStore(), FakeEncoder()
    asyncio.run(loader_for(store, encoder).load([tmp_path]))
    (tmp_path / "gone.md").unlink()
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01binary")
    report = asyncio.run(loader_for(store, encoder).load([tmp_path]))
    assert report.files_removed == 1 and report.skipped == [(str(tmp_path / "bad.txt"), "binary file (contains NUL bytes)")]
    assert sorted(r["text"] for r in store.rows_by_id.values()) == ["fine for now", "kept text"]
