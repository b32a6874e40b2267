"""A Milvus server for the backend matrix: Milvus Lite 3.x's gRPC server, in its own virtual
environment (its milvus-lite pin conflicts with the app's embedded 2.5.1)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app_server import free_port, stop, wait_ready

REPO = Path(__file__).resolve().parent.parent
SERVER_PYTHON = Path(os.environ.get("QA_TEST_MILVUS_PYTHON", REPO / ".venv-milvus" / "bin" / "python"))


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a Milvus Lite 3.x server on a free port, stopped at the end of the session."""
    if not SERVER_PYTHON.exists():
        pytest.skip(f"no Milvus server environment at {SERVER_PYTHON} (bash scripts/setup.sh --test makes it)")
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-server")
    log = (data / "server.log").open("wb")
    process = subprocess.Popen([str(SERVER_PYTHON), "-m", "milvus_lite", "server", "--data-dir", str(data / "data"),
                                "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, lambda: listening(port), 60, "Milvus server",
                   lambda: (data / "server.log").read_text(errors="replace"))
        yield uri
    finally:
        stop(process, timeout=10)
        log.close()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
