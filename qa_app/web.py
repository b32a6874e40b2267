"""The web app: one view computes a result, then renders it as HTML or JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from qa_app.config import Settings
from qa_app.errors import BadRequest, PayloadTooLarge, QAError
from qa_app.pipeline import Pipeline, parse_query
from qa_app.retrieval import MODES

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))
MAX_BODY_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/ask", "/healthz"))


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": message, "status": status}
    if field:
        body["field"] = field
    return body


async def on_qa_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QAError)
    if wants_json(request):
        return JSONResponse(error_body(exc.status, exc.message, exc.field), status_code=exc.status)
    return templates.TemplateResponse(request, "error.html", {"status": exc.status, "message": exc.message},
                                      status_code=exc.status)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if wants_json(request):
        return JSONResponse(error_body(exc.status_code, exc.detail), status_code=exc.status_code)
    return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "message": exc.detail},
                                      status_code=exc.status_code)


async def on_server_error(request: Request, exc: Exception) -> Response:
    message = "internal error: the server failed to answer; see its log"
    if wants_json(request):
        return JSONResponse(error_body(500, message), status_code=500)
    return templates.TemplateResponse(request, "error.html", {"status": 500, "message": message}, status_code=500)


async def read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("request body must be a JSON object, e.g. {\"question\": \"...\"}") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object, e.g. {\"question\": \"...\"}")
    return data


def query_from_params(request: Request) -> dict[str, Any]:
    params = request.query_params
    data: dict[str, Any] = {"question": params.get("q", "")}
    for key in ("top_k", "mode"):
        if params.get(key):
            data[key] = params[key]
    data["filter"] = {k: params[k] for k in ("contains", "source", "title") if params.get(k)}
    return data


async def ask(request: Request) -> Response:
    pipeline: Pipeline = request.state.pipeline
    data = await read_json(request) if request.method == "POST" else query_from_params(request)
    query = parse_query(data, pipeline.settings)
    result = await pipeline.ask(query)
    return JSONResponse({"ok": True, **result.as_dict()})


async def home(request: Request) -> Response:
    pipeline: Pipeline = request.state.pipeline
    params = query_from_params(request)
    context: dict[str, Any] = {"params": request.query_params, "modes": MODES, "result": None, "error": None,
                               "default_top_k": pipeline.settings.top_k}
    if params["question"].strip():
        try:
            context["result"] = await pipeline.ask(parse_query(params, pipeline.settings))
        except BadRequest as exc:
            context["error"] = exc
            return templates.TemplateResponse(request, "index.html", context, status_code=400)
    return templates.TemplateResponse(request, "index.html", context)


async def healthz(request: Request) -> Response:
    health = await request.state.pipeline.health()
    return JSONResponse(health, status_code=200 if health["ok"] else 503)


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> Starlette:
    """The ASGI app; pass a pipeline to share one already open (tests), else it opens its own."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        own = pipeline is None
        opened = await Pipeline.open(settings) if own else pipeline
        assert opened is not None
        try:
            yield {"pipeline": opened}
        finally:
            if own:
                await opened.close()

    routes = [
        Route("/", home, name="home"),
        Route("/ask", ask, methods=["GET", "POST"], name="ask"),
        Route("/healthz", healthz, name="healthz"),
        Mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={QAError: on_qa_error, HTTPException: on_http_error, Exception: on_server_error},
    )
