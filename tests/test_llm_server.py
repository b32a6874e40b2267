"""The answer step against servers: scripted fakes for faults and cancellation, and a real llama_cpp.server.

Assertions are about the protocol and invariants, never the wording (the model is a 270M base model).
"""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import aclosing
from typing import Any

import pytest

from qa_app.answer import Answerer, LLMClient, LLMError, LLMTimeout, StreamInfo, build_prompt

try:
    from llm_server import MODEL_ALIAS, FakeLLM, LLMServer, free_port, llm_server
except ImportError:  # tests/ became a package
    from tests.llm_server import MODEL_ALIAS, FakeLLM, LLMServer, free_port, llm_server  # noqa: F401

from qa_app.models import Passage


def passage(n: int, title: str, text: str) -> Passage:
    return Passage(id=f"doc{n}#0", rank=n, score=round(1 / (60 + n), 6), text=text, source=f"{title}.md",
                         doc_id=f"doc{n}", title=title, headings=("Overview",), chunk=0)


PASSAGES = [
    passage(1, "Eiffel Tower", "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. "
                               "It was completed in 1889 as the entrance to the World's Fair."),
    passage(2, "Bread", "Bread is baked from a dough of flour and water, usually leavened with yeast."),
    passage(3, "Volcanoes", "A volcano is a rupture in the crust where lava, ash and gases escape."),
]
QUESTION = "When was the Eiffel Tower completed?"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def events_of(answerer: Answerer, question: str = QUESTION,
                    passages: list[Passage] = PASSAGES) -> list[tuple[str, Any]]:
    return [(e.kind, e.value) async for e in answerer.stream(question, passages)]


def kinds(events: list[tuple[str, Any]]) -> str:
    """The event kinds as a string, runs of tokens collapsed: 'token+ citations done'."""
    return re.sub(r"(token )+", "token+ ", " ".join(k for k, _ in events) + " ").strip()


def assert_fallback(events: list[tuple[str, Any]], *, error: str) -> dict[str, Any]:
    assert re.fullmatch(r"(token\+ )?error extracted citations done", kinds(events)), kinds(events)
    message = dict(events)["error"]
    assert isinstance(message, str) and re.search(error, message), message
    done = events[-1][1]
    assert done["kind"] == "extracted" and done["error"] == message
    assert "1889" in done["text"]  # the extract still answers from the passages
    citations = dict(events)["citations"]
    assert citations and {c["passage_id"] for c in citations} <= {p.id for p in PASSAGES}
    for s in dict(events)["extracted"]["sentences"]:
        source = next(p for p in PASSAGES if p.id == s["passage_id"])
        assert source.text[s["start"]:s["end"]] == s["text"]
    return done


def assert_cited_only_shown(text: str, citations: list[dict[str, Any]], shown: list[Passage]) -> None:
    ids = {p.id for p in shown}
    assert all(c["passage_id"] in ids and 1 <= c["number"] <= len(shown) for c in citations)
    for group in re.findall(r"(?<![\w)])\[([\d,\s\-–;]+)\]", text):
        assert all(1 <= int(n) <= len(shown) for n in re.findall(r"\d+", group)), text


# ---------------------------------------------------------------------------------------------- fake server


def test_streams_tokens_then_citations_then_done() -> None:
    async def main() -> tuple[list[tuple[str, Any]], FakeLLM]:
        async with FakeLLM("ok", tokens=("Paris", " in", " 1889", " [1]", " and", " [4]", ".")) as fake:
            async with LLMClient(fake.url, "some-model", api_key="sk-test") as client:
                return await events_of(Answerer(client, max_tokens=77, temperature=0.0)), fake

    events, fake = run(main())
    assert kinds(events) == "token+ citations done"
    assert "".join(v for k, v in events if k == "token") == "Paris in 1889 [1] and [4]."
    done = events[-1][1]
    assert done["kind"] == "generated" and done["text"] == "Paris in 1889 [1] and."
    assert done["invalid_citations"] == 1 and done["model"] == "fake-model" and done["finish_reason"] == "stop"
    assert done["tokens"] == 7 and {"prompt", "first_token", "generate", "total"} <= set(done["timings_ms"])
    assert dict(events)["citations"] == [{"number": 1, "passage_id": "doc1#0", "rank": 1}]
    request = fake.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["method"] == "POST"
    assert request["headers"]["authorization"] == "Bearer sk-test"
    body = request["json"]
    assert body["stream"] is True and body["max_tokens"] == 77 and body["temperature"] == 0.0
    assert body["model"] == "some-model"
    assert body["messages"] == build_prompt(QUESTION, PASSAGES)[0]


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_base_url_forms_reach_the_same_path(suffix: str) -> None:
    async def main() -> FakeLLM:
        async with FakeLLM("ok") as fake:
            async with LLMClient(fake.url + suffix) as client:
                assert [d async for d in client.stream_chat([{"role": "user", "content": "hi"}])]
            return fake

    fake = run(main())
    assert [r["path"] for r in fake.requests] == ["/v1/chat/completions"]
    assert "authorization" not in fake.requests[0]["headers"]


def test_complete_returns_one_dict() -> None:
    async def main() -> dict[str, Any]:
        async with FakeLLM("ok") as fake, LLMClient(fake.url) as client:
            return (await Answerer(client).complete(QUESTION, PASSAGES)).as_dict()

    result = run(main())
    assert result["kind"] == "generated" and result["text"] == "Paris is in France [1]."
    assert result["citations"] == [{"number": 1, "passage_id": "doc1#0", "rank": 1}]
    assert result["invalid_citations"] == 0 and "error" not in result


def test_an_answer_that_only_echoes_the_prompt_falls_back() -> None:
    from qa_app.answer import INSTRUCTIONS

    async def main() -> list[tuple[str, Any]]:
        async with FakeLLM("ok", tokens=(INSTRUCTIONS, "\nQuestion: ", "Why?")) as fake, \
                LLMClient(fake.url) as client:
            return await events_of(Answerer(client))

    assert_fallback(run(main()), error="only repeated the prompt")


FAULTS = [
    ("error500", r"HTTP 500.*model exploded"),
    ("hang", r"timed out"),
    ("hang_mid", r"timed out"),
    ("bad_json", r"malformed.*not JSON"),
    ("no_choices", r"malformed.*without choices"),
    ("truncated", r"ended before completion"),
]


@pytest.mark.parametrize(("mode", "error"), FAULTS)
def test_faults_give_an_error_event_and_the_extract(mode: str, error: str) -> None:
    async def main() -> list[tuple[str, Any]]:
        async with FakeLLM(mode) as fake, LLMClient(fake.url, read_timeout=0.3) as client:
            return await events_of(Answerer(client))

    started = time.perf_counter()
    done = assert_fallback(run(main()), error=error)
    assert time.perf_counter() - started < 5
    assert done["model"] == "extractive"


@pytest.mark.parametrize(("mode", "error", "status"), [(m, e, 504 if "hang" in m else 502) for m, e in FAULTS])
def test_client_raises_llm_error_with_status(mode: str, error: str, status: int) -> None:
    async def main() -> None:
        async with FakeLLM(mode) as fake, LLMClient(fake.url, read_timeout=0.3) as client:
            with pytest.raises(LLMError, match=error) as caught:
                async for _ in client.stream_chat([{"role": "user", "content": "hi"}]):
                    pass
            assert caught.value.status == status
            assert isinstance(caught.value, LLMTimeout) == (status == 504)

    run(main())


def test_unreachable_server_falls_back() -> None:
    async def main() -> dict[str, Any]:
        async with LLMClient(f"http://127.0.0.1:{free_port()}/v1", connect_timeout=1) as client:
            return (await Answerer(client).complete(QUESTION, PASSAGES)).as_dict()

    result = run(main())
    assert result["kind"] == "extracted" and "cannot reach the LLM server" in result["error"]
    assert result["citations"][0]["passage_id"] == "doc1#0"


def test_interrupted_stream_is_marked() -> None:
    """A bare [DONE] without finish_reason (llama-cpp-python --interrupt_requests True) is reported."""
    async def main() -> dict[str, Any]:
        async with FakeLLM("interrupted") as fake, LLMClient(fake.url) as client:
            info = StreamInfo()
            texts = [d async for d in client.stream_chat([{"role": "user", "content": "x"}], info=info)]
            assert texts == ["Paris"] and info.finish_reason == "interrupted" and info.model == "fake-model"
            return (await Answerer(client).complete(QUESTION, PASSAGES)).as_dict()

    result = run(main())
    assert result["kind"] == "generated" and result["finish_reason"] == "interrupted"


def test_cancelling_the_consumer_closes_the_upstream_connection() -> None:
    async def main() -> FakeLLM:
        async with FakeLLM("endless", interval=0.01) as fake, LLMClient(fake.url) as client:
            answerer = Answerer(client)
            first_tokens = asyncio.Event()
            seen: list[str] = []

            async def consume() -> None:
                async for event in answerer.stream(QUESTION, PASSAGES):
                    seen.append(event.kind)
                    if len(seen) >= 3:
                        first_tokens.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(first_tokens.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(fake.disconnected.wait(), 2)
            sent = fake.sent
            await asyncio.sleep(0.1)
            assert fake.sent == sent  # nothing more is produced for nobody
            assert set(seen) == {"token"}
            return fake

    run(main())


def test_closing_the_stream_early_closes_the_upstream_connection() -> None:
    async def main() -> None:
        async with FakeLLM("endless", interval=0.01) as fake, LLMClient(fake.url) as client:
            async with aclosing(Answerer(client).stream(QUESTION, PASSAGES)) as events:
                async for event in events:
                    kind, _ = event.kind, event.value
                    assert kind == "token"
                    break
            await asyncio.wait_for(fake.disconnected.wait(), 2)

    run(main())


# ---------------------------------------------------------------------------------------------- real server

REAL_TIMEOUT = 180.0  # a loaded 2-core machine generates a few tokens a second


def real_answerer(server: LLMServer, base_url: str | None = None, **kwargs: Any) -> tuple[LLMClient, Answerer]:
    client = LLMClient(base_url or server.base_url, MODEL_ALIAS, read_timeout=REAL_TIMEOUT)
    return client, Answerer(client, max_tokens=kwargs.pop("max_tokens", 32), temperature=0.0, **kwargs)


async def raw_text(client: LLMClient, question: str, max_tokens: int) -> tuple[str, StreamInfo]:
    info = StreamInfo()
    messages, _ = build_prompt(question, PASSAGES)
    text = "".join([d async for d in client.stream_chat(messages, max_tokens=max_tokens, temperature=0.0,
                                                         info=info)])
    return text, info


def test_real_server_streams_tokens_then_citations_then_done(llm_server: LLMServer) -> None:
    async def main() -> list[tuple[str, Any]]:
        client, answerer = real_answerer(llm_server, max_tokens=40)
        async with client:
            return await events_of(answerer)

    events = run(main())
    done = events[-1][1]
    streamed = "".join(v for k, v in events if k == "token")
    if done["kind"] == "extracted" and MODEL_ALIAS.startswith("gemma"):  # a base model may parrot the prompt
        assert kinds(events) == "token+ error extracted citations done", events
        assert "repeated the prompt" in done["error"]
    else:  # an instruction-tuned model answers
        assert kinds(events) == "token+ citations done", events
        assert done["kind"] == "generated" and done["model"] == MODEL_ALIAS
        assert done["tokens"] >= 1 and done["finish_reason"] in ("stop", "length")
        assert_cited_only_shown(done["text"], dict(events)["citations"], PASSAGES)
        if not done["invalid_citations"]:
            assert done["text"] in streamed
    print(f"\nserver ready in {llm_server.ready_s:.2f} s; {done['tokens']} tokens, "
          f"{done.get('tokens_per_s')} tokens/s, timings {done['timings_ms']}\nstreamed: {streamed!r}\n"
          f"answer ({done['kind']}): {done['text']!r}")


def test_real_server_temperature_zero_is_deterministic(llm_server: LLMServer) -> None:
    """Greedy output repeats exactly for the same prompt and the same server cache state.

    llama-cpp-python reuses the KV cache of the previous request's common prefix, and a prompt evaluated
    in different batch splits gives slightly different numbers (a single-token path vs a batched one):
    after a *different* prompt the same question can get another answer. So: one warm-up with this
    prompt, then two runs that must match, through both base URL forms (with and without /v1).
    """
    async def main() -> list[str]:
        texts = []
        for base in (llm_server.base_url, llm_server.base_url, llm_server.root_url):
            async with LLMClient(base, read_timeout=REAL_TIMEOUT) as client:
                text, info = await raw_text(client, "Where is the Eiffel Tower?", 16)
                assert info.finish_reason in ("stop", "length") and info.model == MODEL_ALIAS
                texts.append(text)
        return texts

    _, first, second = run(main())
    assert first and first == second


def test_real_server_lists_its_model(llm_server: LLMServer) -> None:
    async def main() -> list[str]:
        async with LLMClient(llm_server.root_url) as client:
            return await client.list_models()

    assert run(main()) == [MODEL_ALIAS]


def test_list_models_on_a_dead_server_raises() -> None:
    async def main() -> None:
        async with LLMClient(f"http://127.0.0.1:{free_port()}", connect_timeout=1) as client:
            with pytest.raises(LLMError, match="cannot reach"):
                await client.list_models()

    run(main())


def test_real_server_prompt_over_context_falls_back(llm_server: LLMServer) -> None:
    """A prompt larger than n_ctx: llama-cpp-python answers 200 with an empty stream; that is an error."""
    huge = [passage(1, "Eiffel Tower", PASSAGES[0].text + " filler" * 6000), *PASSAGES[1:]]

    async def main() -> list[tuple[str, Any]]:
        client, answerer = real_answerer(llm_server, max_context_tokens=100_000)
        async with client:
            return [(e.kind, e.value) async for e in answerer.stream(QUESTION, huge)]

    events = run(main())
    assert kinds(events) == "error extracted citations done"
    assert events[-1][1]["kind"] == "extracted" and events[-1][1]["text"]
    assert "context" in dict(events)["error"]


def test_real_server_notices_a_cancelled_consumer(llm_server: LLMServer) -> None:
    async def main() -> None:
        client, answerer = real_answerer(llm_server, max_tokens=400)
        async with client:
            got_token = asyncio.Event()

            async def consume() -> None:
                async for event in answerer.stream(QUESTION, PASSAGES):
                    kind, _ = event.kind, event.value
                    if kind == "token":
                        got_token.set()

            before = llm_server.log_text().count("Disconnected from client")
            task = asyncio.create_task(consume())
            await asyncio.wait_for(got_token.wait(), REAL_TIMEOUT)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            deadline = time.perf_counter() + 30
            while llm_server.log_text().count("Disconnected from client") == before:
                assert time.perf_counter() < deadline, "the server kept generating for a closed client"
                await asyncio.sleep(0.1)
            # and it is free again at once, not still writing 400 tokens for nobody
            text, info = await asyncio.wait_for(raw_text(client, QUESTION, 4), REAL_TIMEOUT)
            assert text and info.finish_reason in ("stop", "length")

    run(main())


def test_real_server_concurrent_answers_are_not_interrupted(llm_server: LLMServer) -> None:
    """Started with --interrupt_requests False, a second request waits instead of cutting the first short."""
    async def main() -> list[tuple[str, StreamInfo]]:
        async with LLMClient(llm_server.base_url, read_timeout=REAL_TIMEOUT) as client:
            return list(await asyncio.gather(raw_text(client, QUESTION, 8),
                                             raw_text(client, "What is bread made of?", 8)))

    for text, info in run(main()):
        assert text and info.finish_reason in ("stop", "length")
