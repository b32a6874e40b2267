"""Run the real `qa-app` command in a child process: loading, and serving on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

QA_APP = [sys.executable, "-m", "qa_app"]


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


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
        return True
    except httpx.TransportError:
        return False


@contextmanager
def serving(db: str | Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`qa-app serve` on 127.0.0.1 and a free port; yields its base URL and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen([*QA_APP, "serve", "--port", str(port), "--milvus-uri", str(db), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, lambda: answers(url + "/healthz"), 90, "qa-app serve",
                   lambda: process.stdout.read() if process.stdout else "")
        yield url
    finally:
        stop(process)
        if process.stdout:
            process.stdout.close()
