"""Every error as a page, or as `{"ok": false, "error", "status", "field"?}` for the JSON endpoints."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from qa_app.errors import QAError
from qa_app.web.json_body import JSONBody
from qa_app.web.render import templates

SERVER_ERROR = "internal error: the server failed to answer; see its log"


def wants_json(request: Request) -> bool:
    """JSON for the API's paths, for API clients (a Bearer token), for a request that sent JSON, and for
    whoever asks for JSON only."""
    path = request.url.path
    if path.startswith(("/ask", "/healthz")) or path.endswith(".json"):
        return True
    accept = request.headers.get("accept", "")
    if path.startswith("/documents") and "text/html" not in accept:  # uploads: JSON but for the page's form
        return True
    sent_json = request.headers.get("content-type", "").startswith("application/json")
    return "authorization" in request.headers or sent_json or ("application/json" in accept and "text/html" not in accept)


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": message, "status": status}
    if field:
        body["field"] = field
    return body


def error_response(request: Request, status: int, message: str, field: str | None = None) -> Response:
    if wants_json(request):
        return JSONBody(error_body(status, message, field), status_code=status)
    return templates.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                      status_code=status)


async def on_qa_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QAError)
    return error_response(request, exc.status, exc.message, exc.field)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(request, exc.status_code, exc.detail)


async def on_server_error(request: Request, exc: Exception) -> Response:
    return error_response(request, 500, SERVER_ERROR)


EXCEPTION_HANDLERS = {QAError: on_qa_error, HTTPException: on_http_error, Exception: on_server_error}
