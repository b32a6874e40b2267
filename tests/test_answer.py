"""Pure logic of the answer step: prompt budget, citation parsing, extractive fallback, floor."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from qa_app.answer import (
    INSTRUCTIONS,
    NO_ANSWER_MESSAGE,
    NO_PASSAGES_MESSAGE,
    Answerer,
    LLMError,
    LLMTimeout,
    build_prompt,
    chat_completions_url,
    extract_citations,
    extractive_answer,
    rough_token_count,
    split_sentences,
    strip_echo,
)
from qa_app.answer.llm_client import Message
from qa_app.errors import QAError
from qa_app.models import Passage

pytestmark = pytest.mark.unit


def passage(n: int, text: str, *, title: str = "Doc", headings: tuple[str, ...] = (), score: float | None = None,
            rank: int | None = None) -> Passage:
    rank = n if rank is None else rank
    return Passage(id=f"p{n}", rank=rank, score=1.0 / rank if score is None else score, text=text,
                         source=f"src{n}.md", doc_id=f"d{n}", title=title, headings=headings, chunk=0)


PASSAGES = [
    passage(1, "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
            title="Eiffel Tower", headings=("History", "Construction")),
    passage(2, "Bread is made from flour, water and yeast. The dough rises before baking.", title="Bread"),
    passage(3, "Volcanoes erupt when magma reaches the surface. Lava flows can be slow.", title="Volcanoes"),
]


def words(text: str) -> int:
    return len(text.split())


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------------------- errors / url


def test_llm_errors_are_qa_errors_with_gateway_statuses() -> None:
    assert issubclass(LLMError, QAError) and LLMError("x").status == 502
    assert issubclass(LLMTimeout, LLMError) and LLMTimeout("x").status == 504


@pytest.mark.parametrize("base", ["http://h:8011", "http://h:8011/", "http://h:8011/v1", "http://h:8011/v1/",
                                  " http://h:8011/v1 "])
def test_base_url_with_or_without_v1(base: str) -> None:
    assert chat_completions_url(base) == "http://h:8011/v1/chat/completions"


def test_base_url_keeps_a_path_prefix_and_rejects_other_schemes() -> None:
    assert chat_completions_url("https://api.example.com/openai/v1") == \
        "https://api.example.com/openai/v1/chat/completions"
    with pytest.raises(ValueError):
        chat_completions_url("127.0.0.1:8011")


# ---------------------------------------------------------------------------------------------- prompt


def test_prompt_is_the_rules_then_one_user_message_with_numbered_passages() -> None:
    messages, used = build_prompt("Where is the Eiffel Tower?", PASSAGES)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert INSTRUCTIONS in messages[0]["content"] and not re.search(r"\[\d", messages[0]["content"])
    content = messages[1]["content"]
    assert used == PASSAGES
    positions = [content.index(f"\n[{i}] ") for i in (1, 2, 3)]
    assert positions == sorted(positions)
    assert "[1] Eiffel Tower > History > Construction\nThe Eiffel Tower is in Paris." in content
    for p in PASSAGES:
        assert p.text in content
    assert content.startswith("Passages:\n")
    assert content.endswith("\n\nQuestion: Where is the Eiffel Tower?")
    assert "only" in content and "do not answer" in content
    # the instructions name no passage number, so echoing them cites nothing
    instructions = content[content.rindex(PASSAGES[-1].text) + len(PASSAGES[-1].text):]
    assert not re.search(r"\[\d", instructions)


def test_echoed_prompt_lines_are_stripped() -> None:
    messages, _ = build_prompt("Where?", PASSAGES)
    instructions = messages[1]["content"].split("\n\n")[-2]
    assert strip_echo(f"{instructions}\nQuestion: Why?\nAnswer: In Paris [1].") == "In Paris [1]."
    assert strip_echo("In Paris [1].\nIt is tall [1].\n\nQuestion: When did it open?\nIn 1889.") == \
        "In Paris [1].\nIt is tall [1]."
    assert strip_echo(instructions) == ""
    assert strip_echo("the passages") == "the passages"  # short text is not taken for an echo


def size(messages: list[Message], count: Callable[[str], int]) -> int:
    return sum(count(m["content"]) for m in messages)


def test_prompt_drops_lowest_ranked_passages_to_fit_budget() -> None:
    long = [passage(i, f"word{i} " * 100) for i in range(1, 6)]
    full, _ = build_prompt("q?", long, 10_000, words)
    per_passage = 101
    budget = size(full, words) - 2 * per_passage  # room for three of five
    messages, used = build_prompt("q?", long, budget, words)
    assert [p.id for p in used] == ["p1", "p2", "p3"]
    assert size(messages, words) <= budget
    assert "[3] " in messages[-1]["content"] and "[4] " not in messages[-1]["content"]
    assert "word4" not in messages[-1]["content"]


def test_prompt_cuts_a_lone_passage_that_does_not_fit() -> None:
    huge = [passage(1, "alpha " * 5000), passage(2, "beta " * 10)]
    messages, used = build_prompt("q?", huge, 500, rough_token_count)
    assert [p.id for p in used] == ["p1"]
    content = messages[-1]["content"]
    assert size(messages, rough_token_count) <= 500
    assert "alpha" in content and "beta" not in content and " …" in content


def test_prompt_without_passages_still_asks() -> None:
    messages, used = build_prompt("q?", [])
    assert used == [] and "Question: q?" in messages[-1]["content"]


# ---------------------------------------------------------------------------------------------- citations


def test_citations_single_list_and_range() -> None:
    text, cites, invalid = extract_citations("Paris [1]. Bread [2, 3]. All [1-3].", PASSAGES)
    assert invalid == 0
    assert text == "Paris [1]. Bread [2, 3]. All [1, 2, 3]."
    assert cites == [{"number": 1, "passage_id": "p1", "rank": 1}, {"number": 2, "passage_id": "p2", "rank": 2},
                     {"number": 3, "passage_id": "p3", "rank": 3}]


def test_citations_invalid_numbers_are_removed_and_counted() -> None:
    text, cites, invalid = extract_citations("Paris [7]. Bread [2, 9]. Zero [0]. Range [3-5].", PASSAGES)
    assert text == "Paris. Bread [2]. Zero. Range [3]."
    assert invalid == 5  # 7, 9, 0, 4, 5
    assert [c["number"] for c in cites] == [2, 3]
    assert not re.search(r"\[(?:0|[4-9])\]", text)


def test_citations_map_numbers_to_passages_shown_not_ranks() -> None:
    shown = [passage(1, "a", rank=4), passage(2, "b", rank=9)]
    _, cites, invalid = extract_citations("x [2] y [1] z [2]", shown)
    assert invalid == 0
    assert cites == [{"number": 2, "passage_id": "p2", "rank": 9}, {"number": 1, "passage_id": "p1", "rank": 4}]


def test_citations_leave_code_and_indexing_alone() -> None:
    answer = "Use `xs[5]` or xs[7] or f()[9]:\n```\nys[8]\n```\nsee [1] and [6]"
    text, cites, invalid = extract_citations(answer, PASSAGES)
    assert "`xs[5]`" in text and "xs[7]" in text and "f()[9]" in text and "ys[8]" in text
    assert text.endswith("see [1] and")
    assert invalid == 1 and [c["number"] for c in cites] == [1]


def test_removed_marker_takes_its_space_with_it() -> None:
    text, _, invalid = extract_citations("foo [7] bar [1] baz [8][9]\nnext", PASSAGES)
    assert text == "foo bar [1] baz\nnext" and invalid == 3


def test_citations_with_no_passages_counts_everything_invalid() -> None:
    text, cites, invalid = extract_citations("A [1][2].", [])
    assert (text, cites, invalid) == ("A.", [], 2)


def test_huge_range_is_not_expanded() -> None:
    _, cites, invalid = extract_citations("see [1-5000]", PASSAGES)
    assert [c["number"] for c in cites] == [1] and invalid == 1


# ---------------------------------------------------------------------------------------------- extractive


def test_sentence_offsets_round_trip() -> None:
    text = "  First one. Second (with e.g. parens)! Third?\n\nFourth without end"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second (with e.g. parens)!", "Third?",
                                             "Fourth without end"]


def test_extractive_picks_the_matching_sentence_with_offsets() -> None:
    chosen = extractive_answer("When was the Eiffel Tower completed?", PASSAGES)
    assert 1 <= len(chosen) <= 3
    assert chosen[0].passage_id == "p1"
    assert any("1889" in s.text for s in chosen)
    for s in chosen:
        source = next(p for p in PASSAGES if p.id == s.passage_id)
        assert source.text[s.start:s.end] == s.text
        assert s.number == PASSAGES.index(source) + 1


def test_extractive_prefers_matching_sentence_in_lower_passage() -> None:
    chosen = extractive_answer("how does dough rise with yeast", PASSAGES)
    assert chosen[0].passage_id == "p2"
    assert "dough" in chosen[0].text or "yeast" in chosen[0].text
    assert all(s.score > 0 for s in chosen)


def test_extractive_without_overlap_returns_lead_sentence_of_top_passage() -> None:
    chosen = extractive_answer("quantum chromodynamics", PASSAGES)
    assert len(chosen) == 1
    assert chosen[0].passage_id == "p1" and chosen[0].start == 0
    assert chosen[0].text == "The Eiffel Tower is in Paris."


def test_extractive_limits() -> None:
    many = [passage(1, " ".join(f"Lava sentence number {i} mentions lava." for i in range(20)))]
    chosen = extractive_answer("lava", many, max_sentences=3)
    assert len(chosen) == 3
    assert extractive_answer("anything", []) == []


# ---------------------------------------------------------------------------------------------- answerer


async def collect(answerer: Answerer, question: str, passages: list[Passage]) -> list[tuple[str, object]]:
    return [(e.kind, e.value) async for e in answerer.stream(question, passages)]


def test_without_client_the_answer_is_extracted() -> None:
    events = run(collect(Answerer(None), "When was the Eiffel Tower completed?", PASSAGES))
    assert [k for k, _ in events] == ["extracted", "citations", "done"]
    done = events[-1][1]
    assert isinstance(done, dict)
    assert done["kind"] == "extracted" and "error" not in done and "1889" in done["text"]
    assert re.search(r"\[1\]", done["text"])
    result = run(Answerer(None).complete("When was the Eiffel Tower completed?", PASSAGES)).as_dict()
    assert result["kind"] == "extracted" and result["citations"][0]["passage_id"] == "p1"
    assert set(result) >= {"text", "citations", "invalid_citations", "model", "timings_ms", "kind"}


def test_floor_gives_no_answer() -> None:
    low = [passage(1, "Lava is hot.", score=0.1), passage(2, "Bread.", score=0.05)]
    result = run(Answerer(None, floor=0.3).complete("lava?", low)).as_dict()
    assert result["kind"] == "no_answer" and result["text"] == NO_ANSWER_MESSAGE and result["citations"] == []
    events = run(collect(Answerer(None, floor=0.3), "lava?", low))
    assert [k for k, _ in events] == ["no_answer", "citations", "done"]
    assert run(Answerer(None, floor=0.05).complete("lava?", low)).as_dict()["kind"] == "extracted"
    assert run(Answerer(None).complete("lava?", low)).as_dict()["kind"] == "extracted"  # no floor


def test_floor_uses_the_given_score_and_skips_unknown() -> None:
    low = [passage(1, "Lava is hot.", score=0.9)]
    dense = Answerer(None, floor=0.5, floor_score=lambda p: 0.2)
    assert run(dense.complete("lava?", low)).as_dict()["kind"] == "no_answer"
    unknown = Answerer(None, floor=0.5, floor_score=lambda p: None)
    assert run(unknown.complete("lava?", low)).as_dict()["kind"] == "extracted"


def test_no_passages_is_no_answer() -> None:
    result = run(Answerer(None).complete("anything?", [])).as_dict()
    assert result["kind"] == "no_answer" and result["text"] == NO_PASSAGES_MESSAGE
