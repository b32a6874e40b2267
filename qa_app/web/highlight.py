"""Mark a question's words in passage text, escaping everything else."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does doing for from had has have how i if in into is it "
    "its me my no not of on or our should so than that the their them then there these they this to was we were "
    "what when where which while who whom why will with would you your about after all also any before between "
    "both each few more most other over same some such only own very just use used using get".split()
)


def query_terms(question: str) -> list[str]:
    """Distinct words worth marking: not stop words, at least two characters, longest first."""
    words = {w.lower() for w in re.findall(r"\w+", question) if len(w) >= 2 and w.lower() not in STOPWORDS}
    return sorted(words, key=lambda w: (-len(w), w))


def highlight(text: str, terms: list[str], spans: list[tuple[int, int]] | None = None) -> Markup:
    """`text` escaped, words that start with a term in <mark>, and each (start, end) span of it (the
    sentences an extracted answer quotes) in <mark class="answer">."""
    if spans:
        marked: list[Markup] = []
        last = 0
        for start, end in sorted(spans):
            start = max(start, last)
            if start >= end:
                continue
            marked.append(highlight(text[last:start], terms))
            marked.append(Markup('<mark class="answer">') + highlight(text[start:end], terms) + Markup("</mark>"))
            last = end
        marked.append(highlight(text[last:], terms))
        return Markup("").join(marked)
    if not terms:
        return escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\w*", re.IGNORECASE)
    out: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        out.append(str(escape(text[last:match.start()])))
        out.append(f"<mark>{escape(match.group(0))}</mark>")
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def cite_links(text: str) -> Markup:
    """`text` escaped, each [n] or [n, m] turned into links to the passages with those ranks."""
    out: list[str] = []
    last = 0
    for match in _CITATION.finditer(text):
        out.append(str(escape(text[last:match.start()])))
        numbers = [n.strip() for n in match.group(1).split(",")]
        links = ", ".join(f'<a class="cite" href="#p-{n}">{n}</a>' for n in numbers)
        out.append(f"[{links}]")
        last = match.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))
