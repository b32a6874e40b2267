"""A Milvus server for the backend matrix: Milvus Lite 3.x's gRPC server, in its own virtual
environment (its milvus-lite pin conflicts with the app's embedded 2.5.1)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app_server import free_port

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
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"Milvus server exited:\n{(data / 'server.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("Milvus server did not listen within 60 s")
                time.sleep(0.2)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
