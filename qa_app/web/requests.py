"""What a request asks: a JSON body, or the query string of the page and its links."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from qa_app.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 64 * 1024
FILTER_PARAMS = ("contains", "source", "title", "corpus")


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
    """The question's fields from a query string: q, top_k, mode, the filters, and `h` (repeated: the
    conversation's earlier questions, oldest first, as the page's links and form carry them)."""
    params = request.query_params
    data: dict[str, Any] = {"question": params.get("q", "")}
    for key in ("top_k", "mode"):
        if params.get(key):
            data[key] = params[key]
    data["filter"] = {k: params[k] for k in FILTER_PARAMS if params.get(k)}
    earlier = [q for q in params.getlist("h") if q.strip()]
    if earlier:
        data["history"] = [{"question": q} for q in earlier]
    return data


async def request_data(request: Request) -> dict[str, Any]:
    """The question's fields: the JSON body of a POST, else the query string."""
    if request.method == "POST":
        return await read_json(request)
    data = query_from_params(request)
    if "answer" in request.query_params:
        data["answer"] = request.query_params["answer"]
    return data
