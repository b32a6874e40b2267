"""Errors that carry the HTTP status they should be shown with."""

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


class Unauthorized(QAError):
    status = 401


class PayloadTooLarge(QAError):
    status = 413


class StoreUnavailable(QAError):
    """Milvus could not be reached or failed."""

    status = 503


class ModelMismatch(QAError):
    """The collection was built with another embedding model."""

    status = 409
