"""The claims of a generated answer, each checked against the passages it cites.

Every sentence (or list item) of the answer is a claim and must cite a shown passage as [n]. A claim
is supported when one of the passages it cites supports it, which is measured, not asked of a model:
the claim's cosine similarity to the passage (to its closest sentence, or to the whole passage,
whichever is higher) is at least `Thresholds.dense`, and at least `Thresholds.overlap` of the claim's
content words occur in the passage. The thresholds were calibrated on gold answers against their
gold passages and against other passages (docs/research/answers/README.md).

Not checked: code blocks, lead-ins that say nothing ("Here is how:"), and sentences saying the
documents do not answer (a decline: see `declines`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qa_app.answer.citations import cited_numbers, strip_markers
from qa_app.answer.extractive import EMBED_CHARS, cosine, passage_units, split_sentences, terms
from qa_app.models import Passage

_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_LEADING_MARKERS = re.compile(r"(?:\s*\[\s*\d[\d\s,;\-–]*\])+[.,;:]?")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
# "The documents do not answer ...", "The passages don't mention ...", "There is no information about ..."
_DECLINE = re.compile(
    r"\b(?:(?:do|does|did)(?: not|n't)|cannot|can't|unable to)\s+(?:seem to\s+|appear to\s+)?"
    r"(?:contain|answer|mention|provide|include|say|cover|specify|address|describe|discuss|state|explain|give)"
    r"|\bnot (?:mentioned|specified|provided|covered|stated|given|included|discussed|addressed|found|answered)\b"
    r"|\bno (?:information|mention|answer|details|relevant)\b",
    re.IGNORECASE)
_ABOUT_SOURCES = re.compile(r"\b(?:passages?|documents?|documentation|context|sources?|texts?|provided)\b",
                            re.IGNORECASE)
_DONT_KNOW = re.compile(r"^\W*(?:i (?:do not|don't) know|unknown|no answer)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Thresholds:
    """A cited passage supports a claim when both measures reach these (calibrated: see module doc)."""

    dense: float = 0.5
    overlap: float = 0.4


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer: where it is in the text, what it cites, and whether that holds up.

    `status`: supported, unsupported (its passages do not say it), uncited (it cites no shown
    passage), or one that is not checked: decline, lead_in, source (it only names the passages the
    sentences before it come from: "This is from passage [1].").
    """

    start: int
    end: int
    text: str
    citations: tuple[int, ...]
    status: str
    dense: float | None = None  # the best cited passage's measures
    overlap: float | None = None
    passage: int | None = None  # the cited passage that supports it best

    @property
    def supported(self) -> bool:
        return self.status not in ("unsupported", "uncited")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["citations"] = list(self.citations)
        data["supported"] = self.supported
        return data


def claim_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each claim in `text`: sentences and list items, code blocks left out. Markers a
    model puts after the full stop ("... France. [1]") belong to the sentence before them."""
    spans: list[tuple[int, int]] = []
    fences = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    offset = 0
    for line in text.split("\n"):
        line_start = offset
        offset += len(line) + 1
        if any(s <= line_start < e for s, e in fences) or not line.strip():
            continue
        for s, e in split_sentences(line):
            start, end = line_start + s, line_start + e
            lead = _LEADING_MARKERS.match(text, start, end)
            if lead and spans and lead.end() > start:
                spans[-1] = (spans[-1][0], lead.end())  # the markers end the previous sentence
                start = lead.end()
                while start < end and text[start].isspace():
                    start += 1
            if start < end:
                spans.append((start, end))
    return spans


def declines(sentence: str) -> bool:
    """Whether a sentence says the documents do not answer (as the prompt asks a model to say)."""
    return bool(_DONT_KNOW.search(sentence)) or (bool(_DECLINE.search(sentence))
                                                 and bool(_ABOUT_SOURCES.search(sentence)))


# The words of a sentence that only names where the sentences before it come from ("Passage [4].",
# "This statement is from passage [1].", "(Source: [2])"), stemmed as `terms` stems them.
_SOURCE_WORDS = frozenset(terms(
    "passage passages source sources document documents statement statements information answer code "
    "example snippet text from based taken see provided comes come given according refer reference referenced "
    "described mentioned explained shown found cited quoted above below following previous"))


def _names_sources_only(text: str, numbers: tuple[int, ...]) -> bool:
    return bool(numbers) and set(terms(text)) <= _SOURCE_WORDS


def _inherited(spans: Sequence[tuple[int, int]], numbers: Sequence[tuple[int, ...]], sources: Sequence[bool],
               answer: str) -> list[tuple[int, ...]]:
    """The passages each claim cites, counting the citations a model puts once for several sentences:
    a sentence without markers takes those of the next citing sentence of its paragraph ("A. B [1]."),
    and a sentence that only names sources gives its own to every uncited sentence back to the last
    one that cites ("A. B. C. This is from passage [1].")."""
    cited = list(numbers)
    for i in range(len(spans)):
        if cited[i] or sources[i]:
            continue
        for j in range(i + 1, len(spans)):
            if numbers[j]:  # the next citing sentence; the next paragraph's citation is not this one's
                if sources[j] or "\n\n" not in answer[spans[i][1]:spans[j][0]]:
                    cited[i] = numbers[j]
                break
    return cited


def _lead_in(claim: str) -> bool:
    return claim.rstrip().endswith(":") and len(claim.split()) <= 12


def support(claim: str, passage: Passage, vectors: Mapping[str, np.ndarray] | None) -> tuple[float | None, float]:
    """(dense, overlap) of a claim against one passage: the cosine to the closest of the passage's
    sentences or to the whole passage (None without vectors), and the share of the claim's content
    words found in the passage (its title and headings included)."""
    words = set(terms(claim))
    found = set(terms(passage.embed_text))
    overlap = len(words & found) / len(words) if words else 1.0
    if vectors is None or claim not in vectors:
        return None, overlap
    claim_vector = vectors[claim]
    texts = [passage.text[:EMBED_CHARS * 3], *(u.embed_text for u in passage_units(1, passage))]
    dense = max((cosine(claim_vector, vectors[t]) for t in texts if t in vectors), default=None)
    return dense, overlap


def texts_to_embed(answer: str, passages: Sequence[Passage]) -> list[str]:
    """What `check_claims` needs vectors of: each claim (markers removed), and each cited passage
    whole and sentence by sentence."""
    claims = [strip_markers(answer[s:e]).strip() for s, e in claim_spans(answer)]
    cited = {n for s, e in claim_spans(answer) for n in cited_numbers(answer[s:e])}
    texts = dict.fromkeys(c for c in claims if c)
    for number in sorted(cited):
        if 1 <= number <= len(passages):
            passage = passages[number - 1]
            texts.setdefault(passage.text[:EMBED_CHARS * 3])
            for unit in passage_units(number, passage):
                texts.setdefault(unit.embed_text)
    return list(texts)


def check_claims(answer: str, passages: Sequence[Passage], vectors: Mapping[str, np.ndarray] | None = None,
                 thresholds: Thresholds = THRESHOLDS) -> list[Claim]:
    """Each claim of `answer` (its [n] numbering `passages`), checked. Without vectors only the word
    overlap is tested."""
    spans = claim_spans(answer)
    texts = [strip_markers(answer[s:e]).strip() for s, e in spans]
    numbers = [tuple(n for n in cited_numbers(answer[s:e]) if 1 <= n <= len(passages)) for s, e in spans]
    sources = [_names_sources_only(t, n) for t, n in zip(texts, numbers, strict=True)]
    cites = _inherited(spans, numbers, sources, answer)
    claims: list[Claim] = []
    for (start, end), text, own, source, cited in zip(spans, texts, numbers, sources, cites, strict=True):
        raw = answer[start:end]
        if declines(text):
            claims.append(Claim(start, end, raw, own, "decline"))
            continue
        if source:
            claims.append(Claim(start, end, raw, own, "source"))
            continue
        if _lead_in(text) or not terms(text):
            claims.append(Claim(start, end, raw, own, "lead_in"))
            continue
        if not cited:
            claims.append(Claim(start, end, raw, own, "uncited"))
            continue
        best: tuple[bool, float, float | None, float, int] | None = None
        for number in cited:
            dense, overlap = support(text, passages[number - 1], vectors)
            holds = overlap >= thresholds.overlap and (dense is None or dense >= thresholds.dense)
            key = (holds, (dense or 0.0) + overlap, dense, overlap, number)
            if best is None or key[:2] > best[:2]:
                best = key
        assert best is not None
        holds, _, dense, overlap, number = best
        claims.append(Claim(start, end, raw, cited, "supported" if holds else "unsupported",
                            None if dense is None else round(dense, 4), round(overlap, 4), number))
    return claims


def declined(claims: Sequence[Claim]) -> bool:
    """Whether the answer as a whole declines: it opens with a decline and supports nothing."""
    checked = [c for c in claims if c.status not in ("lead_in", "source")]
    return bool(checked) and checked[0].status == "decline" and not any(c.status == "supported" for c in checked)
