"""Builders of the Office and EPUB test documents, and the script that made the files beside it.

The tests call the builders (python-docx, python-pptx, openpyxl: the same libraries that read) to make
fresh files; the committed files come from other producers, made once by running this script:

    .venv/bin/python tests/documents/office/make_fixtures.py [--ebooklib-python PY]

It needs LibreOffice (Debian: libreoffice-writer-nogui libreoffice-impress-nogui) and, for two files,
a Python with `ebooklib` and `msoffcrypto-tool` (PY; not project dependencies: ebooklib is AGPL, and
both are only needed to regenerate these files).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).parent


def build_docx(path: Path) -> Path:
    """A report with a Title, headings two deep, a bullet list, a numbered list, a table and runs."""
    import docx

    document = docx.Document()
    document.add_paragraph("Field Guide to Tide Pools", style="Title")
    document.add_heading("Getting There", level=1)
    document.add_paragraph("Arrive at low tide. Check the tide table first.")
    for item in ("Sturdy shoes", "A tide table", "Water"):
        document.add_paragraph(item, style="List Bullet")
    document.add_heading("Parking", level=2)
    document.add_paragraph("The north lot opens at 7 am.")
    for item in ("Pay at the machine", "Display the ticket"):
        document.add_paragraph(item, style="List Number")
    document.add_heading("Species", level=1)
    document.add_paragraph("Look for anemones and sea stars.")
    table = document.add_table(rows=3, cols=3)
    table.style = "Table Grid"
    for row, values in zip(table.rows, [("Species", "Zone", "Colour"), ("Ochre sea star", "Mid", "Purple"),
                                        ("Giant green anemone", "Low", "Green")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    paragraph = document.add_paragraph("Never lift a ")
    paragraph.add_run("sea star").bold = True
    paragraph.add_run(" from the rock.")
    document.add_heading("Anemones", level=2)
    document.add_paragraph("Anemones close when touched.")
    document.save(path)
    return path


def build_pptx(path: Path) -> Path:
    """Five slides: title slide, bullets two levels deep, a table, an untitled text box, an empty slide;
    speaker notes on the first two."""
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Quarterly Review"
    slide.placeholders[1].text = "Tide Pool Society"
    slide.notes_slide.notes_text_frame.text = "Welcome everyone."

    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Goals"
    body = slide.placeholders[1].text_frame
    body.text = "Count species"
    for text, level in (("Sea stars", 1), ("Publish the survey", 0)):
        paragraph = body.add_paragraph()
        paragraph.text, paragraph.level = text, level
    slide.notes_slide.notes_text_frame.text = "Mention the volunteers.\nThank the sponsors."

    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Species counts"
    table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, values in enumerate([("Species", "Count"), ("Sea star", "12"), ("Anemone", "30")]):
        for c, value in enumerate(values):
            table.cell(r, c).text = value

    slide = deck.slides.add_slide(deck.slide_layouts[6])
    box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1))
    box.text_frame.text = "An untitled slide with a text box."

    deck.slides.add_slide(deck.slide_layouts[6])
    deck.save(path)
    return path


def build_xlsx(path: Path) -> Path:
    """Two sheets with text, dates and numbers, and an empty third sheet."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Tides"
    sheet.append(["Date", "High (m)", "Low (m)", "Note"])
    sheet.append([dt.datetime(2026, 6, 1), 1.5, 0.25, "spring tide"])
    sheet.append([dt.datetime(2026, 6, 2, 14, 30), 2, None, None])
    sheet.append([])
    sheet.append(["Total", 3.5, 0.25, True])
    notes = book.create_sheet("Notes")
    notes["B2"] = "Bring a towel"
    book.create_sheet("Blank")
    book.properties.title = "Tide table"
    book.save(path)
    return path


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(source: Path, target_format: str, outdir: Path) -> Path:
    """LibreOffice headless: `source` converted to `target_format` (e.g. "odt", "docx") in `outdir`."""
    binary = soffice()
    if binary is None:
        raise RuntimeError("LibreOffice (soffice) is not installed")
    with tempfile.TemporaryDirectory() as profile:  # its own profile: no clash with another soffice
        subprocess.run([binary, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to",
                        target_format, "--outdir", str(outdir), str(source)],
                       check=True, capture_output=True, timeout=180)
    result = outdir / f"{source.stem}.{target_format.split(':')[0]}"
    if not result.exists():
        raise RuntimeError(f"LibreOffice did not write {result}")
    return result


EBOOKLIB_SCRIPT = textwrap.dedent('''
    import sys
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("tide-pools-2026")
    book.set_title("Tide Pools: A Short Book")
    book.set_language("en")
    book.add_author("Test Author")
    one = epub.EpubHtml(title="Rocks and Pools", file_name="one.xhtml", lang="en")
    one.content = ("<h1>Rocks and Pools</h1><p>Pools form in hollows of the rock.</p>"
                   "<h2>Granite</h2><p>Granite pools are deep.</p>")
    two = epub.EpubHtml(title="Living Things", file_name="two.xhtml", lang="en")
    two.content = "<h1>Creatures</h1><p>Crabs hide under weed.</p>"
    for chapter in (one, two):
        book.add_item(chapter)
    book.toc = (epub.Link("one.xhtml", "Rocks and Pools", "one"), epub.Link("two.xhtml", "Living Things", "two"))
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", one, two]
    epub.write_epub(sys.argv[1], book)
''')

ENCRYPT_SCRIPT = textwrap.dedent('''
    import sys
    from msoffcrypto.format.ooxml import OOXMLFile

    with open(sys.argv[1], "rb") as plain, open(sys.argv[2], "wb") as out:
        OOXMLFile(plain).encrypt("secret", out)
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ebooklib-python", help="a Python with ebooklib and msoffcrypto-tool installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report = build_docx(work / "report.docx")
        odt = convert(report, "odt", work)
        shutil.copy(odt, HERE / "lo_report.odt")
        (work / "from_odt").mkdir()
        shutil.copy(convert(odt, "docx", work / "from_odt"), HERE / "lo_report.docx")
        shutil.copy(convert(odt, "epub", work), HERE / "lo_report.epub")
        slides = build_pptx(work / "slides.pptx")
        odp = convert(slides, "odp", work)
        (work / "from_odp").mkdir()
        shutil.copy(convert(odp, "pptx", work / "from_odp"), HERE / "lo_slides.pptx")
        book = build_xlsx(work / "tides.xlsx")
        ods = convert(book, "ods", work)
        (work / "from_ods").mkdir()
        shutil.copy(convert(ods, "xlsx", work / "from_ods"), HERE / "lo_tides.xlsx")
        if args.ebooklib_python:
            for script, argv in ((EBOOKLIB_SCRIPT, [HERE / "ebooklib_book.epub"]),
                                 (ENCRYPT_SCRIPT, [report, HERE / "encrypted.docx"])):
                subprocess.run([args.ebooklib_python, "-c", script, *map(str, argv)], check=True)
    print("written:", *sorted(p.name for p in HERE.iterdir() if p.suffix != ".py"), sep="\n  ", file=sys.stderr)


if __name__ == "__main__":
    main()
