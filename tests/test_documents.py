"""Documents from the browser, over the real app, the real model and Milvus Lite: uploads (limits,
wrong types, lying names, the same file twice, a changed file, an unreadable replacement), the
progress stream, removal, citations with pages, the page view, and `qa-app load` / `ask` on a PDF."""

from __future__ import annotations

import json
import re
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from qa_app.auth import Accounts, TokenFile, UserFile
from qa_app.embedding.encoder import DenseEncoder
from qa_app.service import QAService
from qa_app.settings import Settings
from qa_app.web import create_app
from qa_app.web.views import PDF_POLICY
from tests.app_server import qa_app
from tests.conftest import CORPUS, make_pipeline
from tests.test_pdf_reader import make_scanned_pdf

DOCUMENTS = Path(__file__).parent / "documents"
MANUAL = DOCUMENTS / "pdf" / "manual.pdf"
R_INTRO = Path("/usr/share/R/doc/manual/R-intro.pdf")
needs_r_intro = pytest.mark.skipif(not R_INTRO.exists(), reason=f"{R_INTRO} missing (apt-get install r-doc-pdf)")
SETTINGS_QUESTION = "which settings are read from the environment?"
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the real argon2id, cheap parameters


@dataclass
class Site:
    client: TestClient
    settings: Settings
    folder: Path
    service: QAService

    def upload(self, *files: tuple[str, bytes], corpus: str | None = None, accept: str = "application/json",
               **headers: str) -> Any:
        self.client.cookies.clear()  # no session: a script, which needs no CSRF token with authentication off
        data = {"corpus": corpus} if corpus else {}
        return self.client.post("/documents", data=data, files=[("files", (name, body)) for name, body in files],
                                headers={"Accept": accept, **headers})

    def ask(self, question: str, **extra: Any) -> list[dict[str, Any]]:
        response = self.client.post("/ask", json={"question": question, "top_k": 10, **extra})
        assert response.status_code == 200, response.text
        passages: list[dict[str, Any]] = response.json()["passages"]
        return passages

    def sources(self) -> dict[str, int]:
        sources: dict[str, int] = self.client.get("/corpus.json").json()["sources"]
        return sources


def open_site(folder: Path, encoder: DenseEncoder, **changes: Any) -> Iterator[Site]:
    settings = Settings(milvus_uri=str(folder / "qa.db"), data_dir=str(folder / "data"), **changes)
    service = make_pipeline(settings, encoder)
    with TestClient(create_app(settings, service)) as client:
        yield Site(client, settings, folder, service)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, encoder: DenseEncoder) -> Iterator[Site]:
    yield from open_site(tmp_path_factory.mktemp("documents"), encoder)


def blank_pdf(path: Path, base: Path | None = None) -> bytes:
    """A PDF with one more page without any text: the whole file (base None), or after `base`'s pages."""
    document = pdfium.PdfDocument(str(base)) if base else pdfium.PdfDocument.new()
    document.new_page(595, 842)
    document.save(str(path))
    document.close()
    return path.read_bytes()


def events(stream: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a text/event-stream body."""
    found = []
    for block in stream.strip().split("\n\n"):
        kind = re.search(r"^event: (.+)$", block, re.M)
        data = re.search(r"^data: (.+)$", block, re.M)
        assert kind and data, block
        found.append((kind.group(1), json.loads(data.group(1))))
    return found


def assert_error(response: Any, status: int, fragment: str, field: str | None = "files") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["ok"], body["status"]) == (False, status)
    assert fragment in body["error"], body["error"]
    assert body.get("field") == field


# --- citations with pages --------------------------------------------------------------------------


def test_an_uploaded_pdf_loads_and_its_passages_carry_their_pages(site: Site) -> None:
    response = site.upload(("manual.pdf", MANUAL.read_bytes()), corpus="manuals")
    assert response.status_code == 200, response.text
    body = response.json()
    [file] = body["files"]
    kept = site.settings.uploads_path.resolve() / "manuals" / "manual.pdf"
    assert (file["name"], file["source"], file["status"], file["pages"]) == ("manual.pdf", str(kept), "added", 4)
    assert file["passages"] == file["new"] == body["report"]["passages_added"] > 5
    assert kept.read_bytes() == MANUAL.read_bytes()
    assert body["report"]["pages_read"] == 4 and body["report"]["notes"] == []
    found = site.ask(SETTINGS_QUESTION)[0]
    assert found["text"].startswith("The settings are read from the environment")
    assert (found["page"], found["page_end"], found["page_label"], found["format"]) == (2, 2, "", "pdf")
    assert found["corpus"] == "manuals"
    straddling = [p for p in site.ask("paragraph that runs over a page break", top_k=20) if p["page_end"] > p["page"]]
    assert straddling and (straddling[0]["page"], straddling[0]["page_end"]) == (3, 4)


def test_the_question_page_cites_the_page_and_links_the_page_view(site: Site) -> None:
    page = site.client.get("/", params={"q": SETTINGS_QUESTION}).text
    first = page[page.index('<li class="passage" id="p-1">'):page.index('<li class="passage" id="p-2">')]
    link = re.search(r'<a class="source" href="([^"]+)">manual.pdf</a> <span class="cite-page">p\. 2</span>', first)
    assert link, first
    assert re.fullmatch(r"http://testserver/page/.+/manuals/manual\.pdf\?page=2&amp;passage=[0-9a-f]{32}", link.group(1))
    straddling = site.client.get("/", params={"q": "paragraph that runs over a page break", "top_k": 20}).text
    assert '<span class="cite-page">pp. 3–4</span>' in straddling
    source_link = re.search(r'<a class="source" href="[^"]*/source/[^"]+">', site.client.get("/", params={"q": "x"}).text)
    assert source_link is None  # only the PDF is loaded so far: every passage links its page


def test_slides_are_cited_as_slides_and_link_their_passages(site: Site) -> None:
    slides = site.upload(("slides.pptx", (DOCUMENTS / "office" / "lo_slides.pptx").read_bytes()), corpus="talks")
    assert slides.status_code == 200 and slides.json()["files"][0]["status"] == "added"
    page = site.client.get("/", params={"q": "how many anemones were counted?", "corpus": "talks"}).text
    first = page[page.index('<li class="passage" id="p-1">'):]
    assert re.search(r'<a class="source" href="[^"]*/source/[^"]*slides\.pptx\?passage=[^"]+">(talks/)?slides\.pptx</a> '
                     r'<span class="cite-page">slide 3</span>', first), first[:3000]


# --- the page view ---------------------------------------------------------------------------------


def test_the_page_view_shows_the_page_with_the_passage_highlighted(site: Site) -> None:
    found = site.ask(SETTINGS_QUESTION)[0]
    response = site.client.get("/page" + found["source"], params={"page": 2, "passage": found["id"]})
    assert response.status_code == 200, response.text
    html = response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]  # the app's policy: no inline code
    assert " style=" not in html and "<script>" not in html
    svg = re.search(r'<svg class="page-image" viewBox="0 0 595\.30 841\.89".*?</svg>', html, re.S)
    assert svg, html[:2000]
    assert re.search(r'<image href="[^"]*/page-image/[^"]*manual\.pdf\?page=2"', svg.group(0))
    rects = [tuple(float(v) for v in m) for m in re.findall(
        r'<rect class="highlight" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg.group(0))]
    assert len(rects) >= 4  # one per line of the passage (its first line, the table rows, ...)
    for x, y, width, height in rects:
        assert x >= 0 and y >= 0 and x + width <= 596 and y + height <= 842
    assert min(y for _, y, _, _ in rects) < 200  # the passage is at the top of page 2 (y counts from the top)
    assert 'rel="prev" href="http://testserver/page/' in html and "?page=1&amp;passage=" in html
    assert 'rel="next"' in html and "?page=3&amp;passage=" in html
    assert re.search(r'class="original" href="[^"]*/source/[^"]*manual\.pdf\?raw=1#page=2"', html)
    assert "Passages on this page" in html and 'class="marked"' in html


def test_the_page_image_is_a_cached_png(site: Site) -> None:
    source = next(s for s in site.sources() if s.endswith("manual.pdf"))
    first = site.client.get("/page-image" + source, params={"page": 3})
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert first.headers["cache-control"] == "private, max-age=86400"
    width, height = struct.unpack(">II", first.content[16:24])
    assert (width, height) == (893, 1263)  # A4 at 1.5 pixels per point
    cached = list(site.settings.page_cache_path.glob("*.png"))
    assert cached and any(p.read_bytes() == first.content for p in cached)
    again = site.client.get("/page-image" + source, params={"page": 3}, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304  # the browser's copy is still good


def test_the_page_view_refuses_what_is_not_a_loaded_pdf_page(site: Site) -> None:
    source = next(s for s in site.sources() if s.endswith("manual.pdf"))
    for path, params, status, says in [
        ("/page" + source, {"page": 5}, 404, "no page 5: manual.pdf has 4 pages"),
        ("/page" + source, {"page": 0}, 404, "no page 0"),
        ("/page" + source, {"page": "two"}, 400, "page must be a page number"),
        ("/page/etc/passwd", {"page": 1}, 404, "is not a loaded source"),
        ("/page-image/etc/passwd", {"page": 1}, 404, "is not a loaded source"),
        ("/page-image" + source, {"page": 99}, 404, "no page 99"),
        ("/page" + str(MANUAL.resolve()), {"page": 1}, 404, "is not a loaded source"),  # on disk, but never loaded
    ]:
        response = site.client.get(path, params=params, headers={"Accept": "application/json"})
        assert response.status_code == status and says in response.json()["error"], (path, response.text)


def test_links_hold_names_with_spaces_hashes_and_percent_signs(site: Site) -> None:
    name = "manual #2 (100% draft).pdf"
    site.upload((name, MANUAL.read_bytes()), corpus="odd")
    page = site.client.get("/", params={"q": SETTINGS_QUESTION, "corpus": "odd"}).text
    link = re.search(r'<a class="source" href="http://testserver(/page/[^"]+)">', page)
    assert link and "%20%232%20%28100%25%20draft%29.pdf?page=2&amp;passage=" in link.group(1), page[-3000:]
    view = site.client.get(link.group(1).replace("&amp;", "&"))
    assert view.status_code == 200 and '<rect class="highlight"' in view.text
    image = re.search(r'<image href="http://testserver([^"]+)"', view.text)
    assert image and site.client.get(image.group(1)).headers["content-type"] == "image/png"
    original = re.search(r'class="original" href="http://testserver([^"#]+)#page=2"', view.text)
    assert original and site.client.get(original.group(1)).content == MANUAL.read_bytes()
    site.client.cookies.clear()
    source = str(site.settings.uploads_path.resolve() / "odd" / name)
    assert site.client.delete("/documents", params={"source": source}).status_code == 200  # out of the others' way


def test_a_passage_on_another_page_is_offered_there(site: Site) -> None:
    found = site.ask(SETTINGS_QUESTION)[0]
    html = site.client.get("/page" + found["source"], params={"page": 1, "passage": found["id"]}).text
    assert "The passage is on p. 2" in html and "?page=2&amp;passage=" in html
    assert '<rect class="highlight"' not in html


def test_the_original_pdf_is_served_as_a_pdf_in_a_sandbox(site: Site) -> None:
    source = next(s for s in site.sources() if s.endswith("manual.pdf"))
    raw = site.client.get("/source" + source, params={"raw": 1})
    assert raw.status_code == 200 and raw.content == MANUAL.read_bytes()
    assert raw.headers["content-type"] == "application/pdf"
    assert raw.headers["content-security-policy"] == PDF_POLICY
    assert raw.headers["content-disposition"] == 'inline; filename="manual.pdf"'
    assert raw.headers["x-content-type-options"] == "nosniff"


# --- uploads: the incremental loader, refusals ---------------------------------------------------


def test_the_same_file_twice_adds_nothing(site: Site) -> None:
    before = site.sources()
    again = site.upload(("manual.pdf", MANUAL.read_bytes()), corpus="manuals").json()
    assert again["files"][0]["status"] == "unchanged" and again["files"][0]["new"] == 0
    report = again["report"]
    assert (report["files_unchanged"], report["passages_added"], report["passages_removed"]) == (1, 0, 0)
    assert site.sources() == before


def test_a_changed_file_replaces_its_passages(site: Site) -> None:
    first = site.upload(("notes.md", b"# Notes\n\nThe ferry to Tobermory leaves at nine every morning.\n")).json()
    assert first["files"][0]["status"] == "added" and first["corpus"] == "default"
    changed = site.upload(("notes.md", b"# Notes\n\nThe ferry to Tobermory now leaves at ten on Sundays.\n")).json()
    assert changed["files"][0]["status"] == "updated"
    assert (changed["report"]["passages_added"], changed["report"]["passages_removed"]) == (1, 1)
    texts = [p["text"] for p in site.ask("when does the ferry to Tobermory leave?")]
    assert any("ten on Sundays" in t for t in texts) and not any("nine every morning" in t for t in texts)


def test_an_unreadable_replacement_keeps_the_file_and_its_passages(site: Site, tmp_path: Path) -> None:
    site.upload(("guide.pdf", MANUAL.read_bytes()), corpus="manuals")
    kept = site.settings.uploads_path.resolve() / "manuals" / "guide.pdf"
    passages = site.sources()[str(kept)]
    # A PDF that opens (it passes the upload's checks) but has no text at all: the reader refuses it.
    response = site.upload(("guide.pdf", blank_pdf(tmp_path / "blank.pdf")), corpus="manuals")
    assert response.status_code == 200, response.text
    [file] = response.json()["files"]
    assert (file["status"], file["kept"]) == ("skipped", False)
    assert file["reason"].startswith("no text layer: 1 pages without text")
    assert kept.read_bytes() == MANUAL.read_bytes()  # the file that was there is back
    assert site.sources()[str(kept)] == passages
    assert not any((site.settings.uploads_path / "manuals" / ".replaced").iterdir())


@pytest.mark.parametrize("files,status,says", [
    ([("setup.exe", b"MZ\x90\x00")], 415, "setup.exe: files of type .exe cannot be read; accepted: .csv"),
    ([("report.pdf", b"<!DOCTYPE html><html><body>not a PDF</body></html>")], 415,
     "report.pdf is named .pdf but is not a PDF: it is an HTML page"),
    ([("deck.pptx", (DOCUMENTS / "office" / "lo_report.docx").read_bytes())], 422,
     "deck.pptx: not a PPTX file: it is a DOCX file"),
    ([("notes.txt", MANUAL.read_bytes())], 415, "notes.txt is named .txt but is not text: it is a PDF"),
    ([("secret.pdf", (DOCUMENTS / "pdf" / "encrypted.pdf").read_bytes())], 422, "secret.pdf: encrypted PDF"),
    ([("empty.md", b"")], 422, "empty.md: the file is empty"),
    ([("../../../etc/cron.d/evil.md", b"# x")], 400, "a file name may not contain / or \\"),
    ([(".htaccess.txt", b"x")], 400, "hidden file names"),
    ([("a.md", b"# a"), ("a.md", b"# b")], 400, "a.md is twice in this upload"),
])
def test_a_refused_upload_says_why_and_keeps_nothing(site: Site, files: list[tuple[str, bytes]], status: int,
                                                    says: str) -> None:
    before = site.sources()
    response = site.upload(*files)
    if files[0][0] == files[-1][0] and len(files) > 1:  # the same name twice: the first loads, the second is refused
        assert response.status_code == 200 and response.json()["files"][1]["reason"].endswith(says)
        return
    assert_error(response, status, says)
    assert site.sources() == before
    assert not [p for p in site.settings.uploads_path.rglob("*") if p.is_file() and p.name in {n for n, _ in files}
                and p.parent.name != "manuals"]


def test_hostile_files_are_refused_one_by_one_and_the_rest_loads(site: Site) -> None:
    bomb = DOCUMENTS / "office" / "encrypted.docx"
    response = site.upload(("fake.pdf", b"<html>hi</html>"), ("locked.docx", bomb.read_bytes()),
                           ("tides.md", b"# Tides\n\nHigh water at Oban is at 14:05 today.\n"))
    assert response.status_code == 200, response.text
    files = {f["name"]: f for f in response.json()["files"]}
    assert (files["fake.pdf"]["status"], files["fake.pdf"]["error_status"]) == ("refused", 415)
    assert files["locked.docx"]["status"] == "refused" and "encrypted DOCX" in files["locked.docx"]["reason"]
    assert files["tides.md"]["status"] == "added"
    assert any("14:05" in p["text"] for p in site.ask("when is high water at Oban?"))


def test_malformed_requests_get_a_json_error(site: Site) -> None:
    site.client.cookies.clear()
    assert_error(site.client.post("/documents", json={"files": []}), 400, "send the files as multipart/form-data")
    assert_error(site.client.post("/documents", data={"corpus": "docs"}, files={"other": ("", b"")}), 400,
                 "no files in the upload")
    assert_error(site.upload(("a.md", b"# a"), corpus="9 bad name"), 400, "corpus name '9 bad name' must start",
                 field="corpus")
    broken = site.client.post("/documents", content=b"--B\r\nContent-Disposition: form-data; name=\"files\"; "
                              b"filename=\"a.md\"\r\n\r\n# a", headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert_error(broken, 400, "the upload ended in the middle of a file")


# --- the progress stream ---------------------------------------------------------------------------


@needs_r_intro
def test_a_long_pdf_streams_its_progress_and_cites_printed_page_numbers(site: Site) -> None:
    response = site.upload(("R-intro.pdf", R_INTRO.read_bytes()), corpus="manuals", accept="text/event-stream")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    got = events(response.text)
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "received" and kinds[-1] == "done"
    assert got[0][1]["files"] == [{"name": "R-intro.pdf", "size": R_INTRO.stat().st_size, "status": "received"}]
    pages = [data for kind, data in got if kind == "reading" and data["unit"] == "page"]
    assert pages[-1]["done"] == pages[-1]["total"] == 113 and pages[-1]["name"] == "R-intro.pdf"
    assert [p["done"] for p in pages] == sorted(p["done"] for p in pages) and len(pages) >= 10
    assert any(p["rate"] > 0 and p["eta"] is not None for p in pages)  # pages/s and the time left
    [(_, read)] = [(k, d) for k, d in got if k == "file"]
    assert (read["status"], read["pages"], read["new"]) == ("added", 113, read["passages"])
    embedded = [data for kind, data in got if kind == "embedding"]
    assert embedded[-1]["done"] == embedded[-1]["total"] == read["new"]
    assert len(embedded) >= 4 and any(e["eta"] is not None for e in embedded[:-1])  # every 64 passages, with ETA
    assert kinds.index("file") < kinds.index("embedding") < kinds.index("done")
    done = got[-1][1]
    assert done["ok"] and done["report"]["passages_added"] == read["new"] and done["files"][0]["pages"] == 113
    # Passages of R-intro are cited by the page numbers printed on them: page 42 of the file is p. 36.
    tables = next(p for p in site.ask("R as a set of statistical tables", filter={"source": "R-intro"})
                  if p["text"].startswith("One convenient use of R"))
    assert (tables["page"], tables["page_label"]) == (42, "36")
    html = site.client.get("/", params={"q": "R as a set of statistical tables", "source": "R-intro"}).text
    assert '<span class="cite-page" title="page 42 of the file">p. 36</span>' in html
    view = site.client.get("/page" + tables["source"], params={"page": 42, "passage": tables["id"]}).text
    assert '<span class="cite-page" title="page 42 of the file">p. 36</span>' in view and "of 113 pages" in view
    assert view.count('<rect class="highlight"') >= 3


def test_a_stream_reports_refused_files_first_and_a_bad_file_per_file(site: Site, tmp_path: Path) -> None:
    response = site.upload(("blank.pdf", blank_pdf(tmp_path / "blank.pdf")), ("fake.docx", b"just text"),
                           ("tide.txt", b"Low water at Oban is at 20:10.\n"), accept="text/event-stream")
    got = events(response.text)
    received = {f["name"]: f for f in got[0][1]["files"]}
    assert received["fake.docx"]["status"] == "refused" and received["fake.docx"]["error_status"] == 415
    assert "is named .docx but is not one: it is text" in received["fake.docx"]["reason"]
    reads = {data["name"]: data for kind, data in got if kind == "file"}
    assert reads["blank.pdf"]["status"] == "skipped" and "no text layer" in reads["blank.pdf"]["reason"]
    assert reads["tide.txt"]["status"] == "added"
    done = got[-1][1]
    assert {f["name"]: f["status"] for f in done["files"]} == {"blank.pdf": "skipped", "fake.docx": "refused",
                                                               "tide.txt": "added"}


# --- removal ---------------------------------------------------------------------------------------


def test_removing_an_upload_deletes_its_passages_and_its_file(site: Site) -> None:
    site.upload(("leaving.md", b"# Leaving\n\nThe lighthouse keeper retired in 1998.\n"), corpus="notes")
    kept = site.settings.uploads_path.resolve() / "notes" / "leaving.md"
    assert str(kept) in site.sources() and kept.exists()
    site.client.cookies.clear()
    removed = site.client.delete("/documents", params={"source": str(kept), "corpus": "notes"})
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"ok": True, "source": str(kept), "corpus": "notes", "passages_removed": 1}
    assert str(kept) not in site.sources() and not kept.exists()
    assert not any("lighthouse keeper" in p["text"] for p in site.ask("when did the lighthouse keeper retire?"))
    again = site.client.delete("/documents", params={"source": str(kept)})
    assert_error(again, 404, "is not an uploaded file", field=None)


def test_only_uploaded_files_can_be_removed(site: Site, encoder: DenseEncoder) -> None:
    loaded = site.folder / "loaded"
    shutil.copytree(CORPUS, loaded)
    site.client.cookies.clear()
    volcanoes = str((loaded / "volcanoes.md").resolve())
    # Loaded as `qa-app load` or `serve --watch` would, by the app's own service (on the app's event loop).
    site.client.portal.call(site.service.load, [loaded / "volcanoes.md"])  # type: ignore[union-attr]
    assert volcanoes in site.sources()
    for source in (volcanoes, "/etc/passwd", str(site.settings.uploads_path.resolve() / ".incoming" / "x.md")):
        assert_error(site.client.delete("/documents", params={"source": source}), 404, "is not an uploaded file",
                     field=None)
    assert volcanoes in site.sources() and (loaded / "volcanoes.md").exists()
    wrong = site.client.delete("/documents", params={"source": next(s for s in site.sources() if "manuals" in s),
                                                     "corpus": "default"})
    assert_error(wrong, 400, "is in corpus 'manuals', not 'default'", field="corpus")


def test_the_corpus_page_uploads_and_removes_without_javascript(site: Site) -> None:
    site.client.cookies.clear()
    page = site.client.get("/corpus")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token and 'enctype="multipart/form-data"' in page.text and 'id="drop-zone"' in page.text
    posted = site.client.post("/documents", data={"csrf_token": token.group(1), "corpus": "notes"},
                              files=[("files", ("owls.md", b"# Owls\n\nA barn owl swallows its prey whole.\n"))],
                              headers={"Accept": "text/html"})
    assert posted.status_code == 200 and "text/html" in posted.headers["content-type"]
    assert re.search(r'<li class="file status-added"><span class="name">owls.md</span>\s*<span class="state">added: 1 '
                     r'new of 1 passages', posted.text), posted.text[-3000:]
    kept = str(site.settings.uploads_path.resolve() / "notes" / "owls.md")
    assert f'<input type="hidden" name="source" value="{kept}">' in posted.text  # its Remove button
    refused = site.client.post("/documents", data={"csrf_token": token.group(1)},
                               files=[("files", ("owls.exe", b"MZ"))], headers={"Accept": "text/html"})
    assert refused.status_code == 415 and "owls.exe: files of type .exe cannot be read" in refused.text
    removed = site.client.post("/documents/remove", data={"csrf_token": token.group(1), "source": kept, "corpus": "notes"},
                               headers={"Accept": "text/html"})
    assert removed.status_code == 200 and "Removed" in removed.text and "1 passage." in removed.text
    assert kept not in site.sources()
    forged = site.client.post("/documents/remove", data={"source": kept}, headers={"Accept": "text/html"})
    assert forged.status_code == 403  # a session's form must bring its CSRF token


# --- limits and who may upload ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, encoder: DenseEncoder) -> Iterator[Site]:
    yield from open_site(tmp_path_factory.mktemp("limited"), encoder, max_upload_mb=0.03, max_upload_files=2)


def test_the_size_and_count_limits(limited: Site) -> None:
    too_big = limited.upload(("manual.pdf", MANUAL.read_bytes()))  # 50 KB, over 0.03 MB
    assert_error(too_big, 413, "manual.pdf is larger than the 0.03 MB a file may be (QA_MAX_UPLOAD_MB)")
    too_many = limited.upload(("a.md", b"# a"), ("b.md", b"# b"), ("c.md", b"# c"))
    assert_error(too_many, 413, "more than 2 files in one upload (QA_MAX_UPLOAD_FILES)")
    mixed = limited.upload(("manual.pdf", MANUAL.read_bytes()), ("small.md", b"# Small\n\nA small file.\n")).json()
    assert [f["status"] for f in mixed["files"]] == ["refused", "added"] and mixed["files"][0]["error_status"] == 413
    limited.client.cookies.clear()
    declared = limited.client.post("/documents", content=b"x" * 10,
                                   headers={"Content-Type": "multipart/form-data; boundary=B",
                                            "Content-Length": str(10 * 2**20)})
    assert_error(declared, 413, "is larger than 2 files of 0.03 MB")
    assert not list((limited.settings.uploads_path / "default").glob("manual*"))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, encoder: DenseEncoder) -> Iterator[tuple[Site, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("guarded")
    settings = Settings(milvus_uri=str(folder / "qa.db"), data_dir=str(folder / "data"))
    tokens = TokenFile(settings.tokens_path)
    UserFile(settings.users_path, FAST).add("ed", "editor password", "editor")
    headers = {"reader": tokens.add("reader", "reader"), "editor": tokens.add("editor", "editor")}
    service = make_pipeline(settings, encoder)
    with TestClient(create_app(settings, service, accounts=Accounts(settings, FAST))) as client:
        yield Site(client, settings, folder, service), headers


def test_with_authentication_on_only_editors_upload_and_remove(guarded: tuple[Site, dict[str, str]]) -> None:
    site, tokens = guarded
    note = ("kept.md", b"# Kept\n\nOnly editors may add this.\n")
    assert_error(site.upload(note), 401, "sign in", field=None)
    assert_error(site.upload(note, Authorization=f"Bearer {tokens['reader']}"), 403, "needs the editor role", field=None)
    assert not site.settings.uploads_path.exists() or not list(site.settings.uploads_path.rglob("kept.md"))
    loaded = site.upload(note, Authorization=f"Bearer {tokens['editor']}")
    assert loaded.status_code == 200 and loaded.json()["files"][0]["status"] == "added"
    source = loaded.json()["files"][0]["source"]
    reader = {"Authorization": f"Bearer {tokens['reader']}"}
    assert site.client.delete("/documents", params={"source": source}, headers=reader).status_code == 403
    page = site.client.get("/corpus", headers={**reader, "Accept": "text/html"})
    assert "upload-form" not in page.text and "remove-document" not in page.text  # a reader sees neither
    site.client.cookies.clear()
    signin = site.client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', signin.text)
    assert token
    site.client.post("/signin", data={"csrf_token": token.group(1), "username": "ed", "password": "editor password", "next": "/"})
    editor_page = site.client.get("/corpus").text
    assert "upload-form" in editor_page and f'name="source" value="{source}"' in editor_page
    gone = site.client.delete("/documents", params={"source": source},
                              headers={"Authorization": f"Bearer {tokens['editor']}"})
    assert gone.status_code == 200 and gone.json()["passages_removed"] == 1


# --- the command line ------------------------------------------------------------------------------


def test_qa_app_load_reports_pages_and_notes_and_ask_prints_the_page(tmp_path: Path) -> None:
    pdf = make_scanned_pdf(tmp_path / "scan-and-text.pdf", with_text_pages=True)  # a scan, then pages 2-4
    db = str(tmp_path / "cli.db")
    no_ocr = {"PATH": str(tmp_path)}  # no tesseract on this PATH: the scanned page is reported, not read
    loaded = qa_app("load", str(pdf), "--milvus-uri", db, env=no_ocr)
    assert loaded.returncode == 0, loaded.stderr
    assert "pages: 4 read in" in loaded.stdout and "pages/s)" in loaded.stdout
    assert f"note {pdf}: 1 pages without text skipped" in loaded.stderr
    assert re.search(r"scan-and-text\.pdf: +\d+%\|.*\| \d/4 \[", loaded.stderr), loaded.stderr[-2000:]  # its pages bar
    asked = qa_app("ask", SETTINGS_QUESTION, "--plain", "--no-answer", "--milvus-uri", db)
    assert asked.returncode == 0, asked.stderr
    assert f"    {pdf}, p. 2 (score" in asked.stdout.split("\n[2]")[0]  # (JSON lines carry page, page_end, ...)
