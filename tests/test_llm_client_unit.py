"""What the LLM client makes of each kind of answer, through httpx's MockTransport (connection-level
faults, hangs and disconnections are in test_llm_server.py, against real sockets and a real server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from qa_app.answer import Answerer, LLMClient, LLMError, StreamInfo
from qa_app.models import Passage

pytestmark = pytest.mark.unit
PASSAGES = [Passage("p1", "paris.md", "", "Paris", (), 0, "Paris is the capital of France.", rank=1)]


def sse(*events: object) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, object]:
    return {"model": "mock", "choices": [{"index": 0, "delta": {} if content is None else {"content": content},
                                          "finish_reason": finish}]}


def client_for(respond: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> LLMClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return respond(request)

    return LLMClient("http://llm.test/v1", "mock-model", api_key="sk-1", transport=httpx.MockTransport(handler))


def stream_of(body: bytes, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})


def collect(client: LLMClient, info: StreamInfo) -> list[str]:
    async def go() -> list[str]:
        async with client:
            return [d async for d in client.stream_chat([{"role": "user", "content": "hi"}], max_tokens=9,
                                                        info=info)]
    return asyncio.run(go())


def test_a_stream_yields_its_deltas_and_the_request_carries_model_key_and_limits() -> None:
    seen: list[httpx.Request] = []
    body = sse(chunk("Paris")) + b": keep-alive\n\n" + sse(chunk(" [1]."), chunk(finish="stop"), b"[DONE]")
    info = StreamInfo()
    assert collect(client_for(stream_of(body), seen), info) == ["Paris", " [1]."]
    assert (info.finish_reason, info.model, info.chunks) == ("stop", "mock", 2)
    request = seen[0]
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-1"
    payload = json.loads(request.content)
    assert (payload["model"], payload["max_tokens"], payload["stream"]) == ("mock-model", 9, True)


@pytest.mark.parametrize(("body", "status", "message"), [
    pytest.param(json.dumps({"error": {"message": "model exploded"}}).encode(), 500,
                 "LLM server answered HTTP 500: model exploded", id="http-error"),
    pytest.param(sse(chunk("a"), b'{"choices": [{"delta"'), 200, "malformed: not JSON", id="bad-json"),
    pytest.param(sse({"id": "x"}), 200, "malformed: chunk without choices", id="no-choices"),
    pytest.param(sse(chunk("a")), 200, "ended before completion", id="truncated"),
    pytest.param(sse({"error": {"message": "out of memory"}}), 200, "reported an error: out of memory", id="error-chunk"),
])
def test_a_broken_answer_raises_llm_error_naming_the_problem(body: bytes, status: int, message: str) -> None:
    with pytest.raises(LLMError, match=message):
        collect(client_for(stream_of(body, status), []), StreamInfo())


def test_a_bare_done_is_marked_as_interrupted() -> None:
    info = StreamInfo()
    assert collect(client_for(stream_of(sse(chunk("Paris"), b"[DONE]")), []), info) == ["Paris"]
    assert info.finish_reason == "interrupted"


def test_the_answerer_falls_back_to_the_extract_when_the_server_fails() -> None:
    client = client_for(stream_of(b"{}", 503), [])
    answer = asyncio.run(Answerer(client).complete("capital of France?", PASSAGES))
    assert answer.kind == "extracted" and answer.error is not None and "HTTP 503" in answer.error
    assert answer.citations == [{"number": 1, "passage_id": "p1", "rank": 1}]
