"""The web app: one view computes a result, then renders it as HTML or JSON."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa_app.config import Settings, load_settings
from qa_app.errors import BadRequest, PayloadTooLarge, QAError, Unauthorized
from qa_app.highlight import cite_links, highlight, query_terms
from qa_app.pipeline import NotFound, Pipeline, parse_answer_flag, parse_query
from qa_app.retrieval import MODES

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))
templates.env.filters["highlight"] = highlight
templates.env.filters["cite_links"] = cite_links
MAX_BODY_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/ask", "/healthz")) or request.url.path.endswith(".json")


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
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, or nesting deeper than Python parses
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
    data["filter"] = {k: params[k] for k in ("contains", "source", "title", "corpus") if params.get(k)}
    return data


def require_token(request: Request) -> None:
    """JSON endpoints need the API token when one is configured."""
    token = request.state.pipeline.settings.api_token
    if not token:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Unauthorized("this endpoint needs the header 'Authorization: Bearer <QA_API_TOKEN>'")


async def request_data(request: Request) -> dict[str, Any]:
    if request.method == "POST":
        return await read_json(request)
    data = query_from_params(request)
    if "answer" in request.query_params:
        data["answer"] = request.query_params["answer"]
    return data


async def ask(request: Request) -> Response:
    """Passages as JSON; with `"answer": true`, also an answer (generated, or extracted without an LLM)."""
    pipeline: Pipeline = request.state.pipeline
    require_token(request)
    data = await request_data(request)
    query = parse_query(data, pipeline.settings)
    want_answer = parse_answer_flag(data)
    result = await pipeline.ask(query)
    body: dict[str, Any] = {"ok": True, **result.as_dict()}
    if want_answer:
        body["answer"] = await pipeline.answerer.complete(query.question, result.passages)
    return JSONResponse(body)


def sse_event(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def ask_stream(request: Request) -> Response:
    """Server-sent events: `passages` once retrieval is done, `token`s while the model writes, then
    `citations` and `done` (`no_answer`, `error` and `extracted` where they apply).

    A client that goes away cancels this response, which closes the request to the LLM.
    """
    pipeline: Pipeline = request.state.pipeline
    if request.headers.get("sec-fetch-site") != "same-origin":  # the page's own stream stays open
        require_token(request)
    query = parse_query(await request_data(request), pipeline.settings)

    async def events() -> AsyncIterator[bytes]:
        try:
            result = await pipeline.ask(query)
        except QAError as exc:
            yield sse_event("error", error_body(exc.status, exc.message, exc.field))
            return
        yield sse_event("passages", result.as_dict())
        async for kind, value in pipeline.answerer.stream(query.question, result.passages):
            yield sse_event(kind, value)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def home(request: Request) -> Response:
    """The question page; with the `X-Partial` header (sent by app.js) the same page, for swapping in."""
    pipeline: Pipeline = request.state.pipeline
    params = query_from_params(request)
    corpus = await pipeline.corpus()
    context: dict[str, Any] = {
        "params": request.query_params, "modes": MODES, "result": None, "error": None, "corpus": corpus,
        "settings": pipeline.settings, "terms": [], "load_command": load_command(pipeline.settings),
        "answer": None, "answer_spans": {}, "stream_url": None,
        "llm_model": pipeline.settings.llm_model if pipeline.llm is not None else None,
    }
    status = 200
    if params["question"].strip() and corpus.exists:
        try:
            query = parse_query(params, pipeline.settings)
            result = await pipeline.ask(query)
        except BadRequest as exc:
            context["error"] = exc
            return templates.TemplateResponse(request, "index.html", context, status_code=400)
        context.update(result=result, terms=query_terms(query.question))
        if request.query_params.get("answer") == "1" and pipeline.llm is not None:
            answer = await pipeline.answerer.complete(query.question, result.passages)  # the page without JS
        else:
            answer = pipeline.answerer.extract(query.question, result.passages)
        context["answer"] = answer
        context["answer_spans"] = answer_spans(answer)
        if pipeline.llm is not None and answer["kind"] == "extracted":
            context["stream_url"] = str(request.url_for("ask_stream")) + "?" + request.url.query
    return templates.TemplateResponse(request, "index.html", context, status_code=status)


def answer_spans(answer: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    """Passage id -> the (start, end) of each sentence an extracted answer quotes from it."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for sentence in answer.get("sentences") or []:
        spans.setdefault(sentence["passage_id"], []).append((sentence["start"], sentence["end"]))
    return spans


async def source_view(request: Request) -> Response:
    """A loaded source's passages in order, the chosen one marked; `?raw=1` sends the file as plain text."""
    pipeline: Pipeline = request.state.pipeline
    source = "/" + request.path_params["path"]
    doc_id = request.query_params.get("doc")
    passages = await pipeline.source_passages(source, doc_id)
    if request.query_params.get("raw"):
        path = Path(source)
        if not path.is_file():
            raise NotFound(f"{source} was loaded but is no longer on disk")
        # Plain text, never HTML: a loaded page must not run in this origin.
        return FileResponse(path, media_type="text/plain; charset=utf-8",
                            headers={"Content-Security-Policy": "sandbox"})
    corpus = await pipeline.corpus()
    context = {"source": source, "doc_id": doc_id, "passages": passages, "corpus": corpus,
               "marked": request.query_params.get("passage"), "terms": query_terms(request.query_params.get("q", ""))}
    return templates.TemplateResponse(request, "source.html", context)


async def corpus_view(request: Request) -> Response:
    pipeline: Pipeline = request.state.pipeline
    corpus = await pipeline.corpus()
    if request.url.path.endswith(".json"):
        require_token(request)
        return JSONResponse({"ok": True, "collection": pipeline.settings.collection, "exists": corpus.exists,
                             "passages": corpus.passages, "corpora": corpus.corpora, "model": pipeline.encoder.info.name,
                             "dim": pipeline.encoder.info.dim, "sources": corpus.sources})
    context = {"corpus": corpus, "settings": pipeline.settings, "model": pipeline.encoder.info,
               "load_command": load_command(pipeline.settings)}
    return templates.TemplateResponse(request, "corpus.html", context)


def load_command(settings: Settings) -> str:
    command = "qa-app load PATH"
    if settings.milvus_uri != Settings().milvus_uri:
        command += f" --milvus-uri {settings.milvus_uri}"
    if settings.collection != Settings().collection:
        command += f" --collection {settings.collection}"
    return command


async def healthz(request: Request) -> Response:
    health = {**await request.state.pipeline.health(), "pid": os.getpid()}
    return JSONResponse(health, status_code=200 if health["ok"] else 503)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (plain ASGI: no extra task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def app_from_environment() -> Starlette:
    """The app configured by QA_* variables: the factory each `serve --workers N` process calls."""
    return create_app(load_settings(os.environ))


def create_app(settings: Settings, pipeline: Pipeline | None = None, watch: list[Path] | None = None) -> Starlette:
    """The ASGI app; pass a pipeline to share one already open (tests), else it opens its own. With
    `watch`, those files and folders are loaded at start and again whenever they change."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        own = pipeline is None
        opened = await Pipeline.open(settings) if own else pipeline
        assert opened is not None
        await opened.warm_up()
        watcher = asyncio.create_task(opened.watch(watch, settings.watch_interval)) if watch else None
        try:
            yield {"pipeline": opened}
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if own:
                await opened.close()

    routes = [
        Route("/", home, name="home"),
        Route("/ask", ask, methods=["GET", "POST"], name="ask"),
        Route("/ask/stream", ask_stream, methods=["GET", "POST"], name="ask_stream"),
        Route("/healthz", healthz, name="healthz"),
        Route("/corpus", corpus_view, name="corpus"),
        Route("/corpus.json", corpus_view, name="corpus_json"),
        Route("/source/{path:path}", source_view, name="source"),
        Mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={QAError: on_qa_error, HTTPException: on_http_error, Exception: on_server_error},
    )
