"""The parts of uploads and citations that need no model or Milvus: file names, what a file's bytes
are (real PDF, Office and EPUB files from tests/documents, hostile ones made here), the upload folder
(replace, restore), page citations and progress figures."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from qa_app.errors import BadRequest, PayloadTooLarge, ReadError, UnsupportedFile
from qa_app.ingest.progress import ProgressBars
from qa_app.ingest.uploads import IncomingFile, Received, UploadStore, check_content, clean_name, file_digest
from qa_app.models import LoadProgress, Passage

pytestmark = pytest.mark.unit
DOCUMENTS = Path(__file__).parent / "documents"
MANUAL = DOCUMENTS / "pdf" / "manual.pdf"
DOCX = DOCUMENTS / "office" / "lo_report.docx"
PPTX = DOCUMENTS / "office" / "lo_slides.pptx"
EPUB = DOCUMENTS / "office" / "lo_report.epub"


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["report.pdf", "Notes 2024 (final).md", "résumé.docx", "  spaced.txt  ", "a.rst.txt"])
def test_plain_names_are_kept(given: str) -> None:
    assert clean_name(given) == given.strip()


@pytest.mark.parametrize("given,error,says", [
    ("", BadRequest, "without a name"),
    ("../../etc/passwd.md", BadRequest, "may not contain / or \\"),
    ("..\\windows\\win.ini.txt", BadRequest, "may not contain / or \\"),
    ("/abs/path.md", BadRequest, "may not contain"),
    (".bashrc.md", BadRequest, "hidden file names"),
    ("..", BadRequest, "hidden"),
    ("line\nbreak.md", BadRequest, "control or invisible"),
    ("nul\x00.md", BadRequest, "control or invisible"),
    ("invoice\u202efdp.md", BadRequest, "control or invisible"),  # a right-to-left override
    ("x" * 201 + ".md", BadRequest, "longer than 200 bytes"),
    ("setup.exe", UnsupportedFile, "files of type .exe cannot be read; accepted: .csv, .docx"),
    ("README", UnsupportedFile, "(no extension)"),
])
def test_bad_names_are_refused_with_the_reason(given: str, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=None) as caught:
        clean_name(given)
    assert says in str(caught.value)
    assert caught.value.field == "files"  # type: ignore[attr-defined]


# --- what the bytes are ----------------------------------------------------------------------------


def copy(tmp_path: Path, source: Path | bytes, name: str) -> Path:
    target = tmp_path / name
    target.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    return target


@pytest.mark.parametrize("source,name", [(MANUAL, "manual.pdf"), (DOCX, "report.docx"), (PPTX, "slides.pptx"),
                                         (EPUB, "book.epub"), (b"# Title\n\nSome text, \xc3\xa9t\xc3\xa9.\n", "notes.md"),
                                         (b"a,b\n1,2\n", "table.csv")])
def test_real_files_pass_the_content_check(tmp_path: Path, source: Path | bytes, name: str) -> None:
    check_content(copy(tmp_path, source, name), name)


@pytest.mark.parametrize("source,name,error,says", [
    (b"<!DOCTYPE html><html><body>hi</body></html>", "report.pdf", UnsupportedFile,
     "report.pdf is named .pdf but is not a PDF: it is an HTML page"),
    (DOCX, "manual.pdf", UnsupportedFile, "is not a PDF: it is a zip archive"),
    (MANUAL, "report.docx", UnsupportedFile, "is named .docx but is not one: it is a PDF"),
    (DOCX, "slides.pptx", ReadError, "not a PPTX file: it is a DOCX file"),  # a zip of another kind
    (DOCUMENTS / "office" / "encrypted.docx", "secret.docx", ReadError, "encrypted DOCX file"),
    (DOCUMENTS / "pdf" / "encrypted.pdf", "secret.pdf", ReadError, "encrypted PDF"),
    (MANUAL, "notes.md", UnsupportedFile, "is named .md but is not text: it is a PDF"),
    (b"caf\xe9 au lait\n", "latin1.txt", UnsupportedFile, "is not UTF-8 text (byte 3)"),
    (b"text\x00with a NUL", "nul.txt", UnsupportedFile, "is not text"),
    (b"", "empty.md", ReadError, "the file is empty"),
])
def test_content_of_another_type_is_refused_with_what_it_is(tmp_path: Path, source: Path | bytes, name: str,
                                                           error: type[Exception], says: str) -> None:
    with pytest.raises(error) as caught:
        check_content(copy(tmp_path, source, name), name)
    assert says in str(caught.value)


def test_a_truncated_pdf_is_refused(tmp_path: Path) -> None:
    data = MANUAL.read_bytes()
    with pytest.raises(ReadError, match="truncated or corrupt PDF"):
        check_content(copy(tmp_path, data[: len(data) // 2], "half.pdf"), "half.pdf")


def test_a_zip_bomb_named_docx_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<Types><Override ContentType="application/vnd.openxmlformats-'
                                                'officedocument.wordprocessingml.document.main+xml"/></Types>')
        archive.writestr("word/document.xml", b"\x00" * (8 * 2**20))  # 8 MB of zeros in a few KB
    packed = buffer.getvalue()
    assert len(packed) < 100_000
    with pytest.raises(ReadError, match="refused as a possible zip bomb"):
        check_content(copy(tmp_path, packed, "bomb.docx"), "bomb.docx")


# --- the upload folder -----------------------------------------------------------------------------


def received(store: UploadStore, folder: Path, name: str, data: bytes) -> Received:
    incoming = store.receive(folder, name)
    incoming.write(data)
    return store.check(incoming.close())


def test_a_file_over_the_limit_is_refused_while_it_arrives(tmp_path: Path) -> None:
    incoming = IncomingFile(tmp_path, "big.md", max_bytes=1000)
    incoming.write(b"x" * 600)
    incoming.write(b"x" * 600)
    got = incoming.close()
    assert isinstance(got.error, PayloadTooLarge) and "larger than the" in got.error.message
    assert not (tmp_path / "big.md").exists() and got.path is None  # nothing of it stays


def test_the_same_name_twice_in_one_upload_is_refused(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads", 10_000, 5)
    folder = store.staging()
    received(store, folder, "a.md", b"# a\n")
    with pytest.raises(BadRequest, match="twice in this upload"):
        store.receive(folder, "a.md")


def test_placing_replacing_and_putting_back(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads", 10_000, 5)
    first = store.place(received(store, store.staging(), "a.md", b"# one\n"), "docs")
    assert first.path == (tmp_path / "uploads" / "docs" / "a.md").resolve() and first.replaced is None
    store.settle(first, loaded=True)
    same = store.place(received(store, store.staging(), "a.md", b"# one\n"), "docs")
    assert same.unchanged and same.path.read_bytes() == b"# one\n"
    changed = store.place(received(store, store.staging(), "a.md", b"# two\n"), "docs")
    assert changed.path.read_bytes() == b"# two\n" and changed.replaced is not None
    store.settle(changed, loaded=False)  # the new one could not be read: the old one comes back
    assert first.path.read_bytes() == b"# one\n" and file_digest(first.path) == file_digest(first.path)
    assert not list((tmp_path / "uploads" / "docs" / ".replaced").iterdir())
    new = store.place(received(store, store.staging(), "b.md", b"# b\n"), "docs")
    store.settle(new, loaded=False)  # a new file that could not be read is not kept
    assert not new.path.exists()
    assert store.is_upload(str(first.path)) and store.corpus_of(str(first.path)) == "docs"
    assert not store.is_upload(str(tmp_path / "elsewhere.md"))
    assert not store.is_upload(str(tmp_path / "uploads" / ".incoming" / "x.md"))


# --- citations and progress ------------------------------------------------------------------------


def passage(**fields: object) -> Passage:
    return Passage("id", "/m.pdf", "", "Manual", (), 0, "text", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("fields,cite,title", [
    ({}, "", ""),
    ({"page": 12, "page_end": 12, "format": "pdf"}, "p. 12", ""),
    ({"page": 12, "page_end": 13, "format": "pdf"}, "pp. 12–13", ""),
    ({"page": 42, "page_end": 42, "page_label": "36", "format": "pdf"}, "p. 36", "page 42 of the file"),
    ({"page": 42, "page_end": 43, "page_label": "36", "format": "pdf"}, "pp. 36–37", "pages 42–43 of the file"),
    ({"page": 5, "page_end": 6, "page_label": "iv", "format": "pdf"}, "p. iv f.", "pages 5–6 of the file"),
    ({"page": 3, "page_end": 3, "page_label": "3", "format": "pdf"}, "p. 3", ""),
    ({"page": 4, "page_end": 4, "format": "pptx"}, "slide 4", ""),
])
def test_page_citations(fields: dict[str, object], cite: str, title: str) -> None:
    assert (passage(**fields).page_cite, passage(**fields).page_title) == (cite, title)


def test_progress_rate_and_time_left() -> None:
    step = LoadProgress("reading", source="/m.pdf", done=30, total=120, unit="page", seconds=10.0)
    assert step.rate == 3.0 and step.eta == 30.0
    assert LoadProgress("reading", done=0, total=5, seconds=1.0).eta is None  # no rate yet
    data = step.as_dict()
    assert (data["rate"], data["eta"], data["notes"]) == (3.0, 30.0, [])


def test_progress_bars_follow_the_events(capsys: pytest.CaptureFixture[str]) -> None:
    bars = ProgressBars()
    for done in range(1, 4):
        bars(LoadProgress("reading", source="/m.pdf", done=done, total=3, unit="page", file=1, files=1))
    assert bars.pages is not None and bars.pages.n == 3 and bars.pages.unit == "page"
    bars(LoadProgress("read", source="/m.pdf", status="added", file=1, files=1))
    assert bars.pages is None and bars.files is not None and bars.files.n == 1
    bars(LoadProgress("embedding", done=10, total=20, unit="passage"))
    assert bars.embedding is not None and bars.embedding.n == 10
    bars.close()
    assert "page" in capsys.readouterr().err
