"""Shared fixtures: the real embedding model, real Milvus Lite files under tmp_path."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.testclient import TestClient

from qa_app.config import Settings
from qa_app.encoders import DenseEncoder
from qa_app.pipeline import Pipeline, open_llm
from qa_app.store import PassageStore
from qa_app.web import create_app

T = TypeVar("T")
CORPUS = Path(__file__).parent / "corpus"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def encoder() -> DenseEncoder:
    return DenseEncoder.load("all-MiniLM-L6-v2")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the fixture corpus that a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def make_settings(db: Path, **changes: Any) -> Settings:
    return Settings(milvus_uri=str(db), **changes)


def make_pipeline(settings: Settings, encoder: DenseEncoder) -> Pipeline:
    store = PassageStore(settings.milvus_uri, settings.collection, timeout=settings.timeout)
    return Pipeline(settings, encoder, store, open_llm(settings))


async def load_into(settings: Settings, encoder: DenseEncoder, *paths: Path, reset: bool = False) -> Any:
    pipeline = make_pipeline(settings, encoder)
    try:
        await pipeline.ensure_collection(reset=reset)
        return await pipeline.loader().load(list(paths))
    finally:
        await pipeline.close()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, encoder: DenseEncoder) -> Settings:
    """Settings of a collection holding the fixture corpus, loaded once per test module."""
    folder = tmp_path_factory.mktemp("loaded")
    corpus = folder / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = make_settings(folder / "qa.db")
    run(load_into(settings, encoder, corpus))
    return settings


@pytest.fixture(scope="module")
def client(loaded: Settings, encoder: DenseEncoder) -> Iterator[TestClient]:
    app = create_app(loaded, make_pipeline(loaded, encoder))
    with TestClient(app) as test_client:
        yield test_client
