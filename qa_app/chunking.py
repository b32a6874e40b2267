"""Split documents into passages bounded by the model's token window, keeping heading paths."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from qa_app.readers import Document

HEADING_SEPARATOR = " › "
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Passage:
    id: str
    source: str
    doc_id: str
    title: str
    headings: tuple[str, ...]
    chunk: int
    text: str
    corpus: str = "default"

    @property
    def heading_path(self) -> str:
        return HEADING_SEPARATOR.join(self.headings)

    @property
    def embed_text(self) -> str:
        """What the dense model and BM25 see: title and heading path give the body its context."""
        context = [part for part in (self.title, *self.headings) if part]
        # Skip a first heading that repeats the title.
        if len(context) > 1 and context[1] == context[0]:
            context.pop(1)
        return "\n".join([HEADING_SEPARATOR.join(context), self.text]) if context else self.text

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.embed_text.encode()).hexdigest()


def passage_id(source: str, doc_id: str, embed_text: str, occurrence: int, corpus: str = "default") -> str:
    """Stable id from where a passage comes from (corpus, file, document) and what it says."""
    parts = [source, doc_id, embed_text, str(occurrence)]
    key = "\x1f".join(parts if corpus == "default" else [corpus, *parts])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Chunker:
    """Packs paragraphs, then sentences, then words into passages of at most `max_tokens` word pieces."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int, overlap: int, window: int) -> None:
        if overlap >= max_tokens:
            raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({max_tokens})")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.window = window  # the model's limit for the whole embedded text, special tokens included

    def split(self, document: Document, corpus: str = "default") -> list[Passage]:
        passages: list[Passage] = []
        seen: dict[str, int] = {}
        for section in document.sections:
            probe = Passage("", document.source, document.doc_id, document.title, section.headings, 0, "")
            prefix_tokens = self.count_tokens(probe.embed_text) + 2 if probe.embed_text else 2
            budget = min(self.max_tokens, max(16, self.window - prefix_tokens))
            for text in self._pack(section.text, budget):
                draft = Passage("", document.source, document.doc_id, document.title, section.headings,
                                len(passages), text, corpus)
                occurrence = seen.get(draft.embed_text, 0)
                seen[draft.embed_text] = occurrence + 1
                pid = passage_id(document.source, document.doc_id, draft.embed_text, occurrence, corpus)
                passages.append(dataclasses.replace(draft, id=pid))
        return passages

    def _pack(self, text: str, budget: int) -> Iterator[str]:
        pieces = list(self._pieces(text, budget))
        current: list[tuple[str, int, str]] = []  # (text, tokens, joiner before it)
        size = 0
        for piece, tokens, joiner in pieces:
            if current and size + tokens > budget:
                yield _join(current)
                current = self._overlap_tail(current, budget - tokens)
                size = sum(t for _, t, _ in current)
            current.append((piece, tokens, joiner))
            size += tokens
        if current:
            yield _join(current)

    def _overlap_tail(self, pieces: list[tuple[str, int, str]], room: int) -> list[tuple[str, int, str]]:
        tail: list[tuple[str, int, str]] = []
        size = 0
        for piece in reversed(pieces):
            if size + piece[1] > min(self.overlap, room):
                break
            tail.insert(0, piece)
            size += piece[1]
        return tail

    def _pieces(self, text: str, budget: int) -> Iterator[tuple[str, int, str]]:
        """Paragraphs that fit; longer ones as sentences; longer sentences as runs of words."""
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = paragraph.strip("\n")
            if not paragraph.strip():
                continue
            tokens = self.count_tokens(paragraph)
            if tokens <= budget:
                yield paragraph, tokens, "\n\n"
                continue
            joiner = "\n\n"
            for sentence in _SENTENCE_END.split(paragraph):
                sentence_tokens = self.count_tokens(sentence)
                if sentence_tokens <= budget:
                    yield sentence, sentence_tokens, joiner
                else:
                    yield from self._word_runs(sentence, budget, joiner)
                joiner = " "

    def _word_runs(self, sentence: str, budget: int, joiner: str) -> Iterator[tuple[str, int, str]]:
        """Runs of as many whole words as fit, found by bisection: a few tokenizer calls per run
        (a word always goes in, even one longer than the budget)."""
        words = sentence.split()
        start = 0
        while start < len(words):
            fits, fits_tokens = start + 1, self.count_tokens(words[start])
            too_many = min(len(words), start + budget) + 1  # every word is at least one token
            while too_many - fits > 1:
                middle = (fits + too_many) // 2
                tokens = self.count_tokens(" ".join(words[start:middle]))
                if tokens <= budget:
                    fits, fits_tokens = middle, tokens
                else:
                    too_many = middle
            yield " ".join(words[start:fits]), fits_tokens, joiner
            joiner = " "
            start = fits


def _join(pieces: list[tuple[str, int, str]]) -> str:
    out = pieces[0][0]
    for text, _, joiner in pieces[1:]:
        out += joiner + text
    return out
