import pytest

from qa_app.web.highlight import cite_links, highlight, query_terms

pytestmark = pytest.mark.unit


def test_query_terms_drop_stop_words_and_duplicates() -> None:
    assert query_terms("How do I cache the CACHE results?") == ["results", "cache"]


def test_highlight_marks_word_starts_case_insensitively() -> None:
    assert str(highlight("Caches and cached, not precache.", ["cache"])) == \
        "<mark>Caches</mark> and <mark>cached</mark>, not precache."


def test_highlight_escapes_markup_in_text_and_terms() -> None:
    out = str(highlight('<script>alert("x")</script> script', ["script"]))
    assert out == "&lt;<mark>script</mark>&gt;alert(&#34;x&#34;)&lt;/<mark>script</mark>&gt; <mark>script</mark>"
    assert "<script>" not in str(highlight("<b>x</b>", []))


def test_answer_spans_are_marked_around_term_highlights() -> None:
    out = str(highlight("A cache <b>. The cache is fast.", ["cache"], [(13, 31)]))
    assert out == ('A <mark>cache</mark> &lt;b&gt;. <mark class="answer">The <mark>cache</mark> is fast.</mark>')


def test_citations_become_links_and_the_rest_is_escaped() -> None:
    assert str(cite_links("Use <cache> [1] and [2, 3].")) == (
        'Use &lt;cache&gt; [<a class="cite" href="#p-1">1</a>] and '
        '[<a class="cite" href="#p-2">2</a>, <a class="cite" href="#p-3">3</a>].')
