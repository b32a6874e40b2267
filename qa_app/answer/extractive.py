"""The answer without a language model: the sentences of the top passages that best state it."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qa_app.models import Passage

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves
""".split())
# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace, or at a
# blank line. Abbreviations like "e.g. foo" may split; that only makes a shorter sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")


def _terms(text: str) -> list[str]:
    terms = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP or (len(word) < 2 and not word.isdigit()):
            continue
        for suffix in ("ing", "es", "ed", "s"):  # crude stemming: enough to match plural/tense
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        terms.append(word)
    return terms


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, whitespace trimmed, so text[start:end] is the sentence."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            trimmed.append((s, e))
    return trimmed


@dataclass(frozen=True)
class Sentence:
    """A sentence chosen for the extractive answer: `passage.text[start:end] == text`."""

    number: int  # the passage's position among those given, 1-based, as in a generated answer's [n]
    passage_id: str
    rank: int
    start: int
    end: int
    text: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def extractive_answer(question: str, passages: Sequence[Passage], *, max_sentences: int = 3,
                      max_passages: int = 3, max_chars: int = 800) -> list[Sentence]:
    """The 1-3 sentences of the top passages that best match the question (BM25 over sentences).

    Sentences from higher-ranked passages get a mild boost. When no sentence shares a term with the
    question, the first sentence of the top passage is returned, so there is always something to show
    when there are passages.
    """
    candidates: list[tuple[int, Passage, int, int, list[str]]] = []
    for number, passage in enumerate(passages[:max_passages], 1):
        for start, end in split_sentences(passage.text):
            candidates.append((number, passage, start, end, _terms(passage.text[start:end])))
    if not candidates:
        return []
    query = set(_terms(question))
    n = len(candidates)
    df = Counter(t for *_, terms in candidates for t in set(terms))
    avg_len = sum(len(c[4]) for c in candidates) / n or 1.0
    k1, b = 1.2, 0.75
    scored = []
    for index, (number, passage, start, end, terms) in enumerate(candidates):
        tf = Counter(terms)
        score = 0.0
        for term in query & tf.keys():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            f = tf[term]
            score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(terms) / avg_len))
        if len(terms) < 3:
            score *= 0.5  # fragments and headings make poor answers
        score /= 1 + 0.15 * (number - 1)
        scored.append((score, -index, number, passage, start, end))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    best = scored[0][0]
    chosen: list[Sentence] = []
    total = 0
    for score, _, number, passage, start, end in scored:
        if len(chosen) >= max_sentences or (chosen and score < 0.4 * best) or score <= 0 < best:
            break
        length = end - start
        if chosen and total + length > max_chars:
            continue
        chosen.append(Sentence(number, passage.id, passage.rank, start, end, passage.text[start:end],
                               round(score, 4)))
        total += length
        if best <= 0:
            break  # no overlap at all: just the lead sentence of the top passage
    return chosen


def format_extract(sentences: Sequence[Sentence]) -> str:
    return " ".join(f"{s.text} [{s.number}]" for s in sentences)

