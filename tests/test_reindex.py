"""Zero-downtime re-index on a Milvus server: build beside, check, switch the alias; apps follow."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.app_server import QA_APP, READY_SECONDS, qa_app, serving, wait_for_output
from tests.conftest import CORPUS, Backend, cli_target, open_backend

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    return open_backend("server", tmp_path, request)


def loaded_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    for name in ("functools", "json"):
        shutil.copy(REPO / "data" / "python-docs" / "library" / f"{name}.rst", corpus)
    return corpus


def test_reindex_switches_while_the_app_serves_with_no_failed_request(tmp_path: Path, server: Backend) -> None:
    settings = server.settings("ri")
    target = cli_target(settings)
    corpus = loaded_corpus(tmp_path)
    assert qa_app("load", str(corpus), *target, "--quiet").returncode == 0
    with serving(settings.milvus_uri, "--collection", settings.collection) as url:
        before = httpx.get(url + "/healthz").json()["passages"]
        statuses: list[int] = []
        stop = threading.Event()

        def load_test() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    statuses.append(client.post("/ask", json={"question": "cache a function's results"}).status_code)

        threads = [threading.Thread(target=load_test) for _ in range(4)]
        for t in threads:
            t.start()
        # A new model name (the same weights under their hub id) and smaller passages: the app must
        # load the model and move over by itself.
        result = qa_app("reindex", *target, "--chunk-tokens", "96", "--quiet",
                        "--model", "sentence-transformers/all-MiniLM-L6-v2")
        assert result.returncode == 0, result.stderr
        assert f"switched '{settings.collection}' from {settings.collection}__1 to {settings.collection}__2" in result.stdout
        deadline = time.monotonic() + 60
        after = before
        while after == before and time.monotonic() < deadline:
            after = httpx.get(url + "/healthz").json()["passages"]
            time.sleep(0.5)
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        health = httpx.get(url + "/healthz").json()
    assert after > before  # 96-token passages are more numerous
    assert health["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(statuses) > 20 and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


def test_an_interrupted_reindex_leaves_the_live_collection_serving(tmp_path: Path, server: Backend) -> None:
    settings = server.settings("rk")
    target = cli_target(settings)
    corpus = loaded_corpus(tmp_path)
    assert qa_app("load", str(corpus), *target, "--quiet").returncode == 0
    process = subprocess.Popen([*QA_APP, "reindex", *target, "--chunk-tokens", "96"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_output(process, lambda progress: b"passage/s" in progress, READY_SECONDS)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    with serving(settings.milvus_uri, "--collection", settings.collection) as url:
        body = httpx.post(url + "/ask", json={"question": "largest shield volcano"}, timeout=30).json()
        assert "Mauna Loa" in body["passages"][0]["text"]
        health = httpx.get(url + "/healthz").json()
    finished = qa_app("reindex", *target, "--chunk-tokens", "96", "--quiet")
    assert finished.returncode == 0, finished.stderr
    assert f"to {settings.collection}__2" in finished.stdout
    assert health["passages"] < int(finished.stdout.split(": ")[1].split()[0])


def test_reindex_on_the_embedded_file_says_why_it_cannot(tmp_path: Path) -> None:
    db = str(tmp_path / "e.db")
    assert qa_app("load", str(CORPUS / "bread.txt"), "--milvus-uri", db, "--quiet").returncode == 0
    result = qa_app("reindex", "--milvus-uri", db)
    assert result.returncode == 1 and "has no alias to switch" in result.stderr
