"""Shared fixtures: the real embedding model, real Milvus (an embedded Lite file under tmp_path, or a
Milvus server for the backend matrix)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings as hypothesis_settings
from starlette.testclient import TestClient

from qa_app.embedding.encoder import DenseEncoder
from qa_app.service import QAService, open_llm
from qa_app.settings import Settings
from qa_app.store import open_store
from qa_app.web import create_app
from tests.milvus_server import milvus_server  # noqa: F401 (a fixture)

T = TypeVar("T")
# Property tests: a quick default for development; CI runs `HYPOTHESIS_PROFILE=thorough` (.ci/run).
hypothesis_settings.register_profile("default", max_examples=40)
hypothesis_settings.register_profile("thorough", max_examples=400)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
CORPUS = Path(__file__).parent / "corpus"
BACKENDS = ["embedded", "server"]


class Backend:
    """Where a test's collections live: a new .db file each, or a new collection on the server."""

    def __init__(self, name: str, folder: Path, server_uri: str | None = None) -> None:
        self.name, self.folder, self.server_uri = name, folder, server_uri

    def settings(self, label: str, **changes: Any) -> Settings:
        changes = {"data_dir": str(self.folder / "qa_data"), **changes}  # users, tokens, key: never the checkout's
        if self.server_uri is None:
            return Settings(milvus_uri=str(self.folder / f"{label}.db"), **changes)
        return Settings(milvus_uri=self.server_uri, collection=f"{label}_{uuid.uuid4().hex[:8]}", **changes)


def cli_target(settings: Settings) -> list[str]:
    return ["--milvus-uri", settings.milvus_uri, "--collection", settings.collection]


def open_backend(name: str, folder: Path, request: pytest.FixtureRequest) -> Backend:
    server = request.getfixturevalue("milvus_server") if name == "server" else None
    return Backend(name, folder, server)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules that set BACKEND_MATRIX = True get the `loaded` collection on every backend."""
    if getattr(metafunc.module, "BACKEND_MATRIX", False) and "loaded" in metafunc.fixturenames:
        metafunc.parametrize("loaded", BACKENDS, indirect=True, scope="module")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return open_backend(request.param, tmp_path, request)


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
    return Settings(milvus_uri=str(db), **{"data_dir": str(Path(db).parent / "qa_data"), **changes})


def make_pipeline(settings: Settings, encoder: DenseEncoder) -> QAService:
    """The service of the app, over `settings`, with the model already loaded."""
    return QAService(settings, encoder, open_store(settings), open_llm(settings))


async def load_into(settings: Settings, encoder: DenseEncoder, *paths: Path, reset: bool = False) -> Any:
    async with make_pipeline(settings, encoder) as service:
        return await service.load(list(paths), reset=reset)


@pytest.fixture(scope="module")
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, encoder: DenseEncoder) -> Settings:
    """Settings of a collection holding the fixture corpus, loaded once per test module: embedded,
    unless the module parametrizes `loaded` indirectly with BACKENDS."""
    folder = tmp_path_factory.mktemp("loaded")
    corpus = folder / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = open_backend(getattr(request, "param", "embedded"), folder, request).settings("qa")
    run(load_into(settings, encoder, corpus))
    return settings


@pytest.fixture(scope="module")
def client(loaded: Settings, encoder: DenseEncoder) -> Iterator[TestClient]:
    app = create_app(loaded, make_pipeline(loaded, encoder))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def app_with(loaded: Settings, encoder: DenseEncoder) -> Iterator[Any]:
    """Start the app over the loaded collection with some settings changed."""
    clients: list[TestClient] = []

    def start(**changes: Any) -> TestClient:
        settings = loaded.replace(**changes)
        client = TestClient(create_app(settings, make_pipeline(settings, encoder)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
