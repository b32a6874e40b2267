"""The views: each computes its result through the service, then renders it as HTML or JSON."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from qa_app.answer.answerer import Answer
from qa_app.errors import BadRequest, NotFound, QAError
from qa_app.search.query import MODES, parse_answer_flag, parse_query
from qa_app.service import QAService
from qa_app.settings import Settings
from qa_app.web.errors import error_body
from qa_app.web.highlight import query_terms
from qa_app.web.json_body import JSONBody
from qa_app.web.openapi import openapi_document
from qa_app.web.render import templates
from qa_app.web.requests import query_from_params, request_data

# A PDF is shown by the browser's own viewer, in a sandbox: a unique origin, so nothing in the file (PDF
# JavaScript, forms, links) can reach this site's cookies or pages, and no frame of another site can show
# it. The page CSP (`object-src 'none'`) would stop Chromium's viewer, which runs as a plugin; `sandbox`
# with `default-src 'none'` does not (tried in Chromium 156: the file opens at its `#page=N`).
PDF_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"



def service_of(request: Request) -> QAService:
    service: QAService = request.state.service
    return service


async def ask(request: Request) -> Response:
    """Passages as JSON; with `"answer": true`, also an answer (generated, or extracted without an LLM)."""
    service = service_of(request)
    data = await request_data(request)
    query = parse_query(data, service.settings)
    want_answer = parse_answer_flag(data)
    result = await service.ask(query)
    body: dict[str, Any] = {"ok": True, **result.as_dict()}
    if want_answer:
        body["answer"] = (await service.answer(result.query.searched, result.passages, result.query)).as_dict()
    return JSONBody(body)


def sse_event(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def ask_stream(request: Request) -> Response:
    """Server-sent events: `passages` once retrieval is done, `token`s while the model writes, then
    `citations` and `done` (`no_answer`, `error` and `extracted` where they apply).

    A client that goes away cancels this response, which closes the request to the LLM.
    """
    service = service_of(request)
    query = parse_query(await request_data(request), service.settings)

    async def events() -> AsyncIterator[bytes]:
        try:
            result = await service.ask(query)
        except QAError as exc:
            yield sse_event("error", error_body(exc.status, exc.message, exc.field))
            return
        yield sse_event("passages", result.as_dict())
        async for event in service.stream_answer(result.query.searched, result.passages, result.query):
            yield sse_event(event.kind, event.value)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def home(request: Request) -> Response:
    """The question page; with the `X-Partial` header (sent by app.js) the same page, for swapping in."""
    service = service_of(request)
    params = query_from_params(request)
    corpus = await service.corpus()
    context: dict[str, Any] = {
        "params": request.query_params, "modes": MODES, "result": None, "error": None, "corpus": corpus,
        "settings": service.settings, "terms": [], "load_command": load_command(service.settings),
        "answer": None, "answer_spans": {}, "stream_url": None,
        "llm_model": service.settings.llm_model if service.generates else None,
    }
    if params["question"].strip() and corpus.exists:
        try:
            query = parse_query(params, service.settings)
            result = await service.ask(query)
        except BadRequest as exc:
            context["error"] = exc
            return templates.TemplateResponse(request, "index.html", context, status_code=400)
        context.update(result=result, terms=query_terms(result.query.searched))
        searched = result.query
        if request.query_params.get("answer") == "1" and service.generates:
            answer = await service.answer(searched.searched, result.passages, searched)  # the page without JS
        else:
            answer = await service.extract(searched.searched, result.passages, searched)
        context["answer"] = answer
        context["answer_spans"] = answer_spans(answer)
        if service.generates and answer.kind == "extracted":
            context["stream_url"] = str(request.url_for("ask_stream")) + "?" + request.url.query
    return templates.TemplateResponse(request, "index.html", context)


def answer_spans(answer: Answer) -> dict[str, list[tuple[int, int]]]:
    """Passage id -> the (start, end) of each sentence an extracted answer quotes from it."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for sentence in answer.sentences or []:
        spans.setdefault(sentence["passage_id"], []).append((sentence["start"], sentence["end"]))
    return spans


async def source_view(request: Request) -> Response:
    """A loaded source's passages in order, the chosen one marked; `?raw=1` sends the file as plain text."""
    service = service_of(request)
    source = "/" + request.path_params["path"]
    doc_id = request.query_params.get("doc")
    passages = await service.source_passages(source, doc_id)
    if request.query_params.get("raw"):
        path = Path(source)
        if not path.is_file():
            raise NotFound(f"{source} was loaded but is no longer on disk")
        if path.suffix.lower() == ".pdf":  # the browser's PDF viewer, opened at `#page=N` by the page view
            return FileResponse(path, media_type="application/pdf", filename=path.name, content_disposition_type="inline",
                                headers={"Content-Security-Policy": PDF_POLICY})
        # Plain text, never HTML: a loaded page must not run in this origin.
        return FileResponse(path, media_type="text/plain; charset=utf-8",
                            headers={"Content-Security-Policy": "sandbox"})
    corpus = await service.corpus()
    context = {"source": source, "doc_id": doc_id, "passages": passages, "corpus": corpus,
               "marked": request.query_params.get("passage"), "terms": query_terms(request.query_params.get("q", ""))}
    return templates.TemplateResponse(request, "source.html", context)


async def corpus_view(request: Request) -> Response:
    """`/corpus.json`; the page `/corpus` (with uploads) is qa_app.web.documents.corpus_page."""
    service = service_of(request)
    corpus = await service.corpus()
    return JSONBody({"ok": True, "collection": service.settings.collection, "exists": corpus.exists,
                         "passages": corpus.passages, "corpora": corpus.corpora, "model": service.model.name,
                         "dim": service.model.dim, "sources": corpus.sources})


def load_command(settings: Settings) -> str:
    command = "qa-app load PATH"
    if settings.milvus_uri != Settings().milvus_uri:
        command += f" --milvus-uri {settings.milvus_uri}"
    if settings.collection != Settings().collection:
        command += f" --collection {settings.collection}"
    return command


async def openapi(request: Request) -> Response:
    """The description of the JSON API this app serves (public: it holds no data)."""
    names = {getattr(route, "name", "") for route in request.app.routes}
    return JSONBody(openapi_document(request.app.state.settings, names, request.app.state.guard.accounts.enabled))


async def healthz(request: Request) -> Response:
    health = {**await service_of(request).health(), "pid": os.getpid()}
    return JSONBody(health, status_code=200 if health["ok"] else 503)
