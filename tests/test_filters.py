import pytest

from qa_app.errors import FilterError
from qa_app.models import TextFilter
from qa_app.store.expressions import build_expression, check_value, matches, needs_recheck, string_literal

pytestmark = pytest.mark.unit


def test_no_filter_gives_no_expression() -> None:
    assert build_expression(TextFilter()) == ""
    assert build_expression(TextFilter(contains="\n\t")) == ""  # nothing left to match


def test_quotes_are_escaped_and_like_wildcards_cut_the_value_into_pieces() -> None:
    f = TextFilter(contains='100% "x"_y')
    assert build_expression(f) == r'text like "%100% \"x\"%y%"' and needs_recheck(f)
    assert matches(f, {"text": 'a 100% "x"_y b'}) and not matches(f, {"text": '100 % "x"zy'})


def test_backslashes_split_the_pattern_and_are_checked_again_exactly() -> None:
    f = TextFilter(contains="C:\\temp")
    assert build_expression(f) == 'text like "%C:%temp%"' and needs_recheck(f)
    assert matches(f, {"text": "in C:\\temp now"}) and not matches(f, {"text": "C:/temp"})


def test_several_fields_are_joined_by_and_in_a_fixed_order() -> None:
    expr = build_expression(TextFilter(contains="a", source="b", title="c"))
    assert expr == 'text like "%a%" and source like "%b%" and title like "%c%"'


@pytest.mark.parametrize("value", ['") or id > 0 or ("', "' or 1=1 --", "x) || (y", "text like \"%\""])
def test_hostile_values_stay_inside_one_string_literal(value: str) -> None:
    expr = build_expression(TextFilter(contains=value))
    assert expr.startswith('text like "') and expr.endswith('"')
    body = expr[len('text like "'):-1]
    # Every quote inside the literal is escaped, so the literal cannot end early.
    unescaped = [i for i, ch in enumerate(body) if ch == '"' and (len(body[:i]) - len(body[:i].rstrip("\\"))) % 2 == 0]
    assert unescaped == []


def test_line_breaks_become_a_loose_pattern_checked_again_exactly() -> None:
    f = TextFilter(contains="foo\nbar")
    assert build_expression(f) == 'text like "%foo%bar%"' and needs_recheck(f)
    assert matches(f, {"text": "a foo  bar b"}) and not matches(f, {"text": "foo, then bar"})
    assert not needs_recheck(TextFilter(contains="foo bar"))


@pytest.mark.parametrize("value,message", [("a\x00b", "control characters"), ("x" * 501, "longer than 500")])
def test_check_value_rejects_what_cannot_be_expressed(value: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        check_value("contains", value, 500)


def test_string_literal_escapes_backslash_first() -> None:
    assert string_literal('a\\"b') == '"a\\\\\\"b"'
