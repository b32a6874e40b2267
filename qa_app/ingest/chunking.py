"""Split documents into passages bounded by the model's token window, keeping heading paths and pages."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from qa_app.models import DEFAULT_CORPUS, Document, Passage, passage_id

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\S+")

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class _Piece:
    """A paragraph, sentence or run of words, where it lies in the section's text, and its size."""

    text: str
    tokens: int
    joiner: str  # what joins it to the piece before it in a passage
    start: int
    end: int


class Chunker:
    """Packs paragraphs, then sentences, then words into passages of at most `max_tokens` word pieces."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int, overlap: int, window: int) -> None:
        if overlap >= max_tokens:
            raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({max_tokens})")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.window = window  # the model's limit for the whole embedded text, special tokens included

    def split(self, document: Document, corpus: str = DEFAULT_CORPUS) -> list[Passage]:
        passages: list[Passage] = []
        seen: dict[str, int] = {}
        for section in document.sections:
            probe = Passage("", document.source, document.doc_id, document.title, section.headings, 0, "")
            prefix_tokens = self.count_tokens(probe.embed_text) + 2 if probe.embed_text else 2
            budget = min(self.max_tokens, max(16, self.window - prefix_tokens))
            for text, start, end in self._pack(section.text, budget):
                first, last = section.page_at(start), section.page_at(max(start, end - 1))
                draft = Passage("", document.source, document.doc_id, document.title, section.headings,
                                len(passages), text, corpus, page=first.page if first else 0,
                                page_end=last.page if last else 0, page_label=first.label if first else "",
                                format=document.format)
                occurrence = seen.get(draft.embed_text, 0)
                seen[draft.embed_text] = occurrence + 1
                pid = passage_id(document.source, document.doc_id, draft.embed_text, occurrence, corpus)
                passages.append(replace(draft, id=pid))
        return passages

    def _pack(self, text: str, budget: int) -> Iterator[tuple[str, int, int]]:
        """(passage text, start, end): pieces packed up to `budget`, the next passage starting with the
        last `overlap` tokens of pieces of the one before."""
        current: list[_Piece] = []
        size = 0
        for piece in self._pieces(text, budget):
            if current and size + piece.tokens > budget:
                yield _joined(current)
                current = self._overlap_tail(current, budget - piece.tokens)
                size = sum(p.tokens for p in current)
            current.append(piece)
            size += piece.tokens
        if current:
            yield _joined(current)

    def _overlap_tail(self, pieces: list[_Piece], room: int) -> list[_Piece]:
        tail: list[_Piece] = []
        size = 0
        for piece in reversed(pieces):
            if size + piece.tokens > min(self.overlap, room):
                break
            tail.insert(0, piece)
            size += piece.tokens
        return tail

    def _pieces(self, text: str, budget: int) -> Iterator[_Piece]:
        """Paragraphs that fit; longer ones as sentences; longer sentences as runs of words."""
        for start, end in _spans(text, _PARAGRAPH_BREAK):
            while start < end and text[start] == "\n":
                start += 1
            while end > start and text[end - 1] == "\n":
                end -= 1
            paragraph = text[start:end]
            if not paragraph.strip():
                continue
            tokens = self.count_tokens(paragraph)
            if tokens <= budget:
                yield _Piece(paragraph, tokens, "\n\n", start, end)
                continue
            joiner = "\n\n"
            for s_start, s_end in _spans(paragraph, _SENTENCE_END):
                sentence = paragraph[s_start:s_end]
                sentence_tokens = self.count_tokens(sentence)
                if sentence_tokens <= budget:
                    yield _Piece(sentence, sentence_tokens, joiner, start + s_start, start + s_end)
                else:
                    yield from self._word_runs(sentence, budget, joiner, start + s_start)
                joiner = " "

    def _word_runs(self, sentence: str, budget: int, joiner: str, offset: int) -> Iterator[_Piece]:
        """Runs of as many whole words as fit, found by bisection: a few tokenizer calls per run
        (a word always goes in, even one longer than the budget)."""
        spans = [m.span() for m in _WORD.finditer(sentence)]
        words = [sentence[s:e] for s, e in spans]
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
            yield _Piece(" ".join(words[start:fits]), fits_tokens, joiner, offset + spans[start][0],
                         offset + spans[fits - 1][1])
            joiner = " "
            start = fits


def _spans(text: str, separator: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    """(start, end) of the parts of `text` between matches of `separator`, as `separator.split` cuts."""
    start = 0
    for match in separator.finditer(text):
        yield start, match.start()
        start = match.end()
    yield start, len(text)


def _joined(pieces: list[_Piece]) -> tuple[str, int, int]:
    out = pieces[0].text
    for piece in pieces[1:]:
        out += piece.joiner + piece.text
    return out, pieces[0].start, pieces[-1].end

