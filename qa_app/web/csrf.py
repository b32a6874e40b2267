"""CSRF tokens: one random token per session, sent back by forms and by fetch().

- Templates: `{{ csrf_field() }}` emits `<input type="hidden" name="csrf_token" ...>`. In a multipart
  form (file uploads) it must be the FIRST field: the check reads only the start of the body, so an
  upload streams on to its view without being held in memory. `base.html` also puts the token in
  `<meta name="csrf-token">` for scripts.
- fetch(): send the header `X-CSRF-Token: <the meta tag's content>`.

`qa_app.web.security.AccessControl` does the checking, for every state-changing request.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl

from markupsafe import Markup, escape
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import Message, Receive, Scope

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_KEY = "csrf"
MAX_FORM_BYTES = 64 * 1024  # a urlencoded form, or the start of a multipart one, read before the check


class FormTooLarge(Exception):
    pass


def csrf_token(scope: Scope) -> str:
    """This session's token, made on first use (so a page that shows a form starts a session); empty
    outside the session middleware (the last-resort 500 page)."""
    session: dict[str, Any] | None = scope.get("session")
    if session is None:
        return ""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def rotate_csrf_token(scope: Scope) -> str:
    """A fresh token: at sign-in and sign-out, so a token seen before does not outlive its session."""
    token = scope["session"][SESSION_KEY] = secrets.token_urlsafe(32)
    return str(token)


def csrf_matches(scope: Scope, given: str | None) -> bool:
    expected = scope["session"].get(SESSION_KEY)
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def csrf_field_html(scope: Scope) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(csrf_token(scope)))


async def token_in_body(scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """The `csrf_token` form field, and a `receive` that hands the app the whole body as if unread."""
    content_type, options = parse_options_header(_header(scope, b"content-type"))
    read: list[Message] = []
    token: str | None = None
    if content_type == b"application/x-www-form-urlencoded":
        body = bytearray()
        async for chunk in _chunks(receive, read):
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise FormTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
        token = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)).get(CSRF_FIELD)
    elif content_type == b"multipart/form-data" and options.get(b"boundary"):
        token = await _first_multipart_field(options[b"boundary"], receive, read)
    return token, _replay(read, receive)


async def _first_multipart_field(boundary: bytes, receive: Receive, read: list[Message]) -> str | None:
    """The value of the first part when it is the csrf_token field; reads no further than that part."""
    state: dict[str, Any] = {"header": b"", "value": b"", "disposition": b"", "data": bytearray(), "done": False}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["header"].lower() == b"content-disposition" and not state["disposition"]:
            state["disposition"] = state["value"]
        state["header"] = state["value"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if not state["done"]:
            state["data"] += data[start:end]

    def on_part_end() -> None:
        state["done"] = True

    parser = MultipartParser(boundary, {"on_header_field": on_header_field, "on_header_value": on_header_value,
                                        "on_header_end": on_header_end, "on_part_data": on_part_data,
                                        "on_part_end": on_part_end})
    seen = 0
    try:
        async for chunk in _chunks(receive, read):
            seen += len(chunk)
            parser.write(chunk)
            if state["done"] or seen > MAX_FORM_BYTES:
                break
    except Exception:  # a malformed body: no token in it; the view reports what is wrong with it
        return None
    _, options = parse_options_header(state["disposition"])
    if not state["done"] or options.get(b"name") != CSRF_FIELD.encode() or b"filename" in options:
        return None
    return bytes(state["data"]).decode("utf-8", "replace")


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


async def _chunks(receive: Receive, read: list[Message]) -> Any:
    """The body's chunks as they arrive; every message received is kept in `read` for the replay."""
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _replay(read: list[Message], receive: Receive) -> Receive:
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
