"""Documents in a real Chromium against `qa-app serve` (real Milvus Lite, the real model): drop a PDF on
the corpus page and watch it load, ask, see its page cited, open the page view with the passage
highlighted; the same without JavaScript; remove the upload from the page."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_server import serving
from tests.test_browser import Watched, ask_with_js, browser, screenshot  # noqa: F401 (browser: a fixture)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.browser
HERE = Path(__file__).parent
MANUAL = HERE / "documents" / "pdf" / "manual.pdf"
QUESTION = "which settings are read from the environment?"

# Every text the progress list shows, in order: a MutationObserver set before the drop sees each
# state, however quickly the events come.
# Every text a state took, in order. The observer runs after the task that made the changes, and one
# chunk of the stream can carry several events handled in one task: reading textContent then would see
# only the last of them. Each assignment adds a new text node, and the record keeps it with its text
# (a row is added with an empty state, then given its text, so that text is such a record too).
WATCH_PROGRESS = """() => {
  window.seenStates = [];
  new MutationObserver(records => {
    for (const record of records) {
      const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
      if (target && target.classList.contains("state")) {
        if (record.type === "characterData") window.seenStates.push(record.target.data);
        for (const node of record.addedNodes) if (node.nodeType === 3) window.seenStates.push(node.data);
      }
    }
  }).observe(document.getElementById("upload-progress"), {childList: true, subtree: true, characterData: true});
}"""
DROP = """([name, data]) => {
  const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: "application/pdf"}));
  const zone = document.getElementById("drop-zone");
  for (const kind of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(kind, {dataTransfer: transfer, bubbles: true, cancelable: true}));
  }
}"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("browser-documents")
    with serving(folder / "qa.db", env={"QA_DATA_DIR": str(folder / "data")}) as url:  # nothing loaded yet
        yield url


def watched(browser: Any, **options: Any) -> Iterator[Watched]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = Watched(context.new_page())
    yield page
    context.close()
    assert page.problems == []  # no script error, no CSP violation, no dialog


@pytest.fixture
def page(browser: Any) -> Iterator[Watched]:  # noqa: F811
    yield from watched(browser)


@pytest.fixture
def page_without_js(browser: Any) -> Iterator[Watched]:  # noqa: F811
    yield from watched(browser, java_script_enabled=False)


def test_drop_a_pdf_watch_it_load_ask_and_open_the_highlighted_page(page: Watched, app_url: str) -> None:
    tab = page.page
    tab.goto(app_url + "/corpus")
    tab.fill("input[name=corpus]", "manuals")
    tab.evaluate(WATCH_PROGRESS)
    tab.evaluate(DROP, ["manual.pdf", base64.b64encode(MANUAL.read_bytes()).decode()])
    expect(tab.locator("#outcome")).to_contain_text("Loaded into manuals: ", timeout=180_000)
    seen: list[str] = tab.evaluate("window.seenStates")
    assert any(s.startswith("received 50 KB") for s in seen), seen
    # The page polls the progress, so it may miss a state; what it saw goes forward page by page, of 4.
    reading = [int(s.split()[2]) for s in seen if s.startswith("reading page ")]
    assert reading and reading == sorted(reading) and all(s.split()[4] == "4" for s in seen
                                                          if s.startswith("reading page ")), seen
    assert any(s.startswith("added: ") and "4 pages read at" in s and "pages/s" in s for s in seen), seen
    assert any(s.startswith("embedding ") and " of " in s for s in seen), seen
    expect(tab.locator("#upload-progress li.status-done")).not_to_have_count(0)
    expect(tab.locator("#sources")).to_contain_text("manual.pdf")  # the table came back with the new source
    screenshot(tab, "corpus-upload")

    ask_with_js(tab, app_url, QUESTION)
    first = tab.locator("li.passage").first
    expect(first).to_contain_text("The settings are read from the environment")
    expect(first.locator(".cite-page")).to_have_text("p. 2")
    with tab.expect_response(lambda r: "/page-image/" in r.url) as image:
        first.locator("a.source").click()
    assert image.value.status == 200 and image.value.headers["content-type"] == "image/png"
    expect(tab.locator("h1")).to_have_text("QA Fixture Manual")
    svg = tab.locator("svg.page-image")
    rects = svg.locator("rect.highlight")
    assert rects.count() >= 4
    frame = svg.bounding_box()
    boxes = [rects.nth(i).bounding_box() for i in range(rects.count())]
    assert all(frame["x"] <= b["x"] and b["x"] + b["width"] <= frame["x"] + frame["width"] + 1 for b in boxes)
    assert boxes[0]["y"] - frame["y"] < frame["height"] / 4  # the passage is near the top of page 2
    expect(tab.locator("a.original")).to_have_attribute("href", re.compile(r"\?raw=1#page=2$"))
    screenshot(tab, "page-view")  # tests/screenshots/page-view.png
    tab.locator("a[rel=next]").click()
    expect(tab.locator(".meta .cite-page")).to_have_text("page 3")
    expect(tab.locator(".notice")).to_contain_text("The passage is on p. 2")


def test_without_javascript_the_form_uploads_and_the_page_view_works(page_without_js: Watched, app_url: str) -> None:
    tab = page_without_js.page
    tab.goto(app_url + "/corpus")
    tab.set_input_files("#upload-files", files=[{"name": "ferry.md", "mimeType": "text/markdown",
                                                 "buffer": b"# Ferry\n\nThe ferry to Mull leaves Oban at 09:55.\n"}])
    tab.click("form.upload button[type=submit]")
    expect(tab.locator(".upload-result")).to_contain_text("ferry.md")
    expect(tab.locator(".upload-result .status-added")).to_contain_text("added: 1 new of 1 passages")
    tab.goto(app_url + "/?q=" + QUESTION.replace(" ", "+"))
    first = tab.locator("li.passage").first
    expect(first.locator(".cite-page")).to_have_text("p. 2")
    first.locator("a.source").click()
    expect(tab.locator("svg.page-image rect.highlight")).not_to_have_count(0)
    tab.locator("a[rel=prev]").click()
    expect(tab.locator(".meta .cite-page")).to_have_text("page 1")


def test_an_upload_is_removed_from_the_page(page: Watched, app_url: str) -> None:
    tab = page.page
    tab.goto(app_url + "/corpus")
    row = tab.locator("#sources tr", has_text="ferry.md")
    expect(row).to_have_count(1)
    row.locator("button", has_text="Remove").click()
    expect(tab.locator("#outcome")).to_contain_text("Removed ferry.md: 1 passage.")
    expect(tab.locator("#sources tr", has_text="ferry.md")).to_have_count(0)
    tab.reload()
    expect(tab.locator("#sources")).not_to_contain_text("ferry.md")
    expect(tab.locator("#sources")).to_contain_text("manual.pdf")  # the other upload stays
