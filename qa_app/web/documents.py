"""Adding and removing documents from the browser: `POST /documents` (multipart upload into a corpus),
`DELETE /documents` and its form twin `POST /documents/remove`, and the corpus page that holds both.

An upload is read as it streams in (never whole in memory): each file goes to a staging folder,
bounded by QA_MAX_UPLOAD_MB, the request by QA_MAX_UPLOAD_FILES; then every file's name and content
are checked (`qa_app.ingest.uploads`). A file that fails is refused with its reason and the rest go
on; when all fail the request fails with the first one's status (413, 415, 422 or 400) and every reason.

What the response is depends on what the client accepts:

- `text/event-stream` (the page's script): `received` (each file, kept or refused), `queued` (another
  load runs first), `reading` (pages done/total, pages/s, ETA), `file` (each file read: added /
  updated / unchanged / skipped and why), `embedding` (passages done/total, ETA), then `done` (the
  same body as the JSON answer) or `error`.
- JSON (`Accept: application/json`, a Bearer client): that body once the load is over.
- HTML (the form without JavaScript): the corpus page with the outcome.

The load runs as its own task: a browser that goes away mid-load does not cut it short (a load that
is cancelled half-way is safe, but the next one would have to finish it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from qa_app.errors import BadRequest, PayloadTooLarge, QAError
from qa_app.models import DEFAULT_CORPUS, LoadProgress
from qa_app.service import IncomingFile, LoadReport, Placement, QAService, Received, accepted_types
from qa_app.store.expressions import check_corpus
from qa_app.web.errors import SERVER_ERROR, error_body, wants_json
from qa_app.web.json_body import JSONBody
from qa_app.web.render import templates
from qa_app.web.security import principal_of, require_role
from qa_app.web.views import load_command, service_of, sse_event

if TYPE_CHECKING:  # declared only for type checkers
    from python_multipart.multipart import MultipartCallbacks

log = logging.getLogger(__name__)
FLUSH_BYTES = 1 << 20  # a file's bytes are written to disk (in a thread) a megabyte at a time
MAX_FIELD_BYTES = 1024  # a text field of the form (the corpus name, the CSRF token)
FORM_SLACK = 1 << 20  # multipart headers and boundaries on top of the files themselves
_RUNNING: set[asyncio.Task[Any]] = set()  # loads that outlive their request; kept from the garbage collector


# ---------------------------------------------------------------------------------------------------
# Reading the upload


@dataclass
class _Form:
    corpus: str = DEFAULT_CORPUS
    received: list[Received] = field(default_factory=list)


class _UploadReader:
    """Feeds the request body through python-multipart; the parser's callbacks only note what they
    saw, and `read` acts on it between chunks (opening and writing files in a thread)."""

    def __init__(self, service: QAService, folder: Path) -> None:
        self.uploads = service.uploads
        self.folder = folder
        self.form = _Form()
        self.actions: list[tuple[str, Any]] = []
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.disposition = b""
        self.current: IncomingFile | None = None  # None while a part's bytes are dropped (a refused name)
        self.field_name = ""
        self.field_value = bytearray()
        self.part = ""  # "file", "field" or "" (ignored)
        self.buffer = bytearray()
        self.files = 0

    def callbacks(self) -> MultipartCallbacks:
        def on_part_begin() -> None:
            self.disposition = b""

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self.header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self.header_value += data[start:end]

        def on_header_end() -> None:
            if bytes(self.header_field).lower() == b"content-disposition":
                self.disposition = bytes(self.header_value)
            self.header_field.clear()
            self.header_value.clear()

        def on_headers_finished() -> None:
            self.actions.append(("begin", self.disposition))

        def on_part_data(data: bytes, start: int, end: int) -> None:
            self.actions.append(("data", data[start:end]))

        def on_part_end() -> None:
            self.actions.append(("end", None))

        return {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                "on_header_value": on_header_value, "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end}

    async def read(self, request: Request, boundary: bytes) -> _Form:
        try:
            return await self._read(request, boundary)
        except BaseException:
            if self.current is not None:  # the file being written when it failed
                await asyncio.to_thread(self.current.discard)
            raise

    async def _read(self, request: Request, boundary: bytes) -> _Form:
        limit = self.uploads.max_files * self.uploads.max_bytes + FORM_SLACK
        parser = MultipartParser(boundary, self.callbacks())
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise PayloadTooLarge(f"the upload is larger than {self.uploads.max_files} files of "
                                      f"{self.uploads.max_bytes / 2**20:.3g} MB", field="files")
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart's own errors: a malformed body
                raise BadRequest(f"malformed multipart body: {exc}", field="files") from None
            await self._act()
        try:
            parser.finalize()
        except Exception as exc:
            raise BadRequest(f"malformed multipart body: {exc}", field="files") from None
        await self._act()
        if self.current is not None:
            raise BadRequest("the upload ended in the middle of a file", field="files")
        return self.form

    async def _act(self) -> None:
        actions, self.actions = self.actions, []
        for kind, value in actions:
            if kind == "begin":
                await self._begin(value)
            elif kind == "data":
                self._data(value)
                if len(self.buffer) >= FLUSH_BYTES:
                    await self._flush()
            else:
                await self._end()

    async def _begin(self, disposition: bytes) -> None:
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            self.part, self.field_name = "field", name
            self.field_value.clear()
            return
        filename = options[b"filename"].decode("utf-8", "replace")
        if not filename:
            self.part = ""  # a file input left empty: browsers send a part without a name
            return
        self.part = "file"
        self.files += 1
        if self.files > self.uploads.max_files:
            raise PayloadTooLarge(f"more than {self.uploads.max_files} files in one upload (QA_MAX_UPLOAD_FILES)",
                                  field="files")
        try:
            self.current = await asyncio.to_thread(self.uploads.receive, self.folder, filename)
        except QAError as exc:
            self.form.received.append(Received(filename[:200], error=exc))
            self.current = None

    def _data(self, data: bytes) -> None:
        if self.part == "field":
            self.field_value += data
            if len(self.field_value) > MAX_FIELD_BYTES:
                raise BadRequest(f"the form field {self.field_name[:40]!r} is longer than {MAX_FIELD_BYTES} bytes",
                                 field=self.field_name[:40] or None)
        elif self.part == "file" and self.current is not None:
            self.buffer += data

    async def _flush(self) -> None:
        if self.current is not None and self.buffer:
            data, self.buffer = bytes(self.buffer), bytearray()
            await asyncio.to_thread(self.current.write, data)

    async def _end(self) -> None:
        if self.part == "field" and self.field_name == "corpus":
            self.form.corpus = self.field_value.decode("utf-8", "replace").strip() or DEFAULT_CORPUS
        elif self.part == "file" and self.current is not None:
            await self._flush()
            self.form.received.append(await asyncio.to_thread(self.current.close))
        self.current, self.part = None, ""


async def read_upload(request: Request, service: QAService, folder: Path) -> _Form:
    """The upload's corpus and files, each staged and checked, or refused with its reason."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise BadRequest("send the files as multipart/form-data, in the field 'files'", field="files")
    declared = request.headers.get("content-length", "")
    limit = service.uploads.max_files * service.uploads.max_bytes + FORM_SLACK
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the upload ({int(declared) / 2**20:.1f} MB) is larger than {service.uploads.max_files} "
                              f"files of {service.uploads.max_bytes / 2**20:.3g} MB", field="files")
    form = await _UploadReader(service, folder).read(request, options[b"boundary"])
    check_corpus(form.corpus)
    if not form.received:
        raise BadRequest("no files in the upload: send them in the field 'files'", field="files")
    form.received = [await asyncio.to_thread(service.uploads.check, item) for item in form.received]
    refused = [item.error for item in form.received if item.error is not None]
    if len(refused) == len(form.received):  # nothing to load: the request fails, saying why for each
        first = refused[0]
        raise type(first)("; ".join(e.message for e in refused), field="files")
    return form


# ---------------------------------------------------------------------------------------------------
# Loading it


def upload_body(corpus: str, received: list[Received], placements: list[Placement], reads: dict[str, LoadProgress],
                report: LoadReport) -> dict[str, Any]:
    """The JSON answer to an upload (and the stream's `done` event): each file's outcome, and the load's report."""
    placed = {p.name: p for p in placements}
    files: list[dict[str, Any]] = []
    for item in received:
        placement = placed.get(item.name)
        if not item.ok or placement is None:
            reason = item.error.message if item.error is not None else "not loaded"
            files.append({"name": item.name, "source": "", "status": "refused", "size": item.size, "kept": False,
                          "reason": reason, "error_status": item.error.status if item.error is not None else 422})
            continue
        source = str(placement.path)
        read = reads.get(source)
        status = read.status if read is not None else "unchanged"
        entry: dict[str, Any] = {"name": item.name, "source": source, "status": status, "size": item.size,
                                 "kept": status != "skipped", "passages": read.passages if read else 0,
                                 "new": read.new if read else 0, "pages": read.pages if read else 0,
                                 "notes": list(read.notes) if read else []}
        if status == "skipped" and read is not None:
            entry.update(reason=read.reason, error_status=422)
        files.append(entry)
    return {"ok": True, "corpus": corpus, "files": files, "report": report.as_dict()}


async def documents(request: Request) -> Response:
    """POST: upload files into a corpus; DELETE: remove one uploaded file (`?source=`)."""
    require_role(request, "editor")  # AccessControl has checked already; this keeps the rule beside the action
    if request.method == "DELETE":
        return await remove_json(request)
    try:
        return await upload(request)
    except QAError as exc:
        page = await upload_form_error(request, exc)
        if page is None:
            raise
        return page


async def upload(request: Request) -> Response:
    service = service_of(request)
    folder = await asyncio.to_thread(service.uploads.staging)
    try:
        form = await read_upload(request, service, folder)
    except BaseException:
        await asyncio.to_thread(service.uploads.discard, folder)
        raise
    names = {str(service.uploads.folder_of(form.corpus).resolve() / item.name): item.name for item in form.received}
    events: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
    reads: dict[str, LoadProgress] = {}

    def on_progress(event: LoadProgress) -> None:
        name = names.get(event.source, Path(event.source).name)
        if event.stage == "read":
            reads[event.source] = event
            events.put_nowait(("file", {**event.as_dict(), "name": name}))
        elif event.stage == "reading":
            events.put_nowait(("reading", {**event.as_dict(), "name": name}))
        else:
            events.put_nowait((event.stage, event.as_dict()))

    busy = service.loading

    async def run() -> dict[str, Any]:
        try:
            placements, report = await service.load_uploads(form.received, form.corpus, on_progress)
            return upload_body(form.corpus, form.received, placements, reads, report)
        finally:
            await asyncio.to_thread(service.uploads.discard, folder)

    task = asyncio.create_task(run())
    _RUNNING.add(task)
    task.add_done_callback(_finished)
    task.add_done_callback(lambda _: events.put_nowait(None))
    accept = request.headers.get("accept", "")
    if "text/event-stream" in accept:
        return StreamingResponse(_stream(form, busy, events, task), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    body = await asyncio.shield(task)  # the load goes on if the client leaves
    if wants_json(request) or "text/html" not in accept:
        return JSONBody(body)
    return await corpus_page(request, upload=body)


def _finished(task: asyncio.Task[Any]) -> None:
    """A load's end: let it go, and log a failure nobody was left to hear of (the client went away)."""
    _RUNNING.discard(task)
    if not task.cancelled() and isinstance(task.exception(), Exception) \
            and not isinstance(task.exception(), QAError):
        log.error("upload failed", exc_info=task.exception())


async def _stream(form: _Form, busy: bool, events: asyncio.Queue[tuple[str, Any] | None],
                  task: asyncio.Task[dict[str, Any]]) -> AsyncIterator[bytes]:
    yield sse_event("received", {"corpus": form.corpus, "files": [item.as_dict() for item in form.received]})
    if busy:
        yield sse_event("queued", {"message": "another load is running; this one starts when it ends"})
    finished = False
    while not finished:
        batch = [await events.get()]
        while not events.empty():
            batch.append(events.get_nowait())
        finished = batch[-1] is None
        items = [item for item in batch if item is not None]
        for i, (kind, data) in enumerate(items):
            # A slow reader gets only the latest count of a run of the same kind (of the same file).
            following = items[i + 1] if i + 1 < len(items) else None
            if kind in ("reading", "embedding") and following is not None and following[0] == kind \
                    and following[1].get("source") == data.get("source"):
                continue
            yield sse_event(kind, data)
    try:
        yield sse_event("done", task.result())
    except QAError as exc:
        yield sse_event("error", error_body(exc.status, exc.message, exc.field))
    except Exception:  # logged by _finished
        yield sse_event("error", error_body(500, SERVER_ERROR))


# ---------------------------------------------------------------------------------------------------
# Removing


async def _remove(request: Request, source: str, corpus: str) -> dict[str, Any]:
    service = service_of(request)
    if not source:
        raise BadRequest("name the uploaded file to remove: source=PATH", field="source")
    if corpus and corpus != service.uploads.corpus_of(source) and service.uploads.is_upload(source):
        raise BadRequest(f"{Path(source).name} is in corpus {service.uploads.corpus_of(source)!r}, not {corpus!r}",
                         field="corpus")
    found_in, removed = await service.remove_upload(source)
    return {"ok": True, "source": source, "corpus": found_in, "passages_removed": removed}


async def remove_json(request: Request) -> Response:
    params = request.query_params
    return JSONBody(await _remove(request, params.get("source", ""), params.get("corpus", "")))


async def remove_form(request: Request) -> Response:
    """The page's Remove button without JavaScript: the corpus page again, saying what was removed."""
    require_role(request, "editor")
    form = await request.form()
    source, corpus = str(form.get("source", "")), str(form.get("corpus", ""))
    try:
        removed = await _remove(request, source, corpus)
    except QAError as exc:
        if wants_json(request):
            raise
        return await corpus_page(request, status=exc.status, error=exc.message)
    if wants_json(request):
        return JSONBody(removed)
    return await corpus_page(request, removed=removed)


# ---------------------------------------------------------------------------------------------------
# The corpus page


async def corpus_page(request: Request, *, status: int = 200, **extra: Any) -> Response:
    """What is loaded, the upload form (for editors) and a Remove button on each uploaded file."""
    service = service_of(request)
    corpus = await service.corpus()
    principal = principal_of(request)
    uploaded = {source for source in corpus.sources if service.uploads.is_upload(source)}
    context = {"corpus": corpus, "settings": service.settings, "model": service.model,
               "load_command": load_command(service.settings), "can_edit": principal is not None and principal.can("editor"),
               "auth": request.app.state.guard.accounts.enabled, "uploaded": uploaded, "busy": service.loading,
               "accept": accepted_types(), "upload": None, "removed": None, "error": None,
               "corpus_of": service.uploads.corpus_of, **extra}
    return templates.TemplateResponse(request, "corpus.html", context, status_code=status)


async def upload_form_error(request: Request, exc: QAError) -> Response | None:
    """The corpus page with an upload's error, for the form without JavaScript (None: answer in JSON)."""
    if wants_json(request) or "text/html" not in request.headers.get("accept", ""):
        return None
    with contextlib.suppress(QAError):
        return await corpus_page(request, status=exc.status, error=exc.message)
    return None
