"""The answer checks on the page in a real Chromium, against `qa-app serve` (real Milvus Lite, the real
model) with a scripted OpenAI-compatible server: a streamed sentence its passage does not support is
marked, and a model that declines leaves links that run the next search."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.app_server import serving
from tests.llm_server import fake_llm_thread
from tests.test_browser import Watched, ask_with_js, browser, db  # noqa: F401 (fixtures)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.browser
QUESTION = "which is the largest shield volcano?"


def test_a_streamed_sentence_its_passage_does_not_support_is_marked(browser: Any, db: Path) -> None:  # noqa: F811
    tokens = ("Mauna Loa in Hawaii is the largest shield volcano on Earth [1].",
              " It was first climbed by a team of penguins in 1066 [1].")
    with fake_llm_thread("ok", tokens=tokens) as fake, serving(db, env={"QA_LLM_URL": fake.url}) as url:
        page = Watched(browser.new_page())
        ask_with_js(page.page, url, QUESTION)
        answer = page.page.locator("#answer")
        expect(answer.locator("h2")).to_contain_text("written by fake-model")
        expect(answer.locator("mark.unsupported")).to_have_text("It was first climbed by a team of penguins in 1066 [1].")
        assert answer.locator("mark.unsupported").get_attribute("title") == "not supported by the passage it cites"
        expect(answer.locator(".answer-status")).to_have_text(
            "1 sentence (marked) is not supported by the passages cited: check it in the passages below.")
        expect(answer.locator(".answer-text")).to_have_text("".join(tokens))
        assert page.problems == []
        page.page.close()


def test_a_model_that_declines_leaves_links_that_run_the_next_search(browser: Any, db: Path) -> None:  # noqa: F811
    with fake_llm_thread("ok", tokens=("The passages do not answer", " this question.")) as fake, \
            serving(db, env={"QA_LLM_URL": fake.url}) as url:
        page = Watched(browser.new_page())
        ask_with_js(page.page, url, QUESTION)
        answer = page.page.locator("#answer")
        expect(answer.locator("h2")).to_have_text("The documents do not seem to answer this")
        expect(answer.locator(".answer-text")).to_have_text("The passages do not answer this question.")
        expect(answer.locator(".answer-reason")).to_contain_text("fake-model read the 5 passages")
        keyword = answer.locator("a.next-step[data-action=keyword]")
        assert parse_qs(urlparse(keyword.get_attribute("href") or "").query) == {
            "q": [QUESTION], "mode": ["sparse"], "top_k": ["5"]}
        keyword.click()
        page.page.wait_for_url("**mode=sparse**")
        expect(page.page.locator("select[name=mode]")).to_have_value("sparse")
        assert page.problems == []
        page.page.close()


def test_a_follow_up_on_the_page_shows_the_conversation_and_the_searched_question(browser: Any, db: Path) -> None:  # noqa: F811
    with serving(db) as url:
        page = Watched(browser.new_page())
        ask_with_js(page.page, url, QUESTION)
        first_answer = page.page.locator("#answer .answer-text").inner_text().strip()
        assert first_answer
        ask_with_js(page.page, None, "and how tall is it?")
        conversation = page.page.locator("section.conversation")
        expect(conversation.locator("a.turn-question")).to_have_text([QUESTION])
        expect(conversation.locator(".turn-answer")).to_have_text([first_answer])  # kept by the page, not re-asked
        expect(page.page.locator("p.searched")).to_have_text(f"A follow-up: searched for how tall is it? ({QUESTION})")
        expect(page.page.locator("li.passage").first).to_contain_text("Mauna Loa")
        # the URL alone reproduces the follow-up's search, in a page with nothing stored
        shared = parse_qs(urlparse(page.page.url).query)
        assert shared == {"q": ["and how tall is it?"], "h": [QUESTION], "mode": ["hybrid"], "top_k": ["5"]}
        fresh = Watched(browser.new_page())
        fresh.page.goto(page.page.url)
        expect(fresh.page.locator("p.searched")).to_have_text(f"A follow-up: searched for how tall is it? ({QUESTION})")
        expect(fresh.page.locator("section.conversation a.turn-question")).to_have_text([QUESTION])
        page.page.locator("a.new-conversation").click()
        page.page.wait_for_url(url + "/")
        assert page.problems == [] and fresh.problems == []
        page.page.close()
        fresh.page.close()
