import pytest

from qa_app.embedding.encoder import DenseEncoder
from qa_app.ingest.chunking import Chunker
from qa_app.models import Document, Section


def words(text: str) -> int:
    return len(text.split())


def doc(*sections: Section, title: str = "T") -> Document:
    return Document("src.md", "", title, tuple(sections))


@pytest.mark.unit
def test_short_sections_become_one_passage_each_with_their_heading_path() -> None:
    chunker = Chunker(words, max_tokens=50, overlap=0, window=256)
    passages = chunker.split(doc(Section(("T", "A"), "one two"), Section(("T", "B"), "three")))
    assert [(p.headings, p.text, p.chunk) for p in passages] == [(("T", "A"), "one two", 0), (("T", "B"), "three", 1)]
    assert passages[0].embed_text == "T › A\none two"


@pytest.mark.unit
def test_long_text_is_split_within_budget_with_overlap() -> None:
    sentences = " ".join(f"Sentence number {i} is here." for i in range(40))  # 5 words each
    chunker = Chunker(words, max_tokens=30, overlap=10, window=256)
    passages = chunker.split(doc(Section((), sentences)))
    assert len(passages) > 1
    assert all(words(p.text) <= 30 for p in passages)
    # The last sentences of one passage open the next.
    for before, after in zip(passages, passages[1:], strict=False):
        assert before.text.split(". ")[-1].rstrip(".") in after.text
    assert "Sentence number 39 is here." in passages[-1].text


@pytest.mark.unit
def test_a_sentence_longer_than_the_budget_is_cut_into_word_runs() -> None:
    chunker = Chunker(words, max_tokens=10, overlap=0, window=256)
    passages = chunker.split(doc(Section((), " ".join(f"w{i}" for i in range(35)))))
    assert [words(p.text) for p in passages] == [10, 10, 10, 5]


@pytest.mark.unit
def test_ids_are_stable_and_differ_for_repeated_text() -> None:
    chunker = Chunker(words, max_tokens=3, overlap=0, window=256)
    first = chunker.split(doc(Section((), "same words here\n\nsame words here")))
    again = chunker.split(doc(Section((), "same words here\n\nsame words here")))
    assert [p.id for p in first] == [p.id for p in again]
    assert len({p.id for p in first}) == 2


def test_real_tokenizer_keeps_every_passage_inside_the_model_window(encoder: DenseEncoder) -> None:
    chunker = Chunker(encoder.count_tokens, max_tokens=200, overlap=32, window=encoder.info.window)
    text = "\n\n".join("Python's functools.lru_cache decorator memoizes calls " * 30 for _ in range(5))
    passages = chunker.split(doc(Section(("A very long heading " * 3,), text), title="functools " * 5))
    assert len(passages) > 5
    assert max(encoder.count_tokens(p.embed_text) + 2 for p in passages) <= encoder.info.window


@pytest.mark.unit
def test_a_sentence_longer_than_the_budget_is_cut_into_the_longest_runs_that_fit_with_few_counts() -> None:
    calls = 0

    def pieces(text: str) -> int:  # a word of n letters counts as ceil(n / 3) pieces, as subwords do
        nonlocal calls
        calls += 1
        return sum(-(-len(w) // 3) for w in text.split())

    text = " ".join("abcdefgh"[: 1 + (i * 7) % 8] for i in range(2000))  # one 2,000-word "sentence"
    chunker = Chunker(pieces, max_tokens=60, overlap=0, window=256)
    passages = chunker.split(doc(Section((), text)), "default")
    counted = calls
    words_in_order = [w for p in passages for w in p.text.split()]
    assert words_in_order == text.split()
    for before, after in zip(passages, passages[1:], strict=False):
        assert pieces(before.text) <= 60 < pieces(before.text + " " + after.text.split()[0])
    assert counted < len(passages) * 10  # a bisection per run, not a call per word
