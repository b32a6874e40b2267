"""What differs between Milvus backends, and how their failures are told apart.

Backends seen: Milvus Lite 2.5.1 (embedded, the default), Milvus Lite 3.x's server, Milvus 2.5+.
Failures are classified by gRPC status and Milvus error code; the two Milvus behaviours that come
with no code of their own are matched by their message, here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

import grpc
from pymilvus.client.types import Status
from pymilvus.exceptions import ConnectError, MilvusException, MilvusUnavailableException

# milvus-lite 2.5.1 imports pkg_resources, which warns on every start; the pin is deliberate (STACK.md).
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
# pymilvus logs a full traceback for every failed call, expected ones too (a backend without partitions
# answers UNIMPLEMENTED): the store turns each failure into one clear message instead.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

QUERY_PAGE = 16384  # Milvus caps one query's limit + offset at 16384 and silently truncates above it
# VARCHAR limits in bytes. Milvus Lite 2.5.1 does not enforce them, a server does: cut in the app.
MAX_BYTES = {"id": 64, "text": 65535, "search_text": 65535, "source": 2048, "doc_id": 512,
             "title": 1024, "headings": 2048, "content_hash": 64, "corpus": 64, "page_label": 64,
             "format": 16}
# pymilvus pings every 10 s even when idle; a gRPC server with default settings (Milvus Lite 3.x's)
# answers "too_many_pings" with GOAWAY and drops the connection. Every call has a timeout instead.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 60_000, "grpc.keepalive_permit_without_calls": False}
# BM25 analyzers, best first: English stemming and stop words where the server has them (Milvus 2.5+,
# Lite 2.5.1); Lite 3.x's server knows only the standard tokenizer.
ANALYZERS: tuple[dict[str, Any], ...] = ({"type": "english"}, {"tokenizer": "standard", "filter": ["lowercase"]})
# The embedded Milvus Lite 2.5.1 cannot say its version (GetVersion is unimplemented).
EMBEDDED_VERSION = "milvus-lite-2.5.1 (embedded)"

COLLECTION_NOT_FOUND = 100  # also what Lite 3.x answers for a missing alias
ALIAS_NOT_FOUND = 1600  # Milvus 2.5's merr.ErrAliasNotFound
MILVUS_ERRORS = (MilvusException, grpc.RpcError)


def truncate_utf8(value: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, never splitting a character."""
    data = value.encode()
    if len(data) <= max_bytes:
        return value
    return data[:max_bytes].decode(errors="ignore")


def _grpc_code(exc: BaseException) -> Any:
    """The gRPC status of `exc` or of the gRPC error it was raised from, else None."""
    visited: set[int] = set()  # pymilvus raises `e from e`: a cause can be the error itself
    seen: BaseException | None = exc
    while seen is not None and id(seen) not in visited:
        if isinstance(seen, grpc.RpcError) and hasattr(seen, "code"):
            return seen.code()
        visited.add(id(seen))
        seen = seen.__cause__
    return None


def connection_lost(exc: BaseException) -> bool:
    """The connection is gone (server dead or unreachable), as opposed to an error the server answered."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, ConnectError, MilvusUnavailableException)):
        return True
    if isinstance(exc, MilvusException) and exc.code == Status.CONNECT_FAILED:
        return True
    return bool(_grpc_code(exc) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED))


def unimplemented(exc: BaseException) -> bool:
    """The backend does not have this operation (Lite 2.5.1: partitions, aliases, GetVersion)."""
    return bool(_grpc_code(exc) == grpc.StatusCode.UNIMPLEMENTED)


def not_found(exc: BaseException) -> bool:
    """The collection or alias named does not exist."""
    return isinstance(exc, MilvusException) and bool(exc.code in (COLLECTION_NOT_FOUND, ALIAS_NOT_FOUND))


def analyzer_refused(exc: BaseException) -> bool:
    """create_collection refused the BM25 analyzer (no error code distinguishes this)."""
    return isinstance(exc, MilvusException) and ("tokenizer" in str(exc) or "analyzer" in str(exc))


def empty_bm25_failure(exc: BaseException) -> bool:
    """Milvus Lite's BM25 over an empty collection divides by a zero average length and fails with
    "Invalid sparse row: NaN or Inf value" instead of finding nothing (no error code says this)."""
    return "NaN or Inf" in str(exc)


def is_lite(version: str) -> bool:
    # Measured on Milvus Lite 3.2.2: a search naming partitions finds nothing and a query ignores them,
    # so there the corpus field in the expression does the restricting alone.
    return version.startswith(("milvus_lite", "milvus-lite"))


def reason(exc: BaseException) -> str:
    """One line that says what went wrong."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message).splitlines()[0][:300]


EMBEDDED_START_SECONDS = 180.0  # bounded but generous: on 2 busy cores the Lite server has taken over 10 s


def start_embedded_server(uri: str, budget: float = EMBEDDED_START_SECONDS) -> None:
    """Start the Milvus Lite process for the file `uri` (if it is not running) and wait until its socket
    accepts connections. pymilvus waits only its call timeout for that, which a busy machine exceeds
    ("Fail connecting to server on unix:..."); this wait says what it waits for, and gives up after `budget`."""
    import socket
    import time

    from milvus_lite.server_manager import server_manager_instance

    target = server_manager_instance.start_and_get_uri(uri)
    if target is None:
        raise OSError(f"Milvus Lite could not start on {uri} (is another process using the file?)")
    server = server_manager_instance._servers.get(str(Path(uri).absolute().resolve()))  # its process, to see it die
    started = time.monotonic()
    told = started
    while True:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(target.removeprefix("unix:"))
                return
            except OSError:
                pass
        waited = time.monotonic() - started
        process = getattr(server, "_p", None)
        if process is not None and process.poll() is not None:
            raise OSError(f"Milvus Lite for {uri} exited with {process.returncode} before accepting connections")
        if waited > budget:
            raise OSError(f"Milvus Lite for {uri} did not accept connections on {target} within {budget:.0f} s")
        if time.monotonic() - told > 5:
            told = time.monotonic()
            logging.getLogger(__name__).warning("waiting for the embedded Milvus Lite server to accept connections "
                                                "on %s (%.0f s of at most %.0f s)", target, waited, budget)
        time.sleep(0.05)


def release_embedded_server(uri: str) -> None:
    """Stop the Milvus Lite process serving the file `uri`, so the next client starts a fresh one."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)
