"""Beyond one process: several workers over a Milvus server; the embedded file refuses them."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.app_server import qa_app, serving
from tests.conftest import CORPUS, Backend, cli_target, open_backend


def test_two_workers_answer_the_same_questions_identically(tmp_path: Path, request: object) -> None:
    backend: Backend = open_backend("server", tmp_path, request)  # type: ignore[arg-type]
    settings = backend.settings("workers")
    shutil.copytree(CORPUS, tmp_path / "corpus")
    loaded = qa_app("load", str(tmp_path / "corpus"), *cli_target(settings), "--quiet")
    assert loaded.returncode == 0, loaded.stderr
    with serving(settings.milvus_uri, "--collection", settings.collection, "--workers", "2") as url:
        pids = set()
        answers = set()
        for _ in range(30):
            with httpx.Client(base_url=url, timeout=30) as client:  # a new connection each time
                pids.add(client.get("/healthz").json()["pid"])
                body = client.post("/ask", json={"question": "which is the largest shield volcano?"}).json()
                answers.add(tuple(p["id"] for p in body["passages"]))
            if len(pids) > 1 and len(answers) == 1 and _ > 10:
                break
    assert len(pids) == 2, pids
    assert len(answers) == 1


def test_embedded_mode_refuses_several_workers(tmp_path: Path) -> None:
    result = qa_app("serve", "--workers", "2", "--milvus-uri", str(tmp_path / "x.db"))
    assert result.returncode == 1
    assert "--workers 2 needs a Milvus server" in result.stderr and "Traceback" not in result.stderr
