"""Office and book readers on real files: made by the writer libraries here, by LibreOffice (committed
under tests/documents/office/, and converted live when soffice is installed), by ebooklib, and by hand
for the hostile ones (zip bombs, entity expansion, renamed and encrypted files)."""

from __future__ import annotations

import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import pytest

from qa_app.errors import ReadError
from qa_app.ingest.chunking import Chunker
from qa_app.ingest.readers import kind_of, office, read_documents
from qa_app.models import Document, PageMark, Section

FIXTURES = Path(__file__).parent / "documents" / "office"
_spec = importlib.util.spec_from_file_location("office_fixtures", FIXTURES / "make_fixtures.py")
assert _spec is not None and _spec.loader is not None
fixtures = importlib.util.module_from_spec(_spec)
sys.modules["office_fixtures"] = fixtures
_spec.loader.exec_module(fixtures)

GUIDE = "Field Guide to Tide Pools"
REPORT_SECTIONS = (
    Section((GUIDE, "Getting There"),
            "Arrive at low tide. Check the tide table first.\n\n- Sturdy shoes\n- A tide table\n- Water"),
    Section((GUIDE, "Getting There", "Parking"),
            "The north lot opens at 7 am.\n\n1. Pay at the machine\n2. Display the ticket"),
    Section((GUIDE, "Species"),
            "Look for anemones and sea stars.\n\n"
            "Species | Zone | Colour\nOchre sea star | Mid | Purple\nGiant green anemone | Low | Green\n\n"
            "Never lift a sea star from the rock."),
    Section((GUIDE, "Species", "Anemones"), "Anemones close when touched."),
)
SLIDE_SECTIONS = (
    Section(("Quarterly Review",), "Tide Pool Society\n\nNotes: Welcome everyone.", (PageMark(0, 1),)),
    Section(("Goals",), "- Count species\n  - Sea stars\n- Publish the survey\n\n"
                        "Notes: Mention the volunteers.\nThank the sponsors.", (PageMark(0, 2),)),
    Section(("Species counts",), "Species | Count\nSea star | 12\nAnemone | 30", (PageMark(0, 3),)),
    Section(("Slide 4",), "An untitled slide with a text box.", (PageMark(0, 4),)),
)
TIDE_SECTIONS = (
    Section(("Tides",), "Date | High (m) | Low (m) | Note\n2026-06-01 | 1.5 | 0.25 | spring tide\n"
                        "2026-06-02 14:30:00 | 2\nTotal | 3.5 | 0.25 | TRUE"),
    Section(("Notes",), "Bring a towel"),
)


def read_one(path: Path) -> Document:
    documents = read_documents(path, str(path))
    assert len(documents) == 1
    return documents[0]


def assert_report(document: Document, kind: str) -> None:
    assert (document.title, document.format, document.page_count) == (GUIDE, kind, 0)
    assert document.sections == REPORT_SECTIONS


def assert_slides(document: Document) -> None:
    assert (document.title, document.format, document.page_unit, document.page_count) == \
        ("Quarterly Review", "pptx", "slide", 5)
    assert document.sections == SLIDE_SECTIONS
    assert document.notes == ("1 slide without body text skipped",)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files written by python-docx, python-pptx and openpyxl."""
    folder = tmp_path_factory.mktemp("made")
    return {"docx": fixtures.build_docx(folder / "report.docx"), "pptx": fixtures.build_pptx(folder / "slides.pptx"),
            "xlsx": fixtures.build_xlsx(folder / "tides.xlsx")}


# --- DOCX ------------------------------------------------------------------------------------------


def test_docx_from_python_docx_keeps_heading_path_lists_and_table_rows(made: dict[str, Path]) -> None:
    assert_report(read_one(made["docx"]), "docx")


def test_docx_written_by_libreoffice() -> None:
    assert_report(read_one(FIXTURES / "lo_report.docx"), "docx")


def test_docx_revisions_hidden_text_text_boxes_merged_cells_and_contents(tmp_path: Path) -> None:
    import docx
    from docx.oxml import parse_xml

    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    mc = 'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    document = docx.Document()
    document.add_heading("Contents", level=1)
    body = document.element.body
    snippets = [
        f'<w:sdt {w}><w:sdtPr><w:docPartObj><w:docPartGallery w:val="Table of Contents"/></w:docPartObj>'
        '</w:sdtPr><w:sdtContent><w:p><w:r><w:t>Intro ........ 3</w:t></w:r></w:p></w:sdtContent></w:sdt>',
        f'<w:p {w}><w:r><w:t xml:space="preserve">Kept </w:t></w:r><w:del w:id="1" w:author="a"><w:r>'
        '<w:delText>deleted </w:delText></w:r></w:del><w:ins w:id="2" w:author="a"><w:r><w:t xml:space="preserve">'
        'inserted </w:t></w:r></w:ins><w:r><w:rPr><w:vanish/></w:rPr><w:t>hidden </w:t></w:r>'
        '<w:hyperlink><w:r><w:t>linked</w:t></w:r></w:hyperlink><w:r><w:t>.</w:t></w:r></w:p>',
        f'<w:p {w} {mc}><w:r><w:t>Host.</w:t></w:r><w:r><mc:AlternateContent><mc:Choice Requires="wps">'
        '<w:drawing><w:txbxContent><w:p><w:r><w:t>Boxed text.</w:t></w:r></w:p></w:txbxContent></w:drawing>'
        '</mc:Choice><mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>Boxed text.</w:t></w:r></w:p>'
        '</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>',
        f'<w:tbl {w}><w:tr><w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr><w:p><w:r><w:t>Rock</w:t></w:r></w:p>'
        '</w:tc><w:tc><w:p><w:r><w:t>crab</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:tcPr><w:vMerge/></w:tcPr>'
        '<w:p/></w:tc><w:tc><w:p><w:r><w:t>limpet</w:t></w:r></w:p></w:tc></w:tr></w:tbl>',
    ]
    for snippet in snippets:
        body.insert(len(body) - 1, parse_xml(snippet))  # before the section properties
    path = tmp_path / "edges.docx"
    document.save(path)
    read = read_one(path)
    assert read.title == "Contents"
    assert read.sections == (Section(("Contents",), "Kept inserted linked.\n\nHost.\n\nBoxed text.\n\n"
                                                    "Rock | crab\nRock | limpet"),)


# --- PPTX ------------------------------------------------------------------------------------------


def test_pptx_slides_are_pages_titles_headings_and_notes_included(made: dict[str, Path]) -> None:
    assert_slides(read_one(made["pptx"]))


def test_pptx_written_by_libreoffice() -> None:
    assert_slides(read_one(FIXTURES / "lo_slides.pptx"))


def test_pptx_passages_cite_their_slide(made: dict[str, Path]) -> None:
    chunker = Chunker(lambda text: len(text.split()), max_tokens=200, overlap=0, window=256)
    passages = chunker.split(read_one(made["pptx"]))
    assert [(p.headings, p.page, p.page_end) for p in passages] == [
        (("Quarterly Review",), 1, 1), (("Goals",), 2, 2), (("Species counts",), 3, 3), (("Slide 4",), 4, 4)]


# --- EPUB ------------------------------------------------------------------------------------------


def test_epub_written_by_ebooklib_chapters_in_spine_order_under_their_titles() -> None:
    book = read_one(FIXTURES / "ebooklib_book.epub")
    assert (book.title, book.format) == ("Tide Pools: A Short Book", "epub")
    assert book.sections == (
        Section(("Rocks and Pools",), "Pools form in hollows of the rock."),
        Section(("Rocks and Pools", "Granite"), "Granite pools are deep."),
        Section(("Living Things", "Creatures"), "Crabs hide under weed."),
    )


def test_epub_written_by_libreoffice_headings_as_paragraphs_and_placeholder_title() -> None:
    book = read_one(FIXTURES / "lo_report.epub")
    assert book.title == "lo_report"  # LibreOffice writes "Unknown Title"
    assert [s.headings for s in book.sections] == [("Section 1",), ("Getting There",), ("Species",)]
    assert book.sections[0].text == GUIDE
    assert book.sections[1].text.startswith("Arrive at low tide. Check the tide table first.\n\nSturdy shoes")


XHTML_DOCTYPE = ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
                 '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">\n')


def write_epub(path: Path, chapters: dict[str, str], spine: list[str], *, toc: dict[str, str] | None = None,
               extra: dict[str, str] | None = None, title: str = "Shore Notes") -> Path:
    """An EPUB 2 written by hand: OPF manifest in file-name order, NCX labels from `toc`."""
    manifest = "".join(f'<item id="{name}" href="text/{name}.xhtml" media-type="application/xhtml+xml"/>'
                       for name in sorted(chapters))
    points = "".join(f'<navPoint id="p{i}" playOrder="{i}"><navLabel><text>{label}</text></navLabel>'
                     f'<content src="text/{name}.xhtml"/></navPoint>' for i, (name, label) in
                     enumerate((toc or {}).items(), 1))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml",
                         '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:'
                         'xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
                         'media-type="application/oebps-package+xml"/></rootfiles></container>')
        archive.writestr("OEBPS/content.opf",
                         '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="2.0">'
                         f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
                         f'</metadata><manifest>{manifest}<item id="ncx" href="toc.ncx" '
                         'media-type="application/x-dtbncx+xml"/></manifest><spine toc="ncx">'
                         + "".join(f'<itemref idref="{name}"/>' for name in spine) + "</spine></package>")
        archive.writestr("OEBPS/toc.ncx", '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"'
                         f' version="2005-1"><navMap>{points}</navMap></ncx>')
        for name, body in chapters.items():
            archive.writestr(f"OEBPS/text/{name}.xhtml", body)
        for name, body in (extra or {}).items():
            archive.writestr(name, body)
    return path


def xhtml(body: str) -> str:
    return (XHTML_DOCTYPE + '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Shore Notes</title></head>'
            f"<body>{body}</body></html>")


def test_epub2_spine_order_ncx_titles_split_chapters_and_header_elements(tmp_path: Path) -> None:
    chapters = {
        "a_water": xhtml("<h1>Water</h1><p>Salt water evaporates in the sun.</p>"),
        "b_water_more": xhtml("<p>Pools get saltier by evening.</p>"),
        "z_rocks": xhtml("<section><header><h1>Rocks</h1></header><p>Basalt is dark.</p>"
                         "<h2>Cracks</h2><p>Mussels grip the cracks.</p></section>"),
    }
    path = write_epub(tmp_path / "shore.epub", chapters, ["z_rocks", "a_water", "b_water_more"],
                      toc={"z_rocks": "Chapter 1: Rocks", "a_water": "Chapter 2: Water"})
    book = read_one(path)
    assert book.title == "Shore Notes"
    assert book.sections == (
        Section(("Chapter 1: Rocks", "Rocks"), "Basalt is dark."),
        Section(("Chapter 1: Rocks", "Rocks", "Cracks"), "Mussels grip the cracks."),
        Section(("Chapter 2: Water", "Water"), "Salt water evaporates in the sun."),
        Section(("Chapter 2: Water",), "Pools get saltier by evening."),
    )


def test_epub_missing_chapter_is_noted_and_drm_refused_but_obfuscated_fonts_read(tmp_path: Path) -> None:
    chapters = {"one": xhtml("<h1>One</h1><p>Text.</p>")}
    book = read_one(write_epub(tmp_path / "gap.epub", chapters, ["one", "gone"]))
    assert book.sections == (Section(("One",), "Text."),)
    assert book.notes == ("1 chapter of the spine missing from the archive",)

    def encryption(algorithm: str, uri: str) -> dict[str, str]:
        return {"META-INF/encryption.xml":
                '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:EncryptionMethod '
                f'Algorithm="{algorithm}"/><enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData>'
                '</enc:EncryptedData></encryption>'}

    fonts = write_epub(tmp_path / "fonts.epub", chapters, ["one"],
                       extra=encryption("http://www.idpf.org/2008/embedding", "OEBPS/fonts/a.otf"))
    assert read_one(fonts).sections == (Section(("One",), "Text."),)
    drm = write_epub(tmp_path / "drm.epub", chapters, ["one"],
                     extra=encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "OEBPS/text/one.xhtml"))
    with pytest.raises(ReadError, match=r"encrypted EPUB file \(DRM-protected\)"):
        read_one(drm)


# --- ODT, XLSX, CSV --------------------------------------------------------------------------------


def test_odt_written_by_libreoffice_headings_lists_table() -> None:
    assert_report(read_one(FIXTURES / "lo_report.odt"), "odt")


def write_odt(path: Path, body: str, manifest_extra: str = "") -> Path:
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        archive.writestr("META-INF/manifest.xml", '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
                         f'opendocument:xmlns:manifest:1.0">{manifest_extra}</manifest:manifest>')
        archive.writestr("content.xml", f'<?xml version="1.0"?><office:document-content {ns}>'
                         f'<office:automatic-styles><text:list-style style:name="L1"><text:list-level-style-number '
                         f'text:level="1" style:num-format="a"/></text:list-style></office:automatic-styles>'
                         f"<office:body><office:text>{body}</office:text></office:body></office:document-content>")
    return path


def test_odt_by_hand_spaces_lettered_list_repeated_and_covered_cells(tmp_path: Path) -> None:
    body = ('<text:h text:outline-level="1">Kit</text:h><text:p>Two<text:s text:c="2"/>spaces<text:tab/>'
            "and a<text:line-break/>break.</text:p>"
            '<text:list text:style-name="L1"><text:list-item><text:p>net</text:p></text:list-item>'
            "<text:list-item><text:p>bucket</text:p></text:list-item></text:list>"
            '<table:table><table:table-row><table:table-cell table:number-columns-spanned="2"><text:p>Both</text:p>'
            "</table:table-cell><table:covered-table-cell/></table:table-row><table:table-row>"
            '<table:table-cell table:number-columns-repeated="2"><text:p>x</text:p></table:table-cell>'
            "</table:table-row></table:table>")
    document = read_one(write_odt(tmp_path / "kit.odt", body))
    assert document.title == "Kit"
    assert document.sections == (Section(("Kit",), "Two  spaces and a\nbreak.\n\na. net\nb. bucket\n\nBoth\nx | x"),)


def test_xlsx_one_section_a_sheet_rows_as_lines(made: dict[str, Path]) -> None:
    book = read_one(made["xlsx"])
    assert (book.title, book.format) == ("Tide table", "xlsx")
    assert book.sections == TIDE_SECTIONS


def test_xlsx_written_by_libreoffice() -> None:
    book = read_one(FIXTURES / "lo_tides.xlsx")
    assert (book.title, book.format, book.sections) == ("Tide table", "xlsx", TIDE_SECTIONS)


def test_xlsx_rows_are_capped_with_a_note(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Log")
    for i in range(office.MAX_ROWS + 5):
        sheet.append([i, f"reading {i}"])
    book.save(tmp_path / "log.xlsx")
    document = read_one(tmp_path / "log.xlsx")
    lines = [line for s in document.sections for line in s.text.split("\n") if line]
    assert lines[-1] == f"{office.MAX_ROWS - 1} | reading {office.MAX_ROWS - 1}"
    assert document.notes == (f"sheet 'Log': only the first {office.MAX_ROWS} rows read",)


def test_csv_sniffs_the_delimiter_and_keeps_quoted_cells(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text('name;city;note\n"Smith, J";Oslo;"said ""hi"""\n\nLee;Bergen;\n', encoding="utf-8")
    document = read_one(path)
    assert (document.title, document.format) == ("people", "csv")
    assert document.sections == (Section((), 'name | city | note\nSmith, J | Oslo | said "hi"\nLee | Bergen'),)
    tabs = tmp_path / "tabs.csv"
    tabs.write_bytes("a\tb\n1\t2\n".encode("utf-16"))  # Excel's "Unicode text"
    assert read_one(tabs).sections == (Section((), "a | b\n1 | 2"),)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"name,city\nJos\xe9,S\xe3o Paulo\n")
    document = read_one(latin)
    assert document.sections == (Section((), "name | city\nJosé | São Paulo"),)
    assert document.notes == ("not UTF-8: read as Windows-1252",)


def test_long_tables_come_in_blocks_that_repeat_the_header(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("station,reading\n" + "".join(f"s{i},{i * 1.5}\n" for i in range(office.MAX_ROWS + 3)))
    document = read_one(path)
    blocks = document.sections[0].text.split("\n\n")
    assert len(blocks) > 100
    assert all(b.startswith("station | reading\n") for b in blocks[1:]) and blocks[0].startswith("station | reading\n")
    assert all(len(b) <= office.TABLE_BLOCK_CHARS for b in blocks)
    rows = [line for b in blocks for line in b.split("\n")[1:]]
    assert rows[0] == "s0 | 0.0" and rows[-1] == f"s{office.MAX_ROWS - 2} | {(office.MAX_ROWS - 2) * 1.5}"
    assert len(rows) == office.MAX_ROWS - 1  # the header is the first of the rows read
    assert document.notes == (f"only the first {office.MAX_ROWS} rows read",)


def test_registered_suffixes() -> None:
    assert [kind_of(Path(f"x.{s}")) for s in ("DOCX", "pptx", "epub", "odt", "xlsx", "csv")] == \
        ["docx", "pptx", "epub", "odt", "xlsx", "csv"]


# --- Files written by LibreOffice now (the installed version) --------------------------------------


@pytest.fixture(scope="module")
def converted(made: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if fixtures.soffice() is None:
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-writer-nogui "
                    "libreoffice-impress-nogui): live conversions not tested")
    folder = tmp_path_factory.mktemp("libreoffice")
    odt = fixtures.convert(made["docx"], "odt", folder)
    (folder / "docx").mkdir()
    (folder / "pptx").mkdir()
    return {"odt": odt, "docx": fixtures.convert(odt, "docx", folder / "docx"),
            "pptx": fixtures.convert(made["pptx"], "pptx", folder / "pptx")}


def test_live_libreoffice_odt_and_docx(converted: dict[str, Path]) -> None:
    assert_report(read_one(converted["odt"]), "odt")
    assert_report(read_one(converted["docx"]), "docx")


def test_live_libreoffice_pptx(converted: dict[str, Path]) -> None:
    assert_slides(read_one(converted["pptx"]))


# --- Refused files ---------------------------------------------------------------------------------


def rezip(source: Path, target: Path, replace: dict[str, bytes] | None = None,
          add: dict[str, bytes] | None = None) -> Path:
    """A copy of the zip `source` with some members replaced or added."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as new:
        for item in old.infolist():
            new.writestr(item.filename, (replace or {}).get(item.filename, old.read(item)))
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return target


LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
          + "]>")
W_DOC = ('<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
         "<w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>")


DTD_REFUSED = "word/document.xml declares a DTD or XML entities"


@pytest.mark.parametrize("head,message", [
    pytest.param('<?xml version="1.0" encoding="UTF-8"?>', DTD_REFUSED, id="plain"),
    pytest.param('<?xml version="1.0"?><!--' + "x" * 100_000 + "-->", DTD_REFUSED, id="after-a-long-comment"),
    pytest.param("utf-16", DTD_REFUSED, id="utf-16"),
    pytest.param('<?xml version="1.0"?><!--' + "x" * office.MAX_XML_PROLOG_BYTES + "-->",
                 "word/document.xml has more than 1024 KB before its XML root element", id="after-a-huge-comment"),
    pytest.param('<?xml version="1.0" encoding="UTF-7"?>', r"declares an unsupported XML encoding \(UTF-7\)",
                 id="utf-7"),
])
def test_docx_entity_expansion_is_refused(made: dict[str, Path], tmp_path: Path, head: str, message: str) -> None:
    xml = (('<?xml version="1.0" encoding="UTF-16"?>' + LAUGHS + W_DOC).encode("utf-16") if head == "utf-16"
           else (head + LAUGHS + W_DOC).encode())
    bomb = rezip(made["docx"], tmp_path / "laughs.docx", replace={"word/document.xml": xml})
    with pytest.raises(ReadError, match=message):
        read_one(bomb)


def test_xlsx_and_epub_entity_expansion_is_refused(made: dict[str, Path], tmp_path: Path) -> None:
    sheet = ('<?xml version="1.0"?>' + LAUGHS + '<worksheet xmlns="http://schemas.openxmlformats.org/'
             'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c>'
             "</row></sheetData></worksheet>").encode()
    bomb = rezip(made["xlsx"], tmp_path / "laughs.xlsx", replace={"xl/worksheets/sheet1.xml": sheet})
    with pytest.raises(ReadError, match="sheet1.xml declares a DTD or XML entities"):
        read_one(bomb)
    chapter = '<?xml version="1.0"?>' + LAUGHS.replace("lolz", "html") + "<html><body><p>&lol9;</p></body></html>"
    epub = write_epub(tmp_path / "laughs.epub", {"one": chapter}, ["one"])
    with pytest.raises(ReadError, match="one.xhtml declares a DTD or XML entities"):
        read_one(epub)


def test_zip_bombs_are_refused_before_reading(made: dict[str, Path], tmp_path: Path) -> None:
    big = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">' + b" " * (5 * 2**20)
    ratio = rezip(made["docx"], tmp_path / "ratio.docx", replace={"word/document.xml": big + b"</w:document>"})
    with pytest.raises(ReadError, match=r"possible zip bomb: word/document.xml would unpack \d+ times"):
        read_one(ratio)
    padding = b"\0" * office.RATIO_MIN_BYTES  # members small enough to pass the ratio check, too many in all
    count = office.MAX_UNPACKED_BYTES // office.RATIO_MIN_BYTES + 5
    total = rezip(made["pptx"], tmp_path / "total.pptx", add={f"ppt/media/pad{i}.bin": padding for i in range(count)})
    with pytest.raises(ReadError, match=r"possible zip bomb: the members would unpack to 210 MB \(the limit is 200 MB\)"):
        read_one(total)
    many = tmp_path / "many.xlsx"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(office.MAX_MEMBERS + 1):
            archive.writestr(f"m{i}", b"")
    with pytest.raises(ReadError, match=f"{office.MAX_MEMBERS + 1} members in the zip archive"):
        read_one(many)


def test_corrupt_renamed_and_encrypted_files_are_refused(made: dict[str, Path], tmp_path: Path) -> None:
    data = made["docx"].read_bytes()
    cases: list[tuple[str, bytes, str]] = [
        ("truncated.docx", data[: len(data) // 2], "corrupt DOCX file: damaged zip archive"),
        ("text.docx", b"Just some notes, saved with the wrong name.\n", "not a DOCX file: it is a text file"),
        ("slides.docx", made["pptx"].read_bytes(), "not a DOCX file: it is a PPTX file"),
        ("book.xlsx", (FIXTURES / "lo_report.odt").read_bytes(), "not an XLSX file: it is an ODT file"),
        ("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504, "legacy binary Office file"),
        ("empty.pptx", b"", "not a PPTX file: the file is empty"),
        ("page.epub", b"<html><body>hi</body></html>", "not an EPUB file: it is an XML or HTML text file"),
        ("locked.docx", (FIXTURES / "encrypted.docx").read_bytes(), r"encrypted DOCX file \(password-protected\)"),
        ("locked.xlsx", (FIXTURES / "encrypted.docx").read_bytes(), r"encrypted XLSX file \(password-protected\)"),
    ]
    # A damaged member: bytes in the middle of word/document.xml's compressed data flipped.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    damaged = data[:middle] + bytes(b ^ 0x55 for b in data[middle: middle + 16]) + data[middle + 16:]
    cases.append(("damaged.docx", damaged, "corrupt DOCX file: word/document.xml"))
    for name, content, message in cases:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ReadError, match=message):
            read_one(path)


def test_encrypted_odt_is_refused(tmp_path: Path) -> None:
    manifest = ('<manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/>'
                "</manifest:file-entry>")
    with pytest.raises(ReadError, match=r"encrypted ODT file \(password-protected\)"):
        read_one(write_odt(tmp_path / "locked.odt", "<text:p>x</text:p>", manifest))


def test_documents_without_text_raise_no_text_found(tmp_path: Path) -> None:
    import docx
    import openpyxl
    import pptx

    docx.Document().save(tmp_path / "empty.docx")
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[6])
    deck.save(tmp_path / "empty.pptx")
    openpyxl.Workbook().save(tmp_path / "empty.xlsx")
    (tmp_path / "empty.csv").write_text(",,\n , ,\n")
    write_odt(tmp_path / "empty.odt", "<text:p/>")
    write_epub(tmp_path / "empty.epub", {"one": xhtml("<p> </p>")}, ["one"])
    for name in ("empty.docx", "empty.pptx", "empty.xlsx", "empty.csv", "empty.odt", "empty.epub"):
        with pytest.raises(ReadError, match="^no text found$"):
            read_one(tmp_path / name)


def test_libreoffice_fixture_folder_documents_every_file() -> None:
    readme = (FIXTURES / "README.md").read_text()
    files = sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md" and p.suffix != ".pyc"
                   and p.is_file())
    assert files and all(f"`{name}`" in readme for name in files)
