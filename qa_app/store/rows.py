"""Passages to Milvus rows and back, and a search's ranking as a lazy list of passages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np

from qa_app.models import DEFAULT_CORPUS, HEADING_SEPARATOR, Passage
from qa_app.store.compat import MAX_BYTES, truncate_utf8


def passage_row(passage: Passage, vector: np.ndarray) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": passage.id, "text": passage.text, "search_text": passage.embed_text,
        "source": passage.source, "doc_id": passage.doc_id, "title": passage.title,
        "headings": passage.heading_path, "content_hash": passage.content_hash, "corpus": passage.corpus,
        "page_label": passage.page_label, "format": passage.format,
    }
    row = {k: truncate_utf8(v, MAX_BYTES[k]) for k, v in row.items()}
    row.update(chunk=passage.chunk, page=passage.page, page_end=passage.page_end, dense=vector.tolist())
    return row


def row_passage(raw: Any, score: float | None = None) -> Passage:
    """A stored row (or a search hit, with its distance) as a Passage."""
    entity = raw.get("entity") or raw
    headings = entity.get("headings") or ""
    return Passage(
        id=str(raw["id"]), source=entity.get("source", ""), doc_id=entity.get("doc_id", ""),
        title=entity.get("title", ""), headings=tuple(headings.split(HEADING_SEPARATOR)) if headings else (),
        chunk=int(entity.get("chunk", 0)), text=entity.get("text", ""), corpus=entity.get("corpus") or DEFAULT_CORPUS,
        page=int(entity.get("page") or 0), page_end=int(entity.get("page_end") or 0),
        page_label=entity.get("page_label") or "", format=entity.get("format") or "",
        score=float(raw.get("distance", 0.0) if score is None else score),
    )


def dense_column(rows: Any) -> np.ndarray:
    """The hits' dense vectors as one (hits, dim) array. pymilvus decodes a returned vector into a list
    of Python floats per hit (a few hundred microseconds for ten hits, on the event loop); the column
    it received is read whole instead where its layout is the plain one, else through the hits."""
    field = next((f for f in getattr(rows, "lazy_field_data", ()) if f.field_name == "dense"), None)
    if field is not None and not len(field.valid_data) and field.vectors.dim:
        column = np.asarray(field.vectors.float_vector.data, dtype=np.float32).reshape(-1, field.vectors.dim)
        block = column[rows.start:rows.start + len(rows.ids)]
        if len(block) == len(rows.ids):
            return block
    return np.asarray([rows[i]["entity"]["dense"] for i in range(len(rows))], dtype=np.float32)


class HitList(Sequence[Passage]):
    """One search's ranking: every id and score at once, each whole Passage built when first read. A
    search returns dozens of candidates, of which fusion keeps a few: building them all cost more
    event-loop time than the rest of the request's own code."""

    def __init__(self, ids: list[str], scores: list[float], build: Callable[[int], Passage],
                 vectors: np.ndarray | None = None) -> None:
        self.ids = ids
        self.scores = scores
        self.vectors = vectors  # each hit's dense vector, when the search returned them
        self._build = build
        self._built: dict[int, Passage] = {}

    @classmethod
    def of(cls, hits: Sequence[Passage]) -> HitList:
        return cls([h.id for h in hits], [h.score for h in hits], hits.__getitem__)

    @classmethod
    def of_result(cls, rows: Any, *, with_vectors: bool = False) -> HitList:
        """pymilvus's hits of one query, read through their id and distance columns."""
        if not rows:
            return cls.of([])
        vectors = dense_column(rows) if with_vectors else None
        raw = getattr(rows, "get_raw_item", rows.__getitem__)  # a hit's scalar fields, vectors not decoded
        return cls([str(i) for i in rows.ids], [float(d) for d in rows.distances], lambda i: row_passage(raw(i)),
                   vectors)

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Passage: ...

    @overload
    def __getitem__(self, index: slice) -> list[Passage]: ...

    def __getitem__(self, index: int | slice) -> Passage | list[Passage]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        index = range(len(self))[index]  # IndexError as a list raises it; negative indexes work
        if index not in self._built:
            self._built[index] = self._build(index)
        return self._built[index]
