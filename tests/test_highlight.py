from qa_app.highlight import highlight, query_terms


def test_query_terms_drop_stop_words_and_duplicates() -> None:
    assert query_terms("How do I cache the CACHE results?") == ["results", "cache"]


def test_highlight_marks_word_starts_case_insensitively() -> None:
    assert str(highlight("Caches and cached, not precache.", ["cache"])) == \
        "<mark>Caches</mark> and <mark>cached</mark>, not precache."


def test_highlight_escapes_markup_in_text_and_terms() -> None:
    out = str(highlight('<script>alert("x")</script> script', ["script"]))
    assert out == "&lt;<mark>script</mark>&gt;alert(&#34;x&#34;)&lt;/<mark>script</mark>&gt; <mark>script</mark>"
    assert "<script>" not in str(highlight("<b>x</b>", []))
