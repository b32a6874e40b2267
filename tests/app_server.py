"""Run the real `qa-app` command in a child process: loading, and serving on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

QA_APP = [sys.executable, "-m", "qa_app"]
# Seconds a child server may take to answer. Generous: a busy 2-core machine without bf16 units took
# over 90 s to start `serve --workers 2`; a server that never comes up still fails the test, bounded.
READY_SECONDS = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qa_app(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run one qa-app command to the end; its output is in the result."""
    return subprocess.run([*QA_APP, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def stop(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Terminate a child process, killing it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(process: subprocess.Popen[Any], is_ready: Callable[[], bool], seconds: float, name: str,
               output: Callable[[], str]) -> None:
    """Poll `is_ready` until it is true; fail with the child's output if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while not is_ready():
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{output()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{name} was not ready within {seconds:.0f} s:\n{output()[-3000:]}")
        time.sleep(0.2)


def wait_for_output(process: subprocess.Popen[bytes], seen: Callable[[bytes], bool], seconds: float) -> bytes:
    """Read the child's stderr (on a thread, so a silent child cannot block the test) until `seen` is
    true of what it wrote, the child exits, or `seconds` pass; returns what it wrote so far."""
    assert process.stderr is not None
    stream = process.stderr
    written = bytearray()

    def drain() -> None:
        while chunk := stream.read1(4096):
            written.extend(chunk)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + seconds
    while process.poll() is None and not seen(bytes(written)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return bytes(written)


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
        return True
    except httpx.TransportError:
        return False


@contextmanager
def serving(db: str | Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`qa-app serve` on 127.0.0.1 and a free port; yields its base URL and stops it afterwards. Its
    output goes to a file while it runs (a pipe nobody reads would block it, and reading a pipe to
    its end would wait for the child to exit), and is shown if it fails to start."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="qa-app-serve-", suffix=".log") as log, \
            tempfile.TemporaryDirectory(prefix="qa-app-data-") as data:  # users, tokens, key: not the checkout's
        env = {"QA_DATA_DIR": data, **(env or {})}
        process = subprocess.Popen([*QA_APP, "serve", "--port", str(port), "--milvus-uri", str(db), *extra],
                                   stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(process, lambda: answers(url + "/healthz"), READY_SECONDS, "qa-app serve",
                       lambda: Path(log.name).read_text(errors="replace"))
            yield url
        finally:
            stop(process)
