#!/usr/bin/env python3
"""Check the pdf-manuals dev set against the installed PDFs.

Checks that ids are unique, that every query has a grade-2 page, that every qrels row names a known
query and a page inside its PDF, that evidence.jsonl covers exactly the judged pages, that each
evidence snippet occurs on its page (text of `pdftotext -f N -l N -layout`, whitespace collapsed),
and that each reference answer contains its own keywords. Needs poppler-utils (pdftotext, pdfinfo).

    python3 data/eval/pdf-manuals/check_gold.py
    python3 data/eval/pdf-manuals/check_gold.py --pdf manual.pdf=/elsewhere/manual.pdf
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PDFS = {
    "R-intro.pdf": "/usr/share/R/doc/manual/R-intro.pdf",  # Debian package r-doc-pdf
    "manual.pdf": "/usr/share/doc/why3-doc-pdf/manual.pdf",  # Debian package why3-doc-pdf
}


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def page_count(path: str) -> int:
    out = subprocess.run(["pdfinfo", path], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))


def page_text(path: str, page: int) -> str:
    out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-layout", path, "-"],
                         capture_output=True, text=True, check=True).stdout
    return collapse(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", action="append", default=[], metavar="NAME=PATH",
                        help="where the PDF named NAME in the qrels is (default: the Debian paths)")
    args = parser.parse_args()
    pdfs = dict(DEFAULT_PDFS)
    for item in args.pdf:
        name, _, path = item.partition("=")
        pdfs[name] = path

    problems: list[str] = []
    queries = [json.loads(line) for line in (HERE / "queries.jsonl").read_text().splitlines() if line.strip()]
    answers = [json.loads(line) for line in (HERE / "answers.jsonl").read_text().splitlines() if line.strip()]
    evidence = [json.loads(line) for line in (HERE / "evidence.jsonl").read_text().splitlines() if line.strip()]
    rows = [line.split("\t") for line in (HERE / "qrels.tsv").read_text().splitlines()[1:] if line.strip()]

    qids = [q["_id"] for q in queries]
    if len(qids) != len(set(qids)):
        problems.append("duplicate query ids")
    if sorted(a["_id"] for a in answers) != sorted(qids):
        problems.append("answers.jsonl ids differ from queries.jsonl ids")

    counts = {name: page_count(path) for name, path in pdfs.items()}
    judged: dict[str, dict[str, int]] = {}
    for qid, corpus_id, score in rows:
        name, _, page = corpus_id.partition("#")
        if qid not in qids:
            problems.append(f"qrels row for unknown query {qid}")
        if name not in counts or not page.isdigit() or not 1 <= int(page) <= counts[name]:
            problems.append(f"{qid}: bad corpus-id {corpus_id}")
        if corpus_id in judged.setdefault(qid, {}):
            problems.append(f"{qid}: {corpus_id} judged twice")
        judged[qid][corpus_id] = int(score)
    for q in queries:
        grades = judged.get(q["_id"], {})
        if 2 not in grades.values():
            problems.append(f"{q['_id']}: no grade-2 page")
        meta = q.get("metadata", {})
        expect = sorted(int(c.partition("#")[2]) for c in grades)
        if meta.get("pages") != expect or any(c.partition("#")[0] != meta.get("file") for c in grades):
            problems.append(f"{q['_id']}: metadata file/pages disagree with qrels")

    covered: dict[str, set[str]] = {}
    cache: dict[str, str] = {}
    for ev in evidence:
        qid, corpus_id = ev["_id"], ev["corpus-id"]
        covered.setdefault(qid, set()).add(corpus_id)
        name, _, page = corpus_id.partition("#")
        if corpus_id not in cache:
            cache[corpus_id] = page_text(pdfs[name], int(page))
        for snippet in ev["snippets"]:
            if collapse(snippet) not in cache[corpus_id]:
                problems.append(f"{qid}: snippet not on {corpus_id}: {snippet!r}")
    for qid, grades in judged.items():
        if covered.get(qid, set()) != set(grades):
            problems.append(f"{qid}: evidence pages differ from judged pages")

    for a in answers:
        for keyword in a["keywords"]:
            if not any(alt.lower() in a["answer"].lower() for alt in keyword.split("|")):
                problems.append(f"{a['_id']}: answer lacks its keyword {keyword!r}")

    for p in problems:
        print(p)
    print(f"{len(queries)} queries, {len(rows)} judgements, {len(evidence)} evidence pages: "
          f"{'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
