"""Passages rendered for reading: markup gone, code in monospace, everything escaped, marks in place."""

from __future__ import annotations

import pytest

from qa_app.web.passage_text import render_passage

pytestmark = pytest.mark.unit


def test_rest_directives_fields_emphasis_and_hard_breaks_become_readable_blocks() -> None:
    text = ("The *functools* module is for higher-order\nfunctions.\n\n.. doctest::\n\n   >>> square(3)\n   9\n\n"
            ":Author: Raymond **Hettinger**\n\nUse it like this::\n\n    cached = lru_cache(f)\n")
    html = render_passage(text, "rst")
    assert html == ("<p>The functools module is for higher-order functions.</p>"
                    "<pre><code>&gt;&gt;&gt; square(3)\n9</code></pre>"
                    "<p>Author: Raymond Hettinger</p><p>Use it like this:</p>"
                    "<pre><code>cached = lru_cache(f)</code></pre>")


def test_markdown_code_spans_fences_links_and_lists() -> None:
    text = "# Setup\n\nRun `pip install` from [the docs](https://x.test).\n\n```sh\nmake <all>\n```\n\n- one\n  - two\n"
    assert render_passage(text, "markdown") == (
        "<p>Setup</p><p>Run <code>pip install</code> from the docs.</p><pre><code>make &lt;all&gt;</code></pre>"
        '<ul class="items"><li>one</li><li class="depth-1">two</li></ul>')


@pytest.mark.parametrize("fmt", ["markdown", "rst", "html", "pdf", "text"])
def test_hostile_markup_in_a_document_is_shown_escaped_never_run(fmt: str) -> None:
    html = render_passage('<script>alert(1)</script> <img src=x onerror="alert(2)"> `<b>`', fmt, ["script"])
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;" in html


def test_question_words_and_the_quoted_sentence_are_marked_by_their_place_in_the_stored_text() -> None:
    text = "First sentence here.\nThe *colony* swarms in late spring. Last one."
    start = text.index("The *colony*")
    end = text.index("spring.") + len("spring.")
    html = render_passage(text, "markdown", ["swarms"], [(start, end)])
    assert html == ('<p>First sentence here. <mark class="answer">The colony <mark>swarms</mark> in late spring.</mark>'
                    ' Last one.</p>')


def test_text_without_markup_keeps_its_line_breaks_and_paragraphs() -> None:
    assert render_passage("Name | Size\nalpha | 3\n\nNext *not emphasis*", "pdf") == (
        "<p>Name | Size\nalpha | 3</p><p>Next *not emphasis*</p>")
