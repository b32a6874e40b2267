"""The one exception tree: every error qa_app reports carries the HTTP status it is shown with.

    QAError (500)
    ├── BadRequest (400) ── FilterError, EvalInputError
    ├── Unauthorized (401), Forbidden (403), NotFound (404)
    ├── Conflict (409) ── CollectionMissing, ModelMismatch, ReindexError
    ├── PayloadTooLarge (413), UnsupportedFile (415)
    ├── ReadError (422): one file that cannot be read as a document; a load reports it and goes on
    ├── LoadError (400): a load that cannot start (a path that does not exist)
    ├── SettingsError (500): a setting with a bad value, named
    ├── ModelNotFound (500): the embedding model is not installed
    ├── LLMError (502) ── LLMTimeout (504)
    └── StoreUnavailable (503): Milvus could not be reached or failed

The CLI turns any QAError into one line on stderr and a non-zero exit; the web app into a page or
`{"ok": false, "error", "status", "field"?}`.
"""

from __future__ import annotations


class QAError(Exception):
    """A problem to report to the user, never a stack trace."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(QAError):
    status = 400


class FilterError(BadRequest):
    """A filter value that cannot be searched for; `field` names the filter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class EvalInputError(BadRequest):
    """A queries or qrels file that cannot be read; the message names the file and line."""


class Unauthorized(QAError):
    status = 401


class Forbidden(QAError):
    status = 403


class NotFound(QAError):
    status = 404


class Conflict(QAError):
    status = 409


class CollectionMissing(Conflict):
    """Nothing is loaded yet."""


class ModelMismatch(Conflict):
    """The collection was built with another embedding model or another version of qa_app."""


class ReindexError(Conflict):
    pass


class PayloadTooLarge(QAError):
    status = 413


class UnsupportedFile(QAError):
    status = 415


class ReadError(QAError):
    """A file that cannot be read as a document."""

    status = 422


class LoadError(QAError):
    status = 400


class SettingsError(QAError):
    pass


class ModelNotFound(QAError):
    pass


class LLMError(QAError):
    """The language model server could not be reached, failed, or sent something unreadable."""

    status = 502


class LLMTimeout(LLMError):
    status = 504


class StoreUnavailable(QAError):
    """Milvus could not be reached or failed."""

    status = 503
