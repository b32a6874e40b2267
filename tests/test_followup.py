"""Follow-up questions: made standalone before retrieval, by rule or by the language model."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from qa_app.answer.rewrite import clean_rewrite
from qa_app.embedding.encoder import DenseEncoder
from qa_app.errors import BadRequest
from qa_app.search.followup import Turn, leans_on_context, parse_history, standalone_question
from qa_app.settings import Settings
from qa_app.web import create_app
from tests.conftest import make_pipeline
from tests.llm_server import fake_llm_thread

SORTING = (Turn("how do I sort a list of dicts by a key?", "Use sorted() with key= [1]."),)


@pytest.mark.unit
@pytest.mark.parametrize(("question", "expected"), [
    ("and for a dict?", "for a dict? (how do I sort a list of dicts by a key?)"),
    ("what about reverse order?", "reverse order? (how do I sort a list of dicts by a key?)"),
    ("is it stable?", "is it stable? (how do I sort a list of dicts by a key?)"),
    ("how do I read a csv file with a header row?", "how do I read a csv file with a header row?"),
])
def test_the_rule_adds_the_last_question_only_to_questions_that_lean_on_it(question: str, expected: str) -> None:
    assert standalone_question(question, SORTING) == expected
    assert standalone_question(question, ()) == question


@pytest.mark.unit
def test_what_reads_as_a_follow_up() -> None:
    assert [leans_on_context(q) for q in ("and for a dict?", "how about tuples", "why?", "does it copy them?",
                                           "what is a generator expression?")] == [True, True, True, True, False]


@pytest.mark.unit
@pytest.mark.parametrize("raw", [{"question": "x"}, [{"q": "x"}], [{"question": 3}], [{"question": "x", "extra": 1}],
                                 [{"question": "x" * 2001}], [{"question": "x"}] * 51])
def test_a_malformed_history_is_a_400_naming_the_field(raw: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_history(raw)
    assert caught.value.field == "history"


@pytest.mark.unit
def test_only_the_last_turns_are_kept_and_empty_questions_dropped() -> None:
    turns = parse_history([{"question": f"q{i}"} for i in range(9)] + [{"question": "  "}])
    assert [t.question for t in turns] == ["q3", "q4", "q5", "q6", "q7", "q8"]


@pytest.mark.unit
@pytest.mark.parametrize(("text", "expected"), [
    ("Where is the largest shield volcano?", "Where is the largest shield volcano?"),
    ('Rewritten question: "Where is Mauna Loa?"\n', "Where is Mauna Loa?"),
    ("\n\n", None),
    ("x" * 400, None),
])
def test_what_the_model_writes_is_kept_only_when_it_is_a_question(text: str, expected: str | None) -> None:
    assert clean_rewrite(text, "and where is it?") == expected


def test_without_an_llm_a_follow_up_is_searched_with_the_question_it_follows(loaded: Settings,
                                                                            encoder: DenseEncoder) -> None:
    with TestClient(create_app(loaded, make_pipeline(loaded, encoder))) as client:
        alone = client.post("/ask", json={"question": "and how tall is it?", "top_k": 3}).json()
        followed = client.post("/ask", json={"question": "and how tall is it?", "top_k": 3, "history": [
            {"question": "which is the largest shield volcano?", "answer": "Mauna Loa [1]."}]}).json()
    assert alone["searched_question"] is None
    assert followed["searched_question"] == "how tall is it? (which is the largest shield volcano?)"
    assert "Mauna Loa" in followed["passages"][0]["text"]


def test_with_an_llm_the_model_writes_the_standalone_question(loaded: Settings, encoder: DenseEncoder) -> None:
    with fake_llm_thread("ok", tokens=("How tall", " is Mauna Loa", "?")) as fake:
        settings = loaded.replace(llm_url=fake.url)
        with TestClient(create_app(settings, make_pipeline(settings, encoder))) as client:
            body = client.post("/ask", json={"question": "and how tall is it?", "history": [
                {"question": "which is the largest shield volcano?", "answer": "Mauna Loa [1]."}]}).json()
    assert body["searched_question"] == "How tall is Mauna Loa?"
    assert "Mauna Loa" in body["passages"][0]["text"]
    prompt = fake.requests[0]["json"]["messages"]  # type: ignore[index]
    assert prompt[0]["role"] == "system" and "which is the largest shield volcano?" in prompt[1]["content"]


def test_the_page_keeps_the_conversation_and_its_url_reproduces_the_follow_up(loaded: Settings,
                                                                             encoder: DenseEncoder) -> None:
    with TestClient(create_app(loaded, make_pipeline(loaded, encoder))) as client:
        first = client.get("/", params={"q": "which is the largest shield volcano?"})
        follow = client.get("/", params=[("q", "and how tall is it?"), ("h", "which is the largest shield volcano?")])
        stream = client.get("/ask/stream", params=[("q", "and how tall is it?"),
                                                   ("h", "which is the largest shield volcano?")])
        as_json = client.get("/ask", params=[("q", "and how tall is it?"), ("h", "which is the largest shield volcano?")])
    # the first page's form carries its question, so the next one is asked as its follow-up
    assert '<input type="hidden" name="h" value="which is the largest shield volcano?">' in first.text
    assert "Earlier in this conversation" not in first.text and 'class="searched"' not in first.text
    page = follow.text
    assert "Earlier in this conversation" in page and ">which is the largest shield volcano?</a>" in page
    assert "searched for <q>how tall is it? (which is the largest shield volcano?)</q>" in page
    hidden = [line for line in page.split("<input") if 'name="h"' in line]
    assert len(hidden) == 2  # the earlier question and this one, oldest first
    assert as_json.json()["searched_question"] == "how tall is it? (which is the largest shield volcano?)"
    assert "Mauna Loa" in as_json.json()["passages"][0]["text"]
    assert '"searched_question": "how tall is it? (which is the largest shield volcano?)"' in stream.text
