"""The question page in a real Chromium, against `qa-app serve` with real Milvus Lite and the real model."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.app_server import qa_app, serving
from tests.llm_server import fake_llm_thread

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.browser
HERE = Path(__file__).parent
SCREENSHOTS = HERE / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    shutil.copytree(HERE / "corpus", folder / "corpus")
    shutil.copytree(HERE / "xss_corpus", folder / "xss")
    path = folder / "qa.db"
    loaded = qa_app("load", str(folder / "corpus"), str(folder / "xss"), "--milvus-uri", str(path), "--quiet")
    assert loaded.returncode == 0, loaded.stderr
    return path


@pytest.fixture(scope="module")
def app_url(db: Path) -> Iterator[str]:
    with serving(db) as url:
        yield url


class Watched:
    """A page that records dialogs, script errors and console errors: any of them fails the test."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # A 4xx/5xx page load is logged too; the tests assert those statuses themselves.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")


@pytest.fixture
def page(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.problems == []


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def ask_with_js(page: Any, url: str | None, question: str) -> None:
    """Ask through the form with JavaScript; `url` None asks again on the page already open."""
    if url is not None:
        page.goto(url + "/")
    page.fill("#q", question)
    with page.expect_response(lambda r: "/?" in r.url and "q=" in r.url):
        page.press("#q", "Enter")
    page.wait_for_selector("#results:not([aria-busy])")


def first_passage(page: Any) -> str:
    return str(page.locator("li.passage").first.inner_text())


def test_asking_shows_the_expected_passage_first_with_highlights(page: Watched, app_url: str) -> None:
    ask_with_js(page.page, app_url, "which is the largest shield volcano?")
    assert "Mauna Loa" in first_passage(page.page)
    assert page.page.locator("li.passage").first.locator(".crumbs li").all_inner_texts() == [
        "Volcanoes", "Types of volcano"]
    marks = {m.lower() for m in page.page.locator("li.passage mark").all_inner_texts()}
    assert {"largest", "shield", "volcano"} <= marks
    assert "q=which+is+the+largest+shield+volcano" in page.page.url
    screenshot(page.page, "desktop-results")


def test_the_url_reproduces_the_page(page: Watched, app_url: str, browser: Any) -> None:
    ask_with_js(page.page, app_url, "steam locomotive speed record")
    shared = page.page.url
    expected = first_passage(page.page)
    other = browser.new_page()
    other.goto(shared)
    assert first_passage(other) == expected and other.input_value("#q") == "steam locomotive speed record"
    other.close()


@pytest.mark.parametrize("field,value,check", [
    ("contains", "Mauna Loa", lambda text: "Mauna Loa" in text),
    ("source", "bread", lambda text: "bread.txt" in text),
])
def test_each_filter_narrows_the_result(page: Watched, app_url: str, field: str, value: str, check: Any) -> None:
    page.page.goto(app_url + "/")
    page.page.fill("#q", "volcano bread octopus")
    page.page.fill(f"input[name={field}]", value)
    page.page.click("button[type=submit]")
    page.page.wait_for_url(re.compile(rf".*{field}=.*"))
    page.page.wait_for_selector("#results:not([aria-busy]) li.passage")
    texts = page.page.locator("li.passage").all_inner_texts()
    assert texts and all(check(t) for t in texts)
    assert parse_qs(urlparse(page.page.url).query)[field] == [value]


def test_mode_keyword_shows_only_keyword_ranks(page: Watched, app_url: str) -> None:
    page.page.goto(app_url + "/")
    page.page.fill("#q", "sourdough starter")
    page.page.select_option("select[name=mode]", "sparse")
    page.page.click("button[type=submit]")
    page.page.wait_for_selector("#results:not([aria-busy]) li.passage")
    assert page.page.locator(".badge.dense").count() == 0
    assert page.page.locator(".badge.sparse").count() == page.page.locator("li.passage").count() > 0


def test_back_and_forward_restore_earlier_questions(page: Watched, app_url: str) -> None:
    ask_with_js(page.page, app_url, "largest shield volcano")
    ask_with_js(page.page, None, "how many hearts does an octopus have")
    assert "three hearts" in first_passage(page.page)
    page.page.go_back()
    expect(page.page.locator("#q")).to_have_value("largest shield volcano")
    expect(page.page.locator("li.passage").first).to_contain_text("Mauna Loa")
    page.page.go_forward()
    expect(page.page.locator("li.passage").first).to_contain_text("three hearts")


def test_slash_focuses_the_question_box(page: Watched, app_url: str) -> None:
    page.page.goto(app_url + "/?q=bread")
    page.page.locator("body").click(position={"x": 5, "y": 5})
    page.page.keyboard.press("/")
    assert page.page.evaluate("document.activeElement.id") == "q"


def test_the_page_works_with_javascript_disabled(browser: Any, app_url: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    plain = context.new_page()
    plain.goto(app_url + "/")
    plain.fill("#q", "how many hearts does an octopus have")
    plain.press("#q", "Enter")
    plain.wait_for_url(re.compile(r".*q=how\+many.*"))
    assert "three hearts" in first_passage(plain)
    context.close()


def test_script_payloads_in_documents_render_as_inert_text(page: Watched, app_url: str) -> None:
    ask_with_js(page.page, app_url, "zebra payload script")
    texts = " ".join(page.page.locator("li.passage").all_inner_texts())
    assert '<script>alert("body")</script>' in texts
    assert "onerror=alert" in texts
    assert page.page.locator("li.passage script, li.passage img, li.passage svg, li.passage iframe").count() == 0
    # The source view and the raw file too.
    page.page.locator("li.passage a.source").first.click()
    page.page.wait_for_load_state()
    assert "alert(" in page.page.locator("article").inner_text()
    assert page.page.locator("article script, article img").count() == 0
    response = page.page.request.get(app_url + "/source" + str(next(
        p for p in page.page.locator("p.meta").inner_text().split(" · ") if p.startswith("/"))) + "?raw=1")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-security-policy"] == "sandbox"


def test_source_view_refuses_files_that_were_not_loaded(page: Watched, app_url: str) -> None:
    for path in ["/source/etc/passwd", "/source/etc/passwd?raw=1", "/source/../../etc/passwd?raw=1",
                 "/source/%2e%2e/%2e%2e/etc/passwd?raw=1"]:
        response = page.page.request.get(app_url + path)
        assert response.status == 404, path
        assert "root:" not in response.text()


def test_no_results_state_suggests_removing_filters(page: Watched, app_url: str) -> None:
    page.page.goto(app_url + "/?q=volcano&contains=qqqzzzxx")
    assert "No passage matches" in page.page.locator("#results").inner_text()
    assert page.page.locator("a", has_text="without filters").count() == 1


def test_a_filter_error_is_shown_next_to_its_field(page: Watched, app_url: str) -> None:
    page.page.goto(app_url + "/?q=volcano&top_k=500")
    assert "from 1 to 50" in page.page.locator("#err-top_k").inner_text()


def test_mobile_layout_fits_375_pixels(browser: Any, app_url: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    mobile = context.new_page()
    mobile.goto(app_url + "/?q=largest+shield+volcano")
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(mobile, "mobile-results")
    mobile.goto(app_url + "/corpus")
    assert "Passages" in mobile.inner_text("main")
    screenshot(mobile, "mobile-corpus")
    context.close()


def test_every_control_has_a_label(page: Watched, app_url: str) -> None:
    page.page.goto(app_url + "/")
    for label in ["Ask a question", "Must contain", "Source", "Mode", "Passages"]:
        assert page.page.get_by_label(label).count() >= 1, label


def test_corpus_page_lists_sources_and_the_model(page: Watched, app_url: str) -> None:
    page.page.goto(app_url + "/corpus")
    text = page.page.inner_text("main")
    assert "all-MiniLM-L6-v2" in text and "volcanoes.md" in text and "qa-app load PATH" in text
    screenshot(page.page, "desktop-corpus")


def test_empty_collection_tells_the_load_command(browser: Any, tmp_path: Path) -> None:
    with serving(tmp_path / "empty.db") as url:
        empty = browser.new_page()
        empty.goto(url + "/?q=anything")
        assert "No documents loaded yet" in empty.inner_text("#results")
        assert "qa-app load PATH --milvus-uri" in empty.inner_text("#results")
        screenshot(empty, "desktop-empty")
        empty.close()


def test_milvus_down_gives_a_friendly_503_page(browser: Any) -> None:
    with serving("http://127.0.0.1:1", env={"QA_TIMEOUT": "2"}) as url:
        down = browser.new_page()
        response = down.goto(url + "/?q=volcano")
        assert response is not None and response.status == 503
        assert "The search backend is not available" in down.inner_text("main")
        assert "Traceback" not in down.content()
        screenshot(down, "desktop-milvus-down")
        down.close()


def test_a_generated_answer_streams_above_the_passages_with_clickable_citations(browser: Any, db: Path) -> None:
    with fake_llm_thread("ok", tokens=("Mauna Loa", " is", " the", " largest", " shield volcano", " [1]", ".")) as fake:
        with serving(db, env={"QA_LLM_URL": fake.url}) as url:
            page = Watched(browser.new_page())
            ask_with_js(page.page, url, "which is the largest shield volcano?")
            answer = page.page.locator("#answer")
            expect(answer.locator("h2")).to_contain_text("written by fake-model")
            expect(answer.locator(".answer-text")).to_have_text("Mauna Loa is the largest shield volcano [1].")
            assert page.page.locator("#answer ~ ol li.passage").count() == 5  # the answer comes first
            answer.locator("a.cite").click()
            assert page.page.url.endswith("#p-1")
            screenshot(page.page, "desktop-answer")
            assert page.problems == []
            page.page.close()

            plain = browser.new_context(java_script_enabled=False).new_page()
            plain.goto(url + "/?q=which+is+the+largest+shield+volcano%3F")
            assert "sentences extracted from the passages" in plain.inner_text("#answer")
            plain.locator(".write-answer a").click()
            assert "written by fake-model" in plain.inner_text("#answer")
            plain.close()


def test_a_reader_signs_in_and_the_answer_streams_on_the_session_cookie(browser: Any, db: Path, tmp_path: Path) -> None:
    from qa_app.auth import UserFile

    UserFile(tmp_path / "users.json").add("reader1", "reader password", "reader")
    with fake_llm_thread("ok", tokens=("Mauna Loa", " is", " the", " largest", " shield volcano", " [1]", ".")) as fake:
        with serving(db, env={"QA_LLM_URL": fake.url, "QA_DATA_DIR": str(tmp_path)}) as url:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = Watched(context.new_page())
            page.page.goto(url + "/?q=which+is+the+largest+shield+volcano%3F")
            assert urlparse(page.page.url).path == "/signin"  # nothing is shown before signing in
            assert "Mauna Loa" not in page.page.content()
            page.page.fill("#username", "reader1")
            page.page.fill("#password", "wrong password")
            page.page.click("form.signin-form button")
            expect(page.page.locator("#signin-error")).to_have_text("Wrong name or password.")
            page.page.fill("#password", "reader password")
            page.page.click("form.signin-form button")
            answer = page.page.locator("#answer .answer-text")
            expect(answer).to_have_text("Mauna Loa is the largest shield volcano [1].")  # EventSource, with the cookie
            assert "reader1" in page.page.inner_text("header.site")
            cookie = next(c for c in context.cookies() if c["name"] == "qa_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            screenshot(page.page, "desktop-signed-in-answer")
            page.page.click("form.signout button")
            assert urlparse(page.page.url).path == "/signin"
            page.page.goto(url + "/corpus")
            assert urlparse(page.page.url).path == "/signin"  # signed out
            assert page.problems == []
            context.close()
