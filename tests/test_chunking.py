from qa_app.chunking import Chunker
from qa_app.encoders import DenseEncoder
from qa_app.readers import Document, Section


def words(text: str) -> int:
    return len(text.split())


def doc(*sections: Section, title: str = "T") -> Document:
    return Document("src.md", "", title, tuple(sections))


def test_short_sections_become_one_passage_each_with_their_heading_path() -> None:
    chunker = Chunker(words, max_tokens=50, overlap=0, window=256)
    passages = chunker.split(doc(Section(("T", "A"), "one two"), Section(("T", "B"), "three")))
    assert [(p.headings, p.text, p.chunk) for p in passages] == [(("T", "A"), "one two", 0), (("T", "B"), "three", 1)]
    assert passages[0].embed_text == "T › A\none two"


def test_long_text_is_split_within_budget_with_overlap() -> None:
    sentences = " ".join(f"Sentence number {i} is here." for i in range(40))  # 5 words each
    chunker = Chunker(words, max_tokens=30, overlap=10, window=256)
    passages = chunker.split(doc(Section((), sentences)))
    assert len(passages) > 1
    assert all(words(p.text) <= 30 for p in passages)
    # The last sentences of one passage open the next.
    for before, after in zip(passages, passages[1:]):
        assert before.text.split(". ")[-1].rstrip(".") in after.text
    assert "Sentence number 39 is here." in passages[-1].text


def test_a_sentence_longer_than_the_budget_is_cut_into_word_runs() -> None:
    chunker = Chunker(words, max_tokens=10, overlap=0, window=256)
    passages = chunker.split(doc(Section((), " ".join(f"w{i}" for i in range(35)))))
    assert [words(p.text) for p in passages] == [10, 10, 10, 5]


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
