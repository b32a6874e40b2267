"""The PDF reader on real files: fixtures made by LibreOffice (tests/documents/pdf, see its README), PDFs
made here by PDFium from them (a scan, a truncated copy), and manuals that Debian installs."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from qa_app.errors import ReadError
from qa_app.ingest.chunking import Chunker
from qa_app.ingest.readers import FILE_READERS, kind_of, read_documents
from qa_app.ingest.readers import pdf as pdf_reader
from qa_app.ingest.readers.pdf import page_size, page_text_boxes, read_pdf, render_page
from qa_app.models import Document

DOCUMENTS = Path(__file__).parent / "documents" / "pdf"
MANUAL = DOCUMENTS / "manual.pdf"  # LibreOffice, with an outline (bookmarks)
PLAIN = DOCUMENTS / "manual-no-outline.pdf"  # the same source exported without bookmarks
ENCRYPTED = DOCUMENTS / "encrypted.pdf"  # manual.pdf encrypted by qpdf (AES-256, user password "secret")
R_INTRO = Path("/usr/share/R/doc/manual/R-intro.pdf")  # Debian r-doc-pdf
WHY3 = Path("/usr/share/doc/why3-doc-pdf/manual.pdf")  # Debian why3-doc-pdf

HEADINGS = [("Introduction",), ("Introduction", "Breaking words"), ("Configuration",),
            ("Configuration", "Two columns"), ("Troubleshooting",)]

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")
needs_r_intro = pytest.mark.skipif(not R_INTRO.exists(), reason=f"{R_INTRO} missing (apt-get install r-doc-pdf)")
needs_why3 = pytest.mark.skipif(not WHY3.exists(), reason=f"{WHY3} missing (apt-get install why3-doc-pdf)")


def one(path: Path, **kwargs) -> Document:
    documents = read_pdf(path, path.name, **kwargs)
    assert len(documents) == 1
    return documents[0]


def full_text(document: Document) -> str:
    return "\n\n".join(section.text for section in document.sections)


def section(document: Document, headings: tuple[str, ...]):
    found = [s for s in document.sections if s.headings == headings]
    assert found, [s.headings for s in document.sections]
    return found[0]


def passages(document: Document):
    return Chunker(lambda text: len(text.split()), 120, 10, 256).split(document)


@pytest.fixture(scope="module")
def manual() -> Document:
    return one(MANUAL)


@pytest.fixture(scope="module")
def r_intro() -> Document:
    return one(R_INTRO)


# --- the LibreOffice manual ----------------------------------------------------------------------


def test_manual_is_one_pdf_document_with_its_pages(manual):
    assert manual.format == "pdf"
    assert manual.page_unit == "page"
    assert manual.page_count == 4
    assert manual.title == "QA Fixture Manual"
    assert manual.notes == ()
    assert manual.doc_id == ""


def test_headings_come_from_the_outline_with_their_nesting(manual):
    assert [s.headings for s in manual.sections] == HEADINGS


def test_headings_come_from_font_sizes_without_an_outline():
    assert list(pdfium.PdfDocument(str(PLAIN)).get_toc()) == []
    plain = one(PLAIN)
    assert [s.headings for s in plain.sections] == HEADINGS
    assert full_text(plain) == full_text(one(MANUAL))


def test_running_header_footer_and_page_numbers_are_removed(manual):
    text = full_text(manual)
    assert "draft edition" not in text
    assert not re.search(r"\bPage \d", text)


def test_words_broken_at_line_ends_are_joined(manual):
    words = section(manual, ("Introduction", "Breaking words")).text
    assert "An extraordinarily long word." in words  # soft hyphen at the line end: joined
    assert "Call the fetch_all_records function." in words  # identifier cut after "_": no space
    assert "It is a well-known fact here." in words  # a compound keeps its hyphen


def test_footnote_marker_is_not_glued_to_its_word(manual):
    intro = section(manual, ("Introduction",)).text
    assert "footnotes in shell commands without gluing the marker" in intro
    assert "1 Commands are typed at the prompt of a terminal." in full_text(manual)


def test_table_rows_stay_rows_and_code_lines_stay_lines(manual):
    text = section(manual, ("Configuration",)).text
    assert "Setting | Default | Meaning\nQA_PORT | 8000 | port of the web server\nQA_CHUNK | 200 | tokens in a passage" in text
    assert "qa-app load --corpus docs ./manuals\nqa-app serve --port 8000" in text


def test_two_columns_are_read_column_by_column(manual):
    text = section(manual, ("Configuration", "Two columns")).text
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith("Alpha column text begins here and runs down the left column of the page.")
    assert paragraphs[0].endswith("Left column, last words.")
    assert paragraphs[1].startswith("Beta column text starts the second paragraph, which the balanced section")
    assert paragraphs[1].endswith("Right column, last words.")


def test_paragraphs_are_reflowed_and_separated_by_blank_lines(manual):
    intro = section(manual, ("Introduction",)).text
    first, second = intro.split("\n\n")[:2]
    assert first.startswith("This manual is a small but real document for testing the PDF reader of qa_app. It is "
                            "extraordinarily plain")
    assert "\n" not in first
    assert second.startswith("The reader must handle footnotes")


def test_page_marks_follow_the_physical_pages(manual):
    pages = [[(m.page, m.label) for m in s.pages] for s in manual.sections]
    assert pages == [[(1, "")], [(1, "")], [(2, "")], [(2, "")], [(3, ""), (4, "")]]
    for s in manual.sections:
        assert s.pages[0].offset == 0
        assert [m.offset for m in s.pages] == sorted(m.offset for m in s.pages)


def test_a_paragraph_across_a_page_break_stays_one_and_knows_both_pages(manual):
    last = section(manual, ("Troubleshooting",))
    straddling = last.text.split("\n\n")[1]
    assert straddling.startswith("This last paragraph is long on purpose")
    assert straddling.endswith("The end of the straddling paragraph is here.")
    mark = last.pages[1]
    assert mark.page == 4
    page4 = pdfium.PdfDocument(str(MANUAL))[3].get_textpage().get_text_range().split("\r\n")
    assert page4[0] == "QA Fixture Manual, draft edition"
    assert page4[1].startswith(last.text[mark.offset:mark.offset + 30])  # the mark is where page 4 begins
    assert last.text[mark.offset - 1] == " "
    spans = {(p.page, p.page_end) for p in passages(manual) if p.headings == ("Troubleshooting",)}
    assert (3, 4) in spans and (3, 3) in spans and (4, 4) in spans


def test_progress_is_reported_page_by_page():
    seen: list[tuple[int, int]] = []
    one(MANUAL, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_the_reader_is_registered_for_pdf_files():
    assert kind_of(Path("Report.PDF")) == "pdf"
    assert FILE_READERS["pdf"] is read_pdf
    [document] = read_documents(MANUAL, "docs/manual.pdf")
    assert document.source == "docs/manual.pdf"
    assert [s.headings for s in document.sections] == HEADINGS


# --- pages without text, damaged and hostile files ----------------------------------------------


def _scan_of(source: Path, page_index: int, dpi: int = 200):
    """A new PDF page that is only an image: `source`'s page rendered, as a scanner would give it."""
    src = pdfium.PdfDocument(str(source))
    page = src[page_index]
    width, height = page.get_size()
    bitmap = page.render(scale=dpi / 72, grayscale=True)
    return src, bitmap, width, height


def make_scanned_pdf(target: Path, with_text_pages: bool) -> Path:
    """Page 1 of the manual as an image; then, if asked, pages 2-4 of the manual with their text."""
    src, bitmap, width, height = _scan_of(MANUAL, 0)
    out = pdfium.PdfDocument.new()
    page = out.new_page(width, height)
    image = pdfium.PdfImage.new(out)
    image.set_bitmap(bitmap)
    image.set_matrix(pdfium.PdfMatrix().scale(width, height))
    page.insert_obj(image)
    page.gen_content()
    if with_text_pages:
        out.import_pages(src, [1, 2, 3])
    out.save(str(target))
    return target


def test_a_scanned_page_without_ocr_is_reported_not_silently_empty(tmp_path, monkeypatch):
    path = make_scanned_pdf(tmp_path / "scan-and-text.pdf", with_text_pages=True)
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on this PATH
    document = one(path)
    assert document.notes == ("1 pages without text skipped",)
    assert document.page_count == 4
    assert [s.headings for s in document.sections][0] == ("Configuration",)
    assert min(m.page for s in document.sections for m in s.pages) == 2


def test_a_pdf_with_no_text_layer_at_all_is_an_error_without_ocr(tmp_path, monkeypatch):
    path = make_scanned_pdf(tmp_path / "scan.pdf", with_text_pages=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ReadError, match=r"^no text layer: 1 pages without text"):
        read_pdf(path, "scan.pdf")


@needs_tesseract
def test_a_scanned_page_is_ocred_with_tesseract(tmp_path):
    path = make_scanned_pdf(tmp_path / "scan-and-text.pdf", with_text_pages=True)
    document = one(path)
    assert document.notes == ("1 pages OCRed",)
    first = document.sections[0]
    assert first.headings == ("Introduction",)
    assert first.pages[0].page == 1
    assert "This manual is a small but real document for testing the PDF reader" in first.text
    text = full_text(document)
    assert "draft edition" not in text  # the header went with the other pages' headers
    assert "An extraordinarily long word." in text
    assert [s.headings for s in document.sections][-3:] == HEADINGS[-3:]


def test_an_encrypted_pdf_is_refused_with_the_reason():
    with pytest.raises(ReadError, match="encrypted PDF: it needs a password"):
        read_pdf(ENCRYPTED, "encrypted.pdf")


def test_a_truncated_pdf_is_refused(tmp_path):
    data = MANUAL.read_bytes()
    half = tmp_path / "half.pdf"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReadError, match="truncated or corrupt PDF"):
        read_pdf(half, "half.pdf")


def test_a_corrupt_pdf_is_refused(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage that is no PDF object\n" * 40 + b"%%EOF\n")
    with pytest.raises(ReadError, match="^corrupt PDF"):
        read_pdf(broken, "broken.pdf")


def test_a_text_file_named_pdf_is_refused(tmp_path):
    fake = tmp_path / "notes.pdf"
    fake.write_text("Just some notes, not a PDF.\n")
    with pytest.raises(ReadError, match=r"^not a PDF: starts with b'Just some notes,'"):
        read_pdf(fake, "notes.pdf")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(ReadError, match="^not a PDF: the file is empty"):
        read_pdf(empty, "empty.pdf")


def test_hostile_sizes_are_refused(monkeypatch):
    monkeypatch.setattr(pdf_reader, "MAX_PAGES", 3)
    with pytest.raises(ReadError, match=r"^4 pages \(more than 3\): refused"):
        read_pdf(MANUAL, "manual.pdf")
    monkeypatch.setattr(pdf_reader, "MAX_PAGES", 5000)
    monkeypatch.setattr(pdf_reader, "MAX_PAGE_CHARS", 500)
    with pytest.raises(ReadError, match=r"^page 1 has [\d,]+ characters \(more than 500\): refused"):
        read_pdf(MANUAL, "manual.pdf")


def test_the_limits_are_module_constants():
    assert pdf_reader.MAX_PAGES == 5000
    assert pdf_reader.MAX_PAGE_CHARS == 2_000_000


# --- the page view ---------------------------------------------------------------------------------


def test_text_boxes_cover_a_passage_on_its_page(manual):
    passage = next(p for p in passages(manual) if p.text.startswith("The settings are read from the environment"))
    assert passage.page == 2
    boxes = page_text_boxes(MANUAL, 2, passage.text)
    width, height = page_size(MANUAL, 2)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    assert len(boxes) >= 2  # one rectangle per line
    for left, bottom, right, top in boxes:
        assert 0 <= left < right <= width and 0 <= bottom < top <= height
    first = boxes[0]
    assert first[3] > height - 200  # near the top of the page (origin bottom-left)
    assert page_text_boxes(MANUAL, 1, passage.text) == []  # not on page 1


def test_text_boxes_follow_the_reading_order_of_columns(manual):
    right = section(manual, ("Configuration", "Two columns")).text.split("\n\n")[1]
    boxes = page_text_boxes(MANUAL, 2, right)
    assert len(boxes) == 8  # the eight lines of the right column
    assert all(left > 300 for left, _, _, _ in boxes)


def test_text_boxes_of_a_passage_that_straddles_pages(manual):
    passage = next(p for p in passages(manual) if (p.page, p.page_end) == (3, 4))
    on_first = page_text_boxes(MANUAL, 3, passage.text)
    on_next = page_text_boxes(MANUAL, 4, passage.text)
    assert on_first[-1][1] < 120  # down to the last line of page 3 (origin bottom-left)
    assert on_next[0][3] > 740  # from the first line of page 4, under its running header
    assert len(on_first) + len(on_next) >= len(passage.text) // 110  # every line of it (~100 characters a line)


def test_render_page_gives_a_png_of_the_page():
    png = render_page(MANUAL, 1, scale=0.5)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (298, 421)
    # the IDAT data inflates to one filter byte plus 3 bytes (RGB) per pixel, row by row
    idat = png.index(b"IDAT")
    size = struct.unpack(">I", png[idat - 4: idat])[0]
    raw = zlib.decompress(png[idat + 4: idat + 4 + size])
    assert len(raw) == height * (1 + 3 * width)
    assert raw[1:4] == b"\xff\xff\xff"  # a white corner
    with pytest.raises(ReadError, match="no page 9"):
        render_page(MANUAL, 9)


# --- real manuals --------------------------------------------------------------------------------


@needs_r_intro
def test_r_intro_pages_and_labels_of_a_known_passage(r_intro):
    assert r_intro.page_count == 113
    assert r_intro.title == "An Introduction to R"  # no Title in its metadata: the cover's largest line
    assert r_intro.notes == ()
    tables = section(r_intro, ("8 Probability distributions", "8.1 R as a set of statistical tables"))
    assert tables.text.startswith("One convenient use of R is to provide a comprehensive set of statistical tables.")
    assert (tables.pages[0].page, tables.pages[0].label) == (42, "36")
    found = next(p for p in passages(r_intro) if "One convenient use of R" in p.text)
    assert (found.page, found.page_label) == (42, "36")
    preface = section(r_intro, ("Preface",))
    assert (preface.pages[0].page, preface.pages[0].label) == (7, "1")  # the first page labelled 1


@needs_r_intro
def test_r_intro_running_header_is_gone(r_intro):
    text = full_text(r_intro)
    assert not re.search(r"Chapter \d+: [A-Z]", text)
    assert "Arrays and matrices 24" not in text
    body = "\n\n".join(s.text for s in r_intro.sections if not s.headings[:1] or "index" not in s.headings[0])
    assert not re.search(r"(?m)^\d+$", body)  # no page-number lines (the index has an entry "." for page 60)


@needs_r_intro
def test_r_intro_hyphenation_and_footnotes(r_intro):
    text = full_text(r_intro)
    assert "for the multinomial distribution" in text  # "multi-" / "nomial"
    assert "the S and S-Plus environments" in text  # a real hyphen across the break
    assert "spreadsheet-like environment for editing" in text  # "envi-" / "ronment"
    assert ".RData5" not in text and "allowed1" not in text
    assert "Copyright \u00a9 1990 W. N. Venables" in text


@needs_r_intro
def test_r_intro_table_rows_on_page_42(r_intro):
    tables = section(r_intro, ("8 Probability distributions", "8.1 R as a set of statistical tables"))
    rows = tables.text.split("\n\n")[1].split("\n")
    assert rows[:3] == ["Distribution | R name | additional arguments", "beta | beta | shape1, shape2, ncp",
                        "binomial | binom | size, prob"]
    assert "Student's t | t | df, ncp" in rows
    assert rows[-1] == "Wilcoxon | wilcox | m, n"
    assert len(rows) == 20  # the header and 19 distributions


@needs_why3
def test_why3_artifacts_are_dropped():
    why3 = one(WHY3)
    text = full_text(why3)
    assert "Why3 Documentation, Release" not in text
    assert "continues on next page" not in text and "continued from previous page" not in text
    assert "\u02d3" not in text and "\\spxentry" not in text
    assert "\U0001d453" not in text  # math italic f, NFKC-normalized
    assert ('eprintf "Prover Alt-Ergo 2.3.3 not installed or not configured, using version %s instead@."' in text)
    assert why3.sections[1].headings[0] == "Foreword"
    assert why3.sections[2].headings == ("Foreword", "1.1 Availability")
