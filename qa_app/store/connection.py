"""One client to Milvus, reopened after the connection is lost (an embedded server that died is
started again), every call bounded by a timeout and its failure turned into StoreUnavailable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pymilvus import AsyncMilvusClient

from qa_app.errors import StoreUnavailable
from qa_app.settings import is_embedded_uri
from qa_app.store.compat import (
    GRPC_OPTIONS,
    MILVUS_ERRORS,
    connection_lost,
    reason,
    release_embedded_server,
    start_embedded_server,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Operation = Callable[[AsyncMilvusClient], Awaitable[T]]


class Connection:
    def __init__(self, uri: str, *, token: str = "", timeout: float = 10.0) -> None:
        self.uri = uri
        self.token = token
        self.timeout = timeout
        self._client: AsyncMilvusClient | None = None
        self._broken = False
        self._reopen_lock = asyncio.Lock()
        self.on_reopen: Callable[[], Awaitable[None]] | None = None  # after a restart: load the collection again

    @property
    def is_embedded(self) -> bool:
        return is_embedded_uri(self.uri)

    async def client(self) -> AsyncMilvusClient:
        """The open client: opened on first use, reopened after the connection was lost."""
        if self._client is not None and not self._broken:
            return self._client
        async with self._reopen_lock:
            if self._client is None or self._broken:
                await self._reopen()
        assert self._client is not None
        return self._client

    async def _reopen(self) -> None:
        if self._client is not None:
            await _quietly(self._client.close())
            self._client = None
            if self.is_embedded:
                await asyncio.to_thread(release_embedded_server, self.uri)
        if self.is_embedded:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            try:  # off the event loop: on a busy machine the Lite process takes seconds to listen
                await asyncio.to_thread(start_embedded_server, self.uri)
            except OSError as exc:
                raise StoreUnavailable(f"cannot open Milvus at {self.uri}: {exc}") from None
        try:
            self._client = AsyncMilvusClient(uri=self.uri, token=self.token, timeout=self.timeout,
                                             grpc_options=GRPC_OPTIONS)
        except Exception as exc:  # pymilvus raises several types here, none of them documented
            raise StoreUnavailable(f"cannot open Milvus at {self.uri}: {reason(exc)}") from None
        if self._broken and self.on_reopen is not None:
            self._broken = False
            await self.on_reopen()
        self._broken = False

    async def call(self, operation: Operation[T]) -> T:
        """Run `operation` with the client; a failure becomes StoreUnavailable, and a lost connection
        makes the next call reopen it."""
        client = await self.client()
        try:
            return await operation(client)
        except (TimeoutError, *MILVUS_ERRORS, OSError) as exc:
            if connection_lost(exc):
                self._broken = True
            raise StoreUnavailable(f"Milvus is not answering ({self.uri}): {reason(exc)}") from None

    async def attempt(self, operation: Operation[T]) -> T:
        """Run `operation`, letting Milvus's own errors through for the caller to classify (a backend
        without an operation, a name that does not exist); a lost connection still reopens."""
        client = await self.client()
        try:
            return await operation(client)
        except (TimeoutError, *MILVUS_ERRORS, OSError) as exc:
            if connection_lost(exc):
                self._broken = True
                raise StoreUnavailable(f"Milvus is not answering ({self.uri}): {reason(exc)}") from None
            raise

    async def close(self) -> None:
        if self._client is not None:
            await _quietly(self._client.close())
            self._client = None


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:  # closing a client to a dead server: nothing left to save
        log.debug("ignored while closing: %s", exc)
