"""The records that flow through every stage: read -> chunk -> embed -> store -> search -> answer.

One `Passage` carries a piece of a document from the chunker to the page: the store keeps its fields,
a search adds its rank, score and the explanation of why it was found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Any

HEADING_SEPARATOR = " › "
DEFAULT_CORPUS = "default"
SLIDE_FORMATS = frozenset({"pptx"})  # formats whose pages are slides: cited as "slide 4"


@dataclass(frozen=True)
class PageMark:
    """Where a page begins in a section's text: `text[offset:]` starts on physical page `page` (1-based),
    printed as `label` (empty when the document has no page labels)."""

    offset: int
    page: int
    label: str = ""


@dataclass(frozen=True)
class Section:
    """Text under one heading path; paged documents (PDF, slides) say where each page begins."""

    headings: tuple[str, ...]
    text: str
    pages: tuple[PageMark, ...] = ()

    def page_at(self, offset: int) -> PageMark | None:
        """The page that holds character `offset` of the text (None for documents without pages)."""
        found = None
        for mark in self.pages:
            if mark.offset > offset:
                break
            found = mark
        return found or (self.pages[0] if self.pages else None)


@dataclass(frozen=True)
class Document:
    """One document of a file: a whole page, or one record of a JSONL corpus."""

    source: str
    doc_id: str
    title: str
    sections: tuple[Section, ...] = field(default_factory=tuple)
    format: str = ""  # the reader that made it: markdown, rst, html, text, jsonl, pdf, docx, pptx ...
    page_unit: str = "page"  # what a page is called when cited: "page", or "slide" for presentations
    page_count: int = 0  # pages (slides) read, for paged formats: progress and pages/s
    notes: tuple[str, ...] = ()  # what the load should report about this file ("3 pages without text skipped")


@dataclass(frozen=True)
class LoadProgress:
    """One step of a load, for the CLI's progress bars and the upload stream.

    - "reading": `done` of `total` pages (slides) of file `source` read; files without a page count
      report the file itself (`unit` "file", 0 then 1).
    - "read": that file is read: `status` added / updated / unchanged / skipped (`reason`), its
      `passages`, the `new` ones to embed, its `pages` and `notes`.
    - "embedding": `done` of `total` new passages of the whole load embedded and stored.
    `seconds` is the time since the stage began (for this file, when reading), for rate and ETA.
    """

    stage: str
    source: str = ""
    done: int = 0
    total: int = 0
    unit: str = ""
    seconds: float = 0.0
    file: int = 0  # which file of the load (1-based)
    files: int = 0
    status: str = ""
    passages: int = 0
    new: int = 0
    pages: int = 0
    reason: str = ""
    notes: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        """Units per second so far (0 until a measurable time has passed)."""
        return self.done / self.seconds if self.seconds > 0.05 and self.done else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None until there is a rate."""
        rate = self.rate
        return max(0.0, (self.total - self.done) / rate) if rate else None

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["notes"] = list(self.notes)
        data.update(rate=round(self.rate, 2), eta=None if self.eta is None else round(self.eta, 1),
                    seconds=round(self.seconds, 3))
        return data


@dataclass(frozen=True)
class Explanation:
    """Why a search found a passage: its rank in each retriever's list (None where that list did not
    have it), the dense list's part of the fused score, and the cosine similarity to the question."""

    dense_rank: int | None = None
    sparse_rank: int | None = None
    dense_share: float | None = None
    dense_score: float | None = None

    @property
    def found_by(self) -> str:
        names = [n for n, r in (("dense", self.dense_rank), ("keyword", self.sparse_rank)) if r]
        return " + ".join(names) or "-"


NO_EXPLANATION = Explanation()


@dataclass(frozen=True)
class Passage:
    """A piece of a document small enough for the model's window, with where it comes from; after a
    search also its rank, score and explanation."""

    id: str
    source: str
    doc_id: str
    title: str
    headings: tuple[str, ...]
    chunk: int
    text: str
    corpus: str = DEFAULT_CORPUS
    page: int = 0  # physical page (1-based) where the passage starts; 0 for documents without pages
    page_end: int = 0  # the page where it ends (the same page unless it straddles a break)
    page_label: str = ""  # the printed label of `page`, where the document has labels
    format: str = ""
    rank: int = 0
    score: float = 0.0
    why: Explanation = NO_EXPLANATION

    @property
    def heading_path(self) -> str:
        return HEADING_SEPARATOR.join(self.headings)

    @property
    def embed_text(self) -> str:
        """What the dense model and BM25 see: title and heading path give the body its context."""
        context = [part for part in (self.title, *self.headings) if part]
        if len(context) > 1 and context[1] == context[0]:  # a first heading that repeats the title
            context.pop(1)
        return "\n".join([HEADING_SEPARATOR.join(context), self.text]) if context else self.text

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.embed_text.encode()).hexdigest()

    @property
    def label(self) -> str:
        """Title and heading path, for prompts and plain-text output."""
        return HEADING_SEPARATOR.join(p for p in (self.title, *self.headings) if p) or self.source or self.id

    @property
    def page_cite(self) -> str:
        """Where it is, as a citation: "p. 36" (the printed label, where the PDF has one), "pp. 12–13"
        when it runs over a page break, "slide 4" for a presentation; "" for documents without pages."""
        if self.page <= 0:
            return ""
        end = max(self.page_end, self.page)
        if self.format in SLIDE_FORMATS:
            return f"slide {self.page}" if end == self.page else f"slides {self.page}–{end}"
        first = self.page_label or str(self.page)
        if end == self.page:
            return f"p. {first}"
        if not self.page_label:
            return f"pp. {self.page}–{end}"
        if self.page_label.isdigit():  # printed numbers run on with the physical pages
            return f"pp. {first}–{int(self.page_label) + end - self.page}"
        return f"p. {first} f."  # "and the next page": a roman or other label has no arithmetic here

    @property
    def page_title(self) -> str:
        """The physical page, for a tooltip where the cited label differs from it."""
        if self.page <= 0 or self.format in SLIDE_FORMATS:
            return ""
        end = max(self.page_end, self.page)
        where = f"page {self.page} of the file" if end == self.page else f"pages {self.page}–{end} of the file"
        return where if self.page_label and self.page_label != str(self.page) else ""

    @property
    def found_by(self) -> str:
        return self.why.found_by

    @property
    def dense_rank(self) -> int | None:
        return self.why.dense_rank

    @property
    def sparse_rank(self) -> int | None:
        return self.why.sparse_rank

    @property
    def dense_share(self) -> float | None:
        return self.why.dense_share

    @property
    def dense_score(self) -> float | None:
        return self.why.dense_score

    def ranked(self, rank: int, score: float | None = None, why: Explanation | None = None) -> Passage:
        """This passage at `rank` of a result (its score and explanation kept unless given). A copy of
        its fields with three changed: `dataclasses.replace` re-runs the checks of __init__ and cost
        6x as much, for every passage of every result, on the event loop."""
        copy = object.__new__(type(self))
        values = copy.__dict__
        values.update(self.__dict__)
        values["rank"] = rank
        if score is not None:
            values["score"] = score
        if why is not None:
            values["why"] = why
        return copy

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of a passage in a result: its fields, the explanation flattened beside them."""
        data = {f.name: getattr(self, f.name) for f in _PASSAGE_FIELDS}  # asdict() deep-copies: far slower
        data["headings"] = list(self.headings)
        why = self.why
        data.update(dense_rank=why.dense_rank, sparse_rank=why.sparse_rank, dense_share=why.dense_share,
                    dense_score=why.dense_score, found_by=why.found_by)
        return data


_PASSAGE_FIELDS = [f for f in fields(Passage) if f.name != "why"]


def passage_id(source: str, doc_id: str, embed_text: str, occurrence: int, corpus: str = DEFAULT_CORPUS) -> str:
    """Stable id from where a passage comes from (corpus, file, document) and what it says."""
    parts = [source, doc_id, embed_text, str(occurrence)]
    key = "\x1f".join(parts if corpus == DEFAULT_CORPUS else [corpus, *parts])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ModelInfo:
    """The dense model a collection is built with: its name, vector size, token window and arithmetic."""

    name: str
    dim: int
    window: int
    precision: str = "fp32"


@dataclass(frozen=True)
class TextFilter:
    """What a question is restricted to: literal substrings of three fields, and some corpora."""

    contains: str = ""
    source: str = ""
    title: str = ""
    corpora: tuple[str, ...] = ()  # exact corpus names; any of them

    def values(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in FILTER_FIELDS if getattr(self, key)}

    def as_dict(self) -> dict[str, Any]:
        return {**self.values(), **({"corpus": list(self.corpora)} if self.corpora else {})}


# filter key -> the VARCHAR field it searches (substring match).
FILTER_FIELDS = {"contains": "text", "source": "source", "title": "title"}
