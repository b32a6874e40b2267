"""The embedded Milvus Lite server is started and waited for by the app, with a bounded budget and a
message that says what it waits for (pymilvus alone gives up after the call timeout)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from qa_app.store.compat import release_embedded_server, start_embedded_server


def test_start_returns_once_the_socket_accepts_connections(tmp_path: Path) -> None:
    from milvus_lite.server_manager import server_manager_instance

    db = str(tmp_path / "lite.db")
    try:
        start_embedded_server(db, budget=180)
        target = server_manager_instance.start_and_get_uri(db)  # the running one: not started twice
        assert target is not None
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(target.removeprefix("unix:"))
        start_embedded_server(db, budget=180)  # already up: returns at once
    finally:
        release_embedded_server(db)


def test_a_file_another_process_serves_is_refused_with_the_reason(tmp_path: Path) -> None:
    db = str(tmp_path / "lite.db")
    try:
        start_embedded_server(db, budget=180)
        other = subprocess.run([sys.executable, "-c", "import sys; from qa_app.store.compat import start_embedded_server; "
                                f"start_embedded_server({db!r}, budget=5)"], capture_output=True, text=True, timeout=300)
    finally:
        release_embedded_server(db)
    assert other.returncode != 0
    assert "could not start" in other.stderr and "another process" in other.stderr
