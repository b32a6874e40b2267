"""`/ask`, `/healthz` and the page, served by the real app over a real collection."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings
from qa_app.web import create_app
from tests.conftest import make_pipeline

BACKEND_MATRIX = True  # the core API tests run against the embedded file and a Milvus server


def assert_error_shape(response: Any, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["status"] == status
    assert fragment in body["error"], body["error"]


def ask(client: TestClient, question: str, **extra: Any) -> list[dict[str, Any]]:
    response = client.post("/ask", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    passages: list[dict[str, Any]] = response.json()["passages"]
    return passages


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
@pytest.mark.parametrize("question,source_end,fragment", [
    ("which is the largest shield volcano?", "volcanoes.md", "Mauna Loa"),
    ("what speed record did the Mallard set?", "trains.html", "126 miles per hour"),
    ("how many hearts does an octopus have", "facts.jsonl", "three hearts"),
])
def test_a_known_question_finds_its_passage_in_the_top_3(client: TestClient, mode: str, question: str,
                                                         source_end: str, fragment: str) -> None:
    passages = ask(client, question, mode=mode, top_k=3)
    assert any(p["source"].endswith(source_end) and fragment in p["text"] for p in passages), passages


def test_hybrid_response_explains_each_rank(client: TestClient) -> None:
    response = client.get("/ask", params={"q": "largest shield volcano", "top_k": 2})
    body = response.json()
    assert body["ok"] is True and body["mode"] == "hybrid" and len(body["passages"]) == 2
    top = body["passages"][0]
    assert top["rank"] == 1 and top["dense_rank"] >= 1 and top["sparse_rank"] >= 1
    assert top["found_by"] == "dense + keyword" and 0 < top["dense_share"] < 1
    assert top["headings"] == ["Volcanoes", "Types of volcano"] and top["title"] == "Volcanoes"
    assert set(body["timings_ms"]) == {"embed", "search", "total"}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
@pytest.mark.parametrize("field,value,key", [
    ("contains", "Mauna Loa", "text"),
    ("source", "bread", "source"),
    ("title", "Octopus", "title"),
])
def test_each_filter_field_restricts_results(client: TestClient, mode: str, field: str, value: str, key: str) -> None:
    passages = ask(client, "shield volcano, sourdough bread or octopus hearts?", mode=mode, top_k=10, filter={field: value})
    assert passages and all(value in p[key] for p in passages)


SPECIAL = "Literal 100% match_case"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
@pytest.mark.parametrize("needle,expect_special", [
    pytest.param('"quoted"', True, id="double-quote"),
    pytest.param("back\\slash", True, id="backslash"),
    pytest.param("C:\\temp", True, id="windows-path"),
    pytest.param("100%", True, id="percent"),
    pytest.param("match_case", True, id="underscore"),
    pytest.param("it's", True, id="single-quote"),
    pytest.param("naïve café in 東京", True, id="non-ascii"),
    pytest.param("100%\nmatch_case", True, id="newline"),
    pytest.param(") or id > 0 or (", False, id="injection"),
    pytest.param('" or source like "%', False, id="quote-injection"),
    pytest.param("%", True, id="lone-percent"),
    pytest.param("_", True, id="lone-underscore"),
    pytest.param("\\", True, id="lone-backslash"),
])
def test_hostile_filter_values_match_literally_and_leave_milvus_up(client: TestClient, mode: str, needle: str,
                                                                   expect_special: bool) -> None:
    passages = ask(client, "special characters", mode=mode, top_k=10, filter={"contains": needle})
    parts = needle.split("\n")
    for p in passages:
        assert all(part in p["text"] for part in parts), (needle, p["text"])
    assert any(SPECIAL in p["text"] for p in passages) == expect_special
    assert client.get("/healthz").json()["milvus"] == "ok"


@pytest.mark.parametrize("body,status,fragment", [
    pytest.param(b"not json", 400, "must be a JSON object", id="not-json"),
    pytest.param(b"[1, 2]", 400, "must be a JSON object", id="array"),
    pytest.param(b'{"top_k": 3}', 400, "'question' is required", id="no-question"),
    pytest.param(b'{"question": 5}', 400, "'question' is required and must be a string", id="question-type"),
    pytest.param(b'{"question": "   "}', 400, "'question' is empty", id="empty-question"),
    pytest.param(b'{"question": "' + b"a" * 1001 + b'"}', 400, "longer than 1000", id="long-question"),
    pytest.param(b'{"question": "q", "top_k": 0}', 400, "'top_k' must be a whole number from 1 to 50", id="top-k-0"),
    pytest.param(b'{"question": "q", "top_k": 51}', 400, "from 1 to 50", id="top-k-51"),
    pytest.param(b'{"question": "q", "top_k": "x"}', 400, "'top_k'", id="top-k-str"),
    pytest.param(b'{"question": "q", "top_k": true}', 400, "'top_k'", id="top-k-bool"),
    pytest.param(b'{"question": "q", "mode": "fuzzy"}', 400, "'mode' must be one of hybrid, dense, sparse", id="mode"),
    pytest.param(b'{"question": "q", "colour": 1}', 400, "unknown field 'colour'", id="unknown-field"),
    pytest.param(b'{"question": "q", "filter": "x"}', 400, "'filter' must be an object", id="filter-type"),
    pytest.param(b'{"question": "q", "filter": {"author": "x"}}', 400, "unknown filter 'author'", id="filter-key"),
    pytest.param(b'{"question": "q", "filter": {"source": 3}}', 400, "filter 'source' must be a string", id="filter-value"),
    pytest.param(b'{"question": "q", "filter": {"title": "a\\u0000b"}}', 400, "control characters", id="control"),
    pytest.param(b'{"question": "' + b"a" * 70000 + b'"}', 413, "larger than 65536 bytes", id="too-large"),
])
def test_bad_input_gets_a_json_error_naming_the_problem(client: TestClient, body: bytes, status: int,
                                                        fragment: str) -> None:
    response = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert_error_shape(response, status, fragment)


def test_unknown_json_path_gets_the_json_error_shape(client: TestClient) -> None:
    assert_error_shape(client.get("/ask/nothing"), 404, "Not Found")


def test_healthz_reports_milvus_rows_and_model(client: TestClient) -> None:
    before, ranks_before = (client.get("/healthz").json()[k] for k in ("search_batches", "rrf_ranks"))
    assert client.get("/ask", params={"q": "sourdough starter", "mode": "hybrid"}).status_code == 200
    body = client.get("/healthz").json()
    assert body["ok"] is True and body["milvus"] == "ok" and body["passages"] == 11
    assert body["model"] == "all-MiniLM-L6-v2"
    precisions = {"torch-fp32": "fp32", "torch-bf16": "bf16", "openvino-int8": "int8", "onnx-int8": "int8"}
    assert body["embedding_path"] in precisions and body["embedding_path_reason"]
    assert body["precision"] == precisions[body["embedding_path"]]
    after, ranks = body["search_batches"], body["rrf_ranks"]
    # A hybrid question under RRF: one hybrid_search, its ranks read off the result or, where they
    # cannot be, from an ids-only keyword search (the batcher carries only the latter).
    decoded = ranks["decoded"] - ranks_before["decoded"]
    looked_up = ranks["keyword_searches"] - ranks_before["keyword_searches"]
    assert decoded + looked_up == 1
    assert after["queries"] - before["queries"] == looked_up
    assert after["milvus_requests"] - before["milvus_requests"] == looked_up


def test_page_renders_passages_without_javascript(client: TestClient) -> None:
    response = client.get("/", params={"q": "sourdough starter", "mode": "hybrid", "top_k": 2})
    assert response.status_code == 200 and response.template.name == "index.html"  # type: ignore[attr-defined]
    assert "wild yeast" in response.text and 'value="sourdough starter"' in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_page_shows_a_bad_parameter_next_to_the_form(client: TestClient) -> None:
    response = client.get("/", params={"q": "x", "top_k": "500"})
    assert response.status_code == 400 and "from 1 to 50" in response.text


def test_milvus_unreachable_gives_503_with_a_clear_message(encoder: DenseEncoder) -> None:
    settings = Settings(milvus_uri="http://127.0.0.1:1", timeout=2)
    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as down:
        assert_error_shape(down.post("/ask", json={"question": "q"}), 503, "Milvus is not answering")
        assert down.get("/healthz").status_code == 503
        page = down.get("/", params={"q": "q"})
        assert page.status_code == 503 and "The search backend is not available" in page.text


def test_empty_store_says_how_to_load(tmp_path: Any, encoder: DenseEncoder) -> None:
    settings = Settings(milvus_uri=str(tmp_path / "empty.db"))
    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as empty:
        response = empty.post("/ask", json={"question": "q"})
        assert_error_shape(response, 409, "qa-app load PATH")


def test_api_token_guards_the_json_endpoints(loaded: Settings, encoder: DenseEncoder) -> None:
    settings = loaded.replace(api_token="s3cret")
    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as guarded:
        assert_error_shape(guarded.post("/ask", json={"question": "volcano"}), 401, "Authorization: Bearer")
        assert_error_shape(guarded.get("/ask?q=volcano", headers={"Authorization": "Bearer wrong"}), 401, "Bearer")
        assert_error_shape(guarded.get("/corpus.json"), 401, "Bearer")
        assert_error_shape(guarded.get("/ask/stream?q=volcano"), 401, "Bearer")
        ok = guarded.post("/ask", json={"question": "volcano"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["passages"]
        # The page is guarded too (it sends a person to sign in), and a header a client can send
        # lets nobody in (the old Sec-Fetch-Site exception).
        page = guarded.get("/", params={"q": "volcano"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/signin?next=")
        assert "Mauna Loa" not in page.text
        forged = guarded.get("/ask/stream?q=volcano", headers={"Sec-Fetch-Site": "same-origin"})
        assert_error_shape(forged, 401, "Bearer")
        own = guarded.get("/ask/stream?q=volcano", headers={"Authorization": "Bearer s3cret"})
        assert own.status_code == 200 and "event: passages" in own.text


def test_rrf_fusion_through_milvus_hybrid_search_finds_and_filters(loaded: Settings, encoder: DenseEncoder) -> None:
    settings = loaded.replace(fusion="rrf", rrf_k=60)
    with TestClient(create_app(settings, make_pipeline(settings, encoder))) as rrf:
        top = ask(rrf, "which is the largest shield volcano?", top_k=3)
        assert "Mauna Loa" in top[0]["text"] and top[0]["score"] == pytest.approx(2 / 61, rel=1e-3)
        for field, value, key in [("contains", "Mauna Loa", "text"), ("source", "bread", "source"),
                                  ("contains", "100%\nmatch_case", "text")]:
            passages = ask(rrf, "shield volcano, sourdough bread or special characters?", top_k=10,
                           filter={field: value})
            assert passages and all(all(v in p[key] for v in value.split("\n")) for p in passages)
