"""Run the real `qa-app` command in a child process: loading, and serving on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

QA_APP = [sys.executable, "-m", "qa_app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qa_app(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run one qa-app command to the end; its output is in the result."""
    return subprocess.run([*QA_APP, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@contextmanager
def serving(db: str | Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`qa-app serve` on 127.0.0.1 and a free port; yields its base URL and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen([*QA_APP, "serve", "--port", str(port), "--milvus-uri", str(db), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"qa-app serve exited with {process.returncode}:\n{output}")
            try:
                httpx.get(url + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("qa-app serve did not answer within 90 s") from None
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
