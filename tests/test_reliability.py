"""Bad input, hostile filters, a Milvus process that dies, and loads that are killed: nothing breaks,
nothing is lost."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings
from qa_app.web import create_app
from tests.app_server import QA_APP, READY_SECONDS, qa_app, wait_for_output
from tests.conftest import load_into, make_pipeline, run

REPO = Path(__file__).resolve().parent.parent
# Examples per property come from the Hypothesis profile (tests/conftest.py): few by default, 400 in CI.
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
ask_bodies = st.fixed_dictionaries(
    {},
    optional={"question": json_values | st.text(max_size=1200), "top_k": json_values | st.integers(-5, 80),
              "mode": json_values | st.sampled_from(["hybrid", "dense", "sparse", "keyword", "HYBRID"]),
              "filter": json_values | st.dictionaries(st.sampled_from(["contains", "source", "title", "x"]),
                                                      json_values | st.text(max_size=40), max_size=3),
              "answer": json_values},
) | st.dictionaries(st.text(max_size=12), json_values, max_size=5)


def assert_clean(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json() if response.headers["content-type"].startswith("application/json") else None
        if body is not None:
            assert body["ok"] is False and body["status"] == response.status_code and body["error"]


@FUZZ
@given(body=ask_bodies)
def test_fuzzed_json_bodies_get_2xx_or_a_json_4xx(client: TestClient, body: dict[str, Any]) -> None:
    assert_clean(client.post("/ask", json=body))


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                     "multipart/form-data", "", "application/json; charset=latin-1"]))
def test_fuzzed_raw_bodies_and_content_types(client: TestClient, raw: bytes, content_type: str) -> None:
    for path in ("/ask", "/ask/stream"):
        assert_clean(client.post(path, content=raw, headers={"content-type": content_type}))


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["q", "top_k", "mode", "contains", "source", "title", "answer", "zz"]),
                              st.text(max_size=60), max_size=5))
def test_fuzzed_query_strings_on_the_page_and_the_api(client: TestClient, params: dict[str, str]) -> None:
    for path in ("/", "/ask", "/ask/stream"):
        assert_clean(client.get(path, params=params))


@pytest.mark.parametrize("body", [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
    pytest.param(b'{"question": "' + b"\xff\xfe" * 10 + b'"}', id="invalid-utf8"),
    pytest.param(b'{"question": "x", "question": 5}', id="duplicate-keys"),
    pytest.param(b"\x00" * 70_000, id="oversized"),
])
def test_pathological_bodies(client: TestClient, body: bytes) -> None:
    response = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 413) and response.json()["ok"] is False
    assert client.get("/healthz").json()["milvus"] == "ok"


HOSTILE = [
    '"', "\\", "\\\\", '\\"', "%", "_", "%%", "'", "''", '") or id > 0 or ("', "' or '1'='1", "|| true", "&& false",
    " or ", "not ", "[1, 2]", "(", ")", "{\"a\": 1}", "text", "source", "id", "title like \"%\"", "id in [\"x\"]",
    "array_contains(x, 1)", "json_contains", "TRUE", "1 == 1", "\\u0022", "%_%", "\\%", "\\_", "$meta", "💥 东京 naïve",
    "tab\there", "line\nbreak", "a" * 500,
]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
@pytest.mark.parametrize("field,key", [("contains", "text"), ("source", "source"), ("title", "title")])
def test_hostile_filter_values_in_every_field_and_mode(client: TestClient, mode: str, field: str, key: str) -> None:
    for value in HOSTILE:
        response = client.post("/ask", json={"question": "special characters volcano", "mode": mode, "top_k": 10,
                                             "filter": {field: value}})
        assert response.status_code == 200, (value, response.text)
        parts = [p for p in value.replace("\t", "\n").split("\n") if p.strip()]
        for passage in response.json()["passages"]:
            assert all(part.strip() in passage[key] for part in parts), (field, value, passage[key])
    for value, message in [("a\x00b", "control characters"), ("x" * 10_000, "longer than 500")]:
        response = client.post("/ask", json={"question": "q", "mode": mode, "filter": {field: value}})
        assert response.status_code == 400 and message in response.json()["error"]
    assert client.get("/healthz").json()["milvus"] == "ok"


def milvus_processes(db: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any(part.endswith("milvus") for part in cmdline[:1]) and str(Path(db).resolve()) in cmdline:
            found.append(process)
    return found


def test_a_killed_milvus_lite_gives_503_then_recovers_without_a_restart(tmp_path: Path, encoder: DenseEncoder) -> None:
    shutil.copytree(REPO / "tests" / "corpus", tmp_path / "corpus")
    assert qa_app("load", str(tmp_path / "corpus"), "--milvus-uri", str(tmp_path / "k.db"), "--quiet").returncode == 0
    settings = Settings(milvus_uri=str(tmp_path / "k.db"), timeout=3)
    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as app:
        assert app.post("/ask", json={"question": "volcano"}).status_code == 200
        victims = milvus_processes(settings.milvus_uri)
        assert len(victims) == 1
        victims[0].send_signal(signal.SIGKILL)
        victims[0].wait(10)
        down = app.post("/ask", json={"question": "volcano"})
        assert down.status_code == 503 and "Milvus is not answering" in down.json()["error"]
        statuses = []
        for _ in range(20):  # the next requests reopen the embedded server
            response = app.post("/ask", json={"question": "volcano"})
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
            time.sleep(0.5)
        assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
        assert app.get("/healthz").json()["passages"] == 11
        assert len(milvus_processes(settings.milvus_uri)) == 1


def stored(db: Path) -> set[tuple[str, str]]:
    """(id, content_hash) of every passage, read in a child process (one process per Lite file)."""
    script = ("import asyncio, json, sys\nfrom qa_app.store import MilvusStore\n"
              "async def main():\n    s = MilvusStore(sys.argv[1], 'passages')\n"
              "    rows = [(r['id'], r['content_hash']) async for r in s.rows('', ['content_hash'])]"
              " if await s.exists() else []\n"
              "    await s.close()\n    print(json.dumps(rows))\nasyncio.run(main())\n")
    out = subprocess.run([QA_APP[0], "-c", script, str(db)], capture_output=True, text=True, timeout=120, check=True)
    rows = [tuple(row) for row in json.loads(out.stdout)]
    assert len(rows) == len(set(rows)), "duplicate passages"
    return {(i, h) for i, h in rows}


@pytest.mark.slow
def test_loads_killed_at_random_points_finish_with_exactly_the_right_passages(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name in ("functools", "json", "pathlib", "re"):
        shutil.copy(REPO / "data" / "python-docs" / "library" / f"{name}.rst", corpus)
    reference = tmp_path / "reference.db"
    assert qa_app("load", str(corpus), "--milvus-uri", str(reference), "--quiet").returncode == 0
    expected = stored(reference)
    rng = random.Random(20261126)
    db = tmp_path / "killed.db"
    partial_counts = []
    for run_number in range(5):
        process = subprocess.Popen([*QA_APP, "load", str(corpus), "--milvus-uri", str(db)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env={**os.environ, "QA_INSERT_BATCH": "32"})
        # Kill at a random moment once writing has begun (the progress bar counts inserted passages:
        # wait until it shows some); the first run is killed earlier, while it reads and embeds.
        if run_number > 0:
            wait_for_output(process, lambda progress: bool(re.search(rb"embedding:\s+\d+%\|[^|]*\|\s*[1-9]\d*/",
                                                                     progress)), READY_SECONDS)
        time.sleep(rng.uniform(0, 2) if run_number else rng.uniform(3, 6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        partial_counts.append(len(stored(db)))
    finished = qa_app("load", str(corpus), "--milvus-uri", str(db), "--quiet")
    assert finished.returncode == 0, finished.stderr
    assert stored(db) == expected
    assert any(0 < n < len(expected) for n in partial_counts), (partial_counts, len(expected))


def test_a_load_while_the_app_serves_loses_no_request_and_no_passage(tmp_path: Path, encoder: DenseEncoder) -> None:
    corpus = tmp_path / "docs"
    shutil.copytree(REPO / "tests" / "corpus", corpus)
    settings = Settings(milvus_uri=str(tmp_path / "live.db"), insert_batch=4)
    run(load_into(settings, encoder, corpus))
    (corpus / "bread.txt").write_text("Rye bread\n\nRye bread is dense, dark and sour.\n")
    for name in ("functools", "json"):
        shutil.copy(REPO / "data" / "python-docs" / "library" / f"{name}.rst", corpus)
    statuses: list[int] = []
    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as app:
        done = threading.Event()

        def ask_until_done() -> None:
            while not done.is_set():
                statuses.append(app.post("/ask", json={"question": "volcano lava", "top_k": 3}).status_code)

        askers = [threading.Thread(target=ask_until_done) for _ in range(4)]
        for asker in askers:
            asker.start()
        report = run(load_into(settings, encoder, corpus))
        done.set()
        for asker in askers:
            asker.join()
    assert report.files_added == 2 and report.files_updated == 1
    assert len(statuses) > 10 and set(statuses) == {200}
    fresh = Settings(milvus_uri=str(tmp_path / "fresh.db"))
    run(load_into(fresh, encoder, corpus))
    assert stored_in_process(settings, encoder) == stored_in_process(fresh, encoder)


def stored_in_process(settings: Settings, encoder: DenseEncoder) -> set[tuple[str, str]]:
    async def go() -> set[tuple[str, str]]:
        pipeline = make_pipeline(settings, encoder)
        try:
            return {(r["id"], r["content_hash"]) async for r in pipeline.store.rows("", ["content_hash"])}
        finally:
            await pipeline.close()
    return run(go())


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_an_empty_collection_answers_with_no_passages(tmp_path: Path, encoder: DenseEncoder, mode: str) -> None:
    settings = Settings(milvus_uri=str(tmp_path / "empty.db"))

    async def create() -> None:
        pipeline = make_pipeline(settings, encoder)
        await pipeline.ensure_collection()
        await pipeline.close()

    run(create())  # exists, holds nothing: BM25 over zero rows fails inside Milvus Lite unless handled
    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as app:
        response = app.post("/ask", json={"question": "anything at all", "mode": mode})
        assert response.status_code == 200 and response.json()["passages"] == []
        assert app.get("/healthz").json()["milvus"] == "ok"
