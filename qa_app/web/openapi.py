"""The OpenAPI 3.1 description of the JSON API, served at `/openapi.json`.

Written by hand, from the shapes the code returns (`SearchResult.as_dict`, `Passage.as_dict`,
`Answer.as_dict`, `LoadReport.as_dict`, `QAService.health`) and the checks `parse_query` makes; the
limits come from the settings the app runs with, so the description is true of this server. It lists
an operation only when the app has its route (`OPERATIONS` is keyed by route name), and the tests
check both directions: every JSON route is described, and schemathesis fuzzes every operation against
the running app (no 5xx, every response as described).

`/openapi.json` is public: it describes the API and holds no data. With authentication on, every
operation but `/healthz` needs a Bearer token or the session cookie (`security`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from qa_app import __version__
from qa_app.models import FILTER_FIELDS
from qa_app.search.query import MODES
from qa_app.settings import Settings
from qa_app.web.requests import MAX_BODY_BYTES
from qa_app.web.security import SESSION_COOKIE

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["ok", "error", "status"], "additionalProperties": False,
        "properties": {"ok": {"const": False}, "error": {"type": "string"},
                       "status": {"type": "integer", "minimum": 400, "maximum": 599},
                       "field": {"type": "string", "description": "the request field that is wrong"}},
    },
    "Passage": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "source", "doc_id", "title", "headings", "chunk", "text", "corpus", "page", "page_end",
                     "page_label", "format", "rank", "score", "dense_rank", "sparse_rank", "dense_share",
                     "dense_score", "found_by"],
        "properties": {
            "id": {"type": "string"}, "source": {"type": "string"}, "doc_id": {"type": "string"},
            "title": {"type": "string"}, "headings": {"type": "array", "items": {"type": "string"}},
            "chunk": {"type": "integer", "minimum": 0}, "text": {"type": "string"}, "corpus": {"type": "string"},
            "page": {"type": "integer", "minimum": 0}, "page_end": {"type": "integer", "minimum": 0},
            "page_label": {"type": "string"}, "format": {"type": "string"},
            "rank": {"type": "integer", "minimum": 1}, "score": {"type": "number"},
            "dense_rank": {**_nullable("integer"), "description": "rank in the dense list; null: not in its top"},
            "sparse_rank": {**_nullable("integer"), "description": "rank in the keyword list; null: not in its top"},
            "dense_share": {**_nullable("number"), "description": "the part of the fused score from the dense list"},
            "dense_score": {**_nullable("number"), "description": "cosine similarity of passage and question"},
            "found_by": {"type": "string", "enum": ["dense", "keyword", "dense + keyword", "-"]},
        },
    },
    "Filter": {
        "type": "object", "additionalProperties": False,
        "properties": {**{key: {"type": "string"} for key in FILTER_FIELDS},
                       "corpus": {"type": "array", "items": {"type": "string"}}},
    },
    "Citation": {
        "type": "object", "required": ["number", "passage_id", "rank"],
        "properties": {"number": {"type": "integer"}, "passage_id": {"type": "string"}, "rank": {"type": "integer"}},
    },
    "Answer": {
        "type": "object", "required": ["kind", "text", "model", "citations", "invalid_citations", "timings_ms", "tokens"],
        "properties": {
            "kind": {"type": "string", "enum": ["generated", "extracted", "no_answer"]},
            "text": {"type": "string"}, "model": _nullable("string"),
            "citations": {"type": "array", "items": _ref("Citation")},
            "invalid_citations": {"type": "integer", "minimum": 0},
            "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
            "tokens": {"type": "integer", "minimum": 0},
            "finish_reason": _nullable("string"), "tokens_per_s": _nullable("number"),
            "sentences": {"type": "array", "items": {"type": "object"}},
            "error": {"type": "string", "description": "why the LLM failed, when the answer was extracted instead"},
        },
    },
    "AskResult": {
        "type": "object", "additionalProperties": False,
        "required": ["ok", "question", "mode", "top_k", "filter", "passages", "timings_ms"],
        "properties": {
            "ok": {"const": True}, "question": {"type": "string"},
            "searched_question": {**_nullable("string"), "description": "what was searched, when a follow-up "
                                                                        "question was rewritten; else null"},
            "mode": {"type": "string", "enum": list(MODES)},
            "top_k": {"type": "integer", "minimum": 1}, "filter": _ref("Filter"),
            "passages": {"type": "array", "items": _ref("Passage")},
            "timings_ms": {"type": "object", "required": ["embed", "search", "total"],
                           "additionalProperties": {"type": "number"}},
            "answer": _ref("Answer"),
        },
    },
    "AnswerEvent": {
        "description": "one server-sent event of /ask/stream; `data` is JSON: an AskResult (passages), a piece "
                       "of text (token), citations, an Answer (done), an Error (error) ...",
        "type": "object", "required": ["event", "data"],
        "properties": {"event": {"type": "string", "enum": ["passages", "token", "citations", "extracted", "no_answer",
                                                            "error", "done"]},
                       "data": {"type": "string", "contentMediaType": "application/json"}},
    },
    "Health": {
        "type": "object", "required": ["ok", "model", "dim", "precision", "collection", "milvus_uri", "milvus", "pid"],
        "properties": {
            "ok": {"type": "boolean"}, "model": {"type": "string"}, "dim": {"type": "integer"},
            "precision": {"type": "string"}, "collection": {"type": "string"}, "milvus_uri": {"type": "string"},
            "milvus": {"type": "string", "enum": ["ok", "unavailable"]}, "backend": {"type": "string"},
            "collection_exists": {"type": "boolean"}, "passages": {"type": "integer", "minimum": 0},
            "question_batches": COUNTS, "search_batches": COUNTS, "watch": {"type": "object"},
            "error": {"type": "string"}, "pid": {"type": "integer"},
        },
    },
    "Corpus": {
        "type": "object", "additionalProperties": False,
        "required": ["ok", "collection", "exists", "passages", "corpora", "model", "dim", "sources"],
        "properties": {
            "ok": {"const": True}, "collection": {"type": "string"}, "exists": {"type": "boolean"},
            "passages": {"type": "integer", "minimum": 0}, "corpora": COUNTS, "model": {"type": "string"},
            "dim": {"type": "integer"}, "sources": {**COUNTS, "description": "source path -> passages"},
        },
    },
    "LoadReport": {
        "type": "object",
        "required": ["files_added", "files_updated", "files_unchanged", "files_removed", "passages_added",
                     "passages_removed", "passages_unchanged", "skipped", "seconds", "encode_seconds"],
        "properties": {
            **{name: {"type": "integer", "minimum": 0} for name in (
                "files_added", "files_updated", "files_unchanged", "files_removed", "passages_added",
                "passages_removed", "passages_unchanged")},
            "skipped": {"type": "array", "items": {"type": "object", "required": ["path", "reason"],
                                                   "properties": {"path": {"type": "string"},
                                                                  "reason": {"type": "string"}}}},
            "seconds": {"type": "number"}, "encode_seconds": {"type": "number"},
        },
    },
    "Upload": {
        "type": "object", "required": ["ok", "corpus", "files", "report"],
        "properties": {
            "ok": {"const": True}, "corpus": {"type": "string"},
            "files": {"type": "array", "items": {"type": "object", "required": ["name", "source"],
                                                 "properties": {"name": {"type": "string"},
                                                                "source": {"type": "string"}}}},
            "report": _ref("LoadReport"),
        },
    },
    "Removed": {
        "type": "object", "required": ["ok", "source", "passages_removed"],
        "properties": {"ok": {"const": True}, "source": {"type": "string"}, "corpus": {"type": "string"},
                       "passages_removed": {"type": "integer", "minimum": 0}},
    },
}

DENIED = {"401": _error("authentication is on and the request has no valid token or session"),
          "403": _error("the role is not enough, or the request came from another site / without its CSRF token")}
UNAVAILABLE = {"503": _error("Milvus cannot be reached")}


def _question_parameters(settings: Settings) -> list[dict[str, Any]]:
    text = {"type": "string", "maxLength": settings.max_filter_chars}
    return [
        {"name": "q", "in": "query", "required": True, "description": "the question",
         "schema": {"type": "string", "minLength": 1, "maxLength": settings.max_question_chars}},
        {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": settings.max_top_k}},
        {"name": "mode", "in": "query", "schema": {"type": "string", "enum": [*MODES, "keyword"]}},
        *({"name": key, "in": "query", "schema": text, "description": f"the {field} must contain this"}
          for key, field in FILTER_FIELDS.items()),
        {"name": "corpus", "in": "query", "schema": {"type": "string"}, "description": "corpus names, comma-separated"},
        {"name": "answer", "in": "query", "schema": {"type": "string", "enum": ["1", "0", "true", "false"]},
         "description": "also answer (generated by the LLM, or extracted)"},
    ]


def _question_body(settings: Settings) -> dict[str, Any]:
    text = {"type": ["string", "null"], "maxLength": settings.max_filter_chars}
    schema = {
        "type": "object", "required": ["question"], "additionalProperties": False,
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": settings.max_question_chars},
            "top_k": {"type": "integer", "minimum": 1, "maximum": settings.max_top_k},
            "mode": {"type": "string", "enum": [*MODES, "keyword"]},
            "filter": {"type": "object", "additionalProperties": False,
                       "properties": {**{key: text for key in FILTER_FIELDS},
                                      "corpus": {"oneOf": [{"type": "string"},
                                                           {"type": "array", "items": {"type": "string"},
                                                            "maxItems": 50}]}}},
            "answer": {"type": "boolean"},
            "history": {"type": "array", "maxItems": 50, "description": "earlier turns, oldest first: a follow-up "
                                                                         "question is searched with their context",
                        "items": {"type": "object", "required": ["question"], "additionalProperties": False,
                                  "properties": {"question": {"type": "string"}, "answer": {"type": "string"}}}},
        },
    }
    return {"required": True, "content": {JSON: {"schema": schema}},
            "description": f"at most {MAX_BODY_BYTES} bytes"}


def operations(settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """route name -> {path: {method: operation}} for every JSON route the app may have."""
    params, body = _question_parameters(settings), _question_body(settings)
    asked = {"400": _error("a field is wrong (`field` names it)"),
             "409": _error("nothing is loaded yet, or the collection was built with another model"),
             **UNAVAILABLE, **DENIED}
    stream = {"200": {"description": "server-sent events: passages, then token..., citations, done (error, "
                                     "extracted and no_answer where they apply)",
                      "content": {"text/event-stream": {"schema": _ref("AnswerEvent")}}},
              "400": asked["400"], **DENIED}
    too_large = {"413": _error(f"the body is larger than {MAX_BODY_BYTES} bytes")}
    return {
        "ask": {"/ask": {
            "get": {"operationId": "askGet", "summary": "Passages for a question (and an answer with answer=1)",
                    "parameters": params, "responses": {"200": _json("the passages", "AskResult"), **asked}},
            "post": {"operationId": "askPost", "summary": "Passages for a question (and an answer with answer: true)",
                     "requestBody": body, "responses": {"200": _json("the passages", "AskResult"), **asked,
                                                        **too_large}},
        }},
        "ask_stream": {"/ask/stream": {
            "get": {"operationId": "askStreamGet", "summary": "Passages, then the answer as it is written",
                    "parameters": params, "responses": stream},
            "post": {"operationId": "askStreamPost", "summary": "Passages, then the answer as it is written",
                     "requestBody": body, "responses": {**stream, **too_large}},
        }},
        "healthz": {"/healthz": {
            "get": {"operationId": "health", "summary": "Milvus, the row count, the model; public",
                    "security": [], "responses": {"200": _json("healthy", "Health"),
                                                  "503": _json("Milvus cannot be reached", "Health")}},
        }},
        "corpus_json": {"/corpus.json": {
            "get": {"operationId": "corpus", "summary": "What is loaded: sources and corpora with passage counts",
                    "responses": {"200": _json("the corpus", "Corpus"), **UNAVAILABLE, **DENIED}},
        }},
        # The upload routes, as the web layer expects them (editor role, CSRF token for a browser).
        "documents": {"/documents": {
            "post": {"operationId": "uploadDocuments", "summary": "Load uploaded files into a corpus",
                     "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                         "type": "object", "required": ["files"],
                         "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                        "corpus": {"type": "string", "default": "default"},
                                        "csrf_token": {"type": "string", "description": "browsers: first field"}}}}}},
                     "responses": {"200": {"description": "loaded (each file's outcome; a file refused is "
                                                          "listed with its reason); with `Accept: text/event-stream`, "
                                                          "server-sent events: received, queued, reading, file, "
                                                          "embedding, then done (this body) or error",
                                           "content": {JSON: {"schema": _ref("Upload")},
                                                       "text/event-stream": {"schema": {"type": "string"}}}},
                                   "400": _error("no files, or a bad corpus name or file name"),
                                   "409": asked["409"], "413": _error("a file or the upload is too large, or has too "
                                                                      "many files"),
                                   "415": _error("a file type that cannot be read, or content that is not what its "
                                                 "name says"),
                                   "422": _error("no file could be read (encrypted, corrupt, empty, a zip bomb)"),
                                   **UNAVAILABLE, **DENIED}},
            "delete": {"operationId": "removeDocument", "summary": "Remove one uploaded source's passages",
                       "parameters": [{"name": "source", "in": "query", "required": True, "schema": {"type": "string"}},
                                      {"name": "corpus", "in": "query", "schema": {"type": "string"}}],
                       "responses": {"200": _json("removed", "Removed"), "400": _error("a bad source or corpus"),
                                     "404": _error("no such source"), **UNAVAILABLE, **DENIED}},
        }},
    }


def openapi_document(settings: Settings, route_names: Collection[str], auth: bool) -> dict[str, Any]:
    """The description of the operations among `route_names`, for an app with authentication on or off."""
    paths: dict[str, Any] = {}
    for name, described in operations(settings).items():
        if name in route_names:
            for path, methods in described.items():
                paths.setdefault(path, {}).update(methods)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "qa_app", "version": __version__,
                 "description": "Ask questions of your own documents: passages found by hybrid search on Milvus, "
                                "and an answer written from them. Errors are `{ok: false, error, status, field?}`."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "`qa-app tokens add NAME`"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                            "description": "set by signing in at /signin"},
            },
        },
    }
    if auth:
        document["security"] = [{"bearer": []}, {"session": []}]
    return document
