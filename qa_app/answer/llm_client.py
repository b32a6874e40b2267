"""Stream chat completions from any OpenAI-compatible server (`{base_url}/v1/chat/completions`, SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from qa_app.errors import LLMError, LLMTimeout
from qa_app.settings import DEFAULTS

Message = dict[str, str]
_BODY_EXCERPT = 300


def chat_completions_url(base_url: str) -> str:
    """`http://h:p`, `http://h:p/`, `http://h:p/v1` and `http://h:p/v1/` all name the same endpoint."""
    base = base_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"LLM URL must start with http:// or https://, got {base_url!r}")
    if base.endswith("/chat/completions"):
        return base
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


@dataclass
class StreamInfo:
    """Filled in by `LLMClient.stream_chat` while it runs: what the server said besides the text."""

    model: str | None = None
    finish_reason: str | None = None
    chunks: int = 0
    usage: dict[str, Any] | None = None


class LLMClient:
    """One shared `httpx.AsyncClient` to an OpenAI-compatible chat completions endpoint."""

    def __init__(self, base_url: str, model: str = DEFAULTS.llm_model, *, api_key: str | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = chat_completions_url(base_url)
        self.model = model
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # read applies to each chunk of the stream: a server silent for that long is given up on.
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def list_models(self) -> list[str]:
        """The model ids the server offers (GET .../v1/models): a health check; raises `LLMError`."""
        url = self.url[: -len("/chat/completions")] + "/models"
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise LLMTimeout(f"LLM server timed out at {url}") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"cannot reach the LLM server at {url}: {exc}") from None
        if response.status_code >= 400:
            raise LLMError(f"LLM server answered HTTP {response.status_code}: {response.text[:_BODY_EXCERPT]}")
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise LLMError(f"LLM server sent an unreadable model list: {response.text[:80]!r}") from None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def stream_chat(self, messages: Sequence[Message], *, max_tokens: int | None = None,
                          temperature: float = 0.0, info: StreamInfo | None = None) -> AsyncGenerator[str, None]:
        """Yield the content deltas of one streamed completion; raise `LLMError` on any failure.

        Close the generator (or cancel the task consuming it) to close the upstream response; wrap it
        in `contextlib.aclosing` when you may stop early, since `break` alone does not close it.
        """
        info = info if info is not None else StreamInfo()
        payload: dict[str, Any] = {"model": self.model, "messages": list(messages), "temperature": temperature,
                                   "stream": True}
        if max_tokens is not None:  # else the server's own limit
            payload["max_tokens"] = max_tokens
        done = False
        try:
            async with self._http.stream("POST", self.url, json=payload) as response:
                if response.status_code >= 400:
                    raise LLMError(f"LLM server answered HTTP {response.status_code}: "
                                   f"{await _body_excerpt(response)}")
                async for data in _sse_data(response):
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    delta = _parse_chunk(data, info)
                    if delta:
                        info.chunks += 1
                        yield delta
        except httpx.TimeoutException as exc:
            raise LLMTimeout(f"LLM server timed out ({type(exc).__name__}) at {self.url}") from None
        except httpx.ConnectError as exc:
            raise LLMError(f"cannot reach the LLM server at {self.url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM request failed ({type(exc).__name__}): {exc}") from None
        if done and info.finish_reason is None:
            # llama-cpp-python's server, by default (--interrupt_requests True), ends a stream early
            # with a bare [DONE] when another request is waiting.
            info.finish_reason = "interrupted"
        if not done and info.finish_reason is None:
            raise LLMError("LLM stream ended before completion (no [DONE] and no finish_reason); "
                           "the prompt may exceed the model's context window")


async def _body_excerpt(response: httpx.Response) -> str:
    raw = b""
    async for part in response.aiter_bytes():
        raw += part
        if len(raw) > 4 * _BODY_EXCERPT:
            break
    text = raw.decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error")
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        elif isinstance(error, str):
            text = error
    except (ValueError, AttributeError):
        pass
    text = " ".join(text.split())
    return (text[:_BODY_EXCERPT] + "…") if len(text) > _BODY_EXCERPT else (text or "(empty body)")


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The data of each server-sent event (multi-line data joined by newlines); comments skipped."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive ping
        field, _, value = line.partition(":")
        if field == "data":
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)


def _parse_chunk(data: str, info: StreamInfo) -> str:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise LLMError(f"LLM stream is malformed: not JSON: {data[:80]!r}") from None
    if not isinstance(chunk, dict):
        raise LLMError(f"LLM stream is malformed: expected an object, got {data[:80]!r}")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise LLMError(f"LLM server reported an error: {str(message)[:_BODY_EXCERPT]}")
    if isinstance(chunk.get("model"), str):
        info.model = chunk["model"]
    if isinstance(chunk.get("usage"), dict):
        info.usage = chunk["usage"]
    choices = chunk.get("choices")
    if not isinstance(choices, list) or (not choices and "usage" not in chunk):
        raise LLMError(f"LLM stream is malformed: chunk without choices: {data[:80]!r}")
    if not choices:
        return ""
    choice = choices[0]
    if not isinstance(choice, dict):
        raise LLMError(f"LLM stream is malformed: bad choice: {data[:80]!r}")
    if choice.get("finish_reason"):
        info.finish_reason = str(choice["finish_reason"])
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""

