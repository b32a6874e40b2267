"""`/openapi.json` is true of the app: it lists exactly the JSON routes, and schemathesis fuzzes every
operation against `qa-app serve` over a real collection (no 5xx, every response as described)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route
from starlette.testclient import TestClient

from qa_app.auth import TokenFile
from qa_app.settings import Settings
from tests.app_server import serving

PAGES = {"home", "corpus", "source", "signin", "signout", "static", "openapi",  # HTML, or the description itself
         "documents_remove", "page", "page_image"}  # the corpus page's Remove form, the page view and its PNG


def test_the_description_lists_exactly_the_json_routes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    described = {(path, method.upper()) for path, operations in document["paths"].items() for method in operations}
    routes = {(route.path, method) for route in client.app.routes  # type: ignore[attr-defined]
              if isinstance(route, Route) and route.name not in PAGES
              for method in (route.methods or set()) - {"HEAD"}}
    assert described == routes
    assert document["openapi"] == "3.1.0" and "security" not in document  # authentication is off here


@pytest.fixture(scope="module")
def live(loaded: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`qa-app serve` with authentication on over the loaded collection, and an editor's API token."""
    data = tmp_path_factory.mktemp("fuzz-data")
    token = TokenFile(Path(data) / "tokens.json").add("fuzz", "editor")
    with serving(loaded.milvus_uri, env={"QA_DATA_DIR": str(data), "QA_COLLECTION": loaded.collection}) as url:
        yield url, token


@pytest.fixture(scope="module")
def api_schema(live: tuple[str, str]) -> Any:
    return schemathesis.openapi.from_url(live[0] + "/openapi.json")


CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def fuzz(schema: Any, headers: dict[str, str], examples: int, expect: Any = None) -> tuple[Counter[str], dict[str, str]]:
    """Every operation, with cases that fit the description and cases that do not; cases sent per
    operation, and the first failure of each that failed (after Hypothesis shrank it)."""
    cases: Counter[str] = Counter()
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

        @given(case=strategy)
        @hypothesis_settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                             database=None)
        def run(case: Any) -> None:
            cases[label] += 1
            response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
            if expect is not None:
                assert response.status_code == expect(case), (case.path, response.status_code, response.text[:300])

        try:
            run()
        except Exception as exc:
            failures[label] = f"{type(exc).__name__}: {exc}"[:2000]
    return cases, failures


def test_every_operation_holds_to_its_description(api_schema: Any, live: tuple[str, str]) -> None:
    # 40 an operation by default; CI's thorough profile (400) is capped at 150 to keep its run within
    # budget (400 an operation, 2,801 cases, took 7.5 minutes on 2 cores and found nothing more).
    examples = min(hypothesis_settings().max_examples, 150)
    cases, failures = fuzz(api_schema, {"Authorization": f"Bearer {live[1]}"}, examples)
    print(f"\nschemathesis, editor token: {len(cases)} operations, {sum(cases.values())} cases, "
          f"{len(failures)} failing: {dict(cases)}")
    assert len(cases) == len(list(api_schema.get_all_operations())) >= 6
    assert failures == {}


def test_without_credentials_every_operation_answers_as_described(api_schema: Any) -> None:
    cases, failures = fuzz(api_schema, {}, 10, expect=lambda case: 200 if case.path == "/healthz" else 401)
    print(f"\nschemathesis, no credentials: {len(cases)} operations, {sum(cases.values())} cases, "
          f"{len(failures)} failing")
    assert failures == {}
