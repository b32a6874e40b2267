"""Named corpora: their own partitions on a server, a scalar field filter on the embedded file."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from qa_app.cli import cli
from qa_app.embedding.encoder import DenseEncoder
from qa_app.store import MilvusStore
from qa_app.web import create_app
from tests.conftest import CORPUS, Backend, cli_target, make_pipeline, run


def partitions(uri: str, collection: str) -> set[str] | None:
    async def go() -> set[str] | None:
        store = MilvusStore(uri, collection)
        try:
            await store.exists()
            return set(await store.connection.call(lambda c: c.list_partitions(collection))) if not store.is_embedded else None
        finally:
            await store.close()
    return run(go())


def test_corpora_are_loaded_searched_listed_and_dropped(tmp_path: Path, backend: Backend,
                                                        encoder: DenseEncoder) -> None:
    settings = backend.settings("corpora")
    target = cli_target(settings)
    shutil.copytree(CORPUS, tmp_path / "a")
    runner = CliRunner()
    assert runner.invoke(cli, ["load", str(tmp_path / "a"), *target, "--quiet", "--corpus", "nature"]).exit_code == 0
    result = runner.invoke(cli, ["load", str(tmp_path / "a" / "bread.txt"), *target, "--quiet", "--corpus", "food"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(cli, ["corpora", *target])
    assert listed.output.splitlines() == ["food\t1", "nature\t11"]
    if backend.name == "server":
        assert {"food", "nature"} <= (partitions(settings.milvus_uri, settings.collection) or set())

    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as app:
        for mode in ("hybrid", "dense", "sparse"):
            body = app.post("/ask", json={"question": "sourdough bread", "mode": mode, "top_k": 10,
                                          "filter": {"corpus": "food"}}).json()
            assert [p["corpus"] for p in body["passages"]] == ["food"], (mode, body)
            both = app.post("/ask", json={"question": "sourdough bread", "mode": mode, "top_k": 20,
                                          "filter": {"corpus": ["food", "nature"]}}).json()
            assert {p["corpus"] for p in both["passages"]} == {"food", "nature"}
        bad = app.post("/ask", json={"question": "q", "filter": {"corpus": "no such!"}})
        assert bad.status_code == 400 and "corpus name" in bad.json()["error"]
        page = app.get("/", params={"q": "bread", "corpus": "food"})
        assert '<option value="food" selected>food (1)</option>' in page.text

    dropped = runner.invoke(cli, ["drop", "--corpus", "food", *target])
    assert dropped.exit_code == 0 and "1 passages removed" in dropped.output
    assert runner.invoke(cli, ["corpora", *target]).output.splitlines() == ["nature\t11"]
    if backend.name == "server":
        assert "food" not in (partitions(settings.milvus_uri, settings.collection) or set())
    missing = runner.invoke(cli, ["drop", "--corpus", "food", *target])
    assert missing.exit_code == 1 and "no corpus 'food'" in missing.output
