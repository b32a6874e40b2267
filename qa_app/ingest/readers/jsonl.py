"""BEIR-style JSONL: one {"_id", "title", "text"} object a line, a document each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from qa_app.errors import ReadError
from qa_app.ingest.readers.sections import clean_text
from qa_app.models import Document, Section


def beir_records(text: str) -> Iterator[dict[str, Any]]:
    """The objects of a BEIR JSONL file (corpus or queries): each has "_id" and a string "text"; a bad
    line raises ReadError naming it."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReadError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "_id" not in record or not isinstance(record.get("text", ""), str):
            raise ReadError(f'line {number}: expected an object with "_id" and "text"')
        yield record


def parse_jsonl(text: str, source: str) -> Iterator[Document]:
    """BEIR-style lines: {"_id", "title", "text"}, a document each."""
    for record in beir_records(text):
        title = str(record.get("title") or "")
        body = clean_text(record.get("text") or "")
        sections = (Section((), body),) if body else ()
        yield Document(source, str(record["_id"]), title, sections, format="jsonl")
