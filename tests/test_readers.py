from pathlib import Path

import pytest

from qa_app.errors import ReadError
from qa_app.ingest.readers import kind_of, parse_html, parse_markdown, parse_rst, read_documents
from qa_app.models import Section

pytestmark = pytest.mark.unit


def test_markdown_sections_keep_heading_path() -> None:
    title, sections = parse_markdown("# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### Linux\n\napt.\n\n## Use\n\nAsk.")
    assert title == "Guide"
    assert sections == [
        Section(("Guide",), "Intro."),
        Section(("Guide", "Install"), "Run it."),
        Section(("Guide", "Install", "Linux"), "apt."),
        Section(("Guide", "Use"), "Ask."),
    ]


def test_markdown_ignores_hashes_inside_code_fences() -> None:
    _, sections = parse_markdown("# A\n\n```\n# not a heading\n```\n")
    assert sections == [Section(("A",), "```\n# not a heading\n```")]


def test_rst_heading_levels_follow_adornment_order_and_roles_become_text() -> None:
    text = "=====\nTitle\n=====\n\nTop.\n\nPart\n====\n\nSee :func:`len` and ``x``.\n\nSub\n---\n\nDeep.\n"
    title, sections = parse_rst(text)
    assert title == "Title"
    assert sections == [
        Section(("Title",), "Top."),
        Section(("Title", "Part"), "See len and x."),
        Section(("Title", "Part", "Sub"), "Deep."),
    ]


def test_html_drops_navigation_scripts_and_styles_and_keeps_headings() -> None:
    html = ("<html><head><title>T — site</title><script>var a='script text';</script><style>p{}</style></head>"
            "<body><nav>menu text</nav><h1>Main title</h1><p>Body <b>text</b>.</p><h2>Sub</h2><p>More.</p>"
            "<footer>footer text</footer></body></html>")
    title, sections = parse_html(html)
    assert title == "Main title"
    assert sections == [Section(("Main title",), "Body text."), Section(("Main title", "Sub"), "More.")]


def test_html_with_a_main_element_reads_only_the_main_content() -> None:
    _, sections = parse_html("<body><div>sidebar</div><main><h1>A</h1><p>kept</p></main><div>after</div></body>")
    assert sections == [Section(("A",), "kept")]


def test_jsonl_gives_one_document_per_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"_id": "1", "title": "T", "text": "Hello."}\n\n{"_id": 2, "text": "Bye."}\n')
    docs = read_documents(path, str(path))
    assert [(d.doc_id, d.title, d.sections) for d in docs] == [
        ("1", "T", (Section((), "Hello."),)), ("2", "", (Section((), "Bye."),))]


@pytest.mark.parametrize("content,message", [
    pytest.param(b"\x00\x01binary", "binary file", id="nul-bytes"),
    pytest.param(b"caf\xe9 latin-1", "not UTF-8", id="latin-1"),
    pytest.param(b'{"_id": "1", "text": "ok"}\nnot json\n', "line 2: not JSON", id="bad-jsonl-line"),
    pytest.param(b'{"title": "no id"}\n', 'line 1: expected an object with "_id"', id="jsonl-without-id"),
])
def test_unreadable_files_raise_read_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / ("f.jsonl" if b"_id" in content or b"title" in content else "f.txt")
    path.write_bytes(content)
    with pytest.raises(ReadError, match=message):
        read_documents(path, str(path))


def test_kind_of_knows_sphinx_rst_txt_sources() -> None:
    assert kind_of(Path("x/functools.rst.txt")) == "rst"
    assert kind_of(Path("notes.TXT")) == "text"
    assert kind_of(Path("image.png")) is None
