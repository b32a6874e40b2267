"""What joins a line to the paragraph before it: a space; nothing for an identifier or URL cut after
"_", "-" or "/"; or the hyphen of a word hyphenated at the line end dropped, when the document knows
the joined word (or the halves are no words of their own)."""

from __future__ import annotations

import re
from collections import Counter

from qa_app.ingest.readers.pdf_model import _Line

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
# endings a hyphenation leaves on the next line that are also words of their own ("success-fully")
_SUFFIXES = frozenset("fully ment ments ness able ably ible ing ings tion tions sion sions ly less ful ized izes "
                      "ised ises ity ities ance ence ous ship ward wards".split())


def _vocabulary(items: list[_Line]) -> tuple[Counter[str], Counter[str]]:
    """Words and hyphenated compounds of the document, without the halves of line-end breaks."""
    words: Counter[str] = Counter()
    compounds: Counter[str] = Counter()
    after_break = False
    for item in items:
        if item.kind == "heading":
            after_break = False
            continue
        ln = item
        found = _WORD.findall(ln.text.lower())
        if after_break and found:
            found = found[1:]
        if ln.ends_hyphen and found:
            found = found[:-1]
        for word in found:
            if "-" in word:
                compounds[word] += 1
                for part in word.split("-"):
                    words[part] += 1
            else:
                words[word] += 1
        after_break = ln.ends_hyphen
    return words, compounds


class _Joiner:
    """Decides line joins from the document's own words and hyphenated compounds."""

    def __init__(self, words: Counter[str], compounds: Counter[str]) -> None:
        self.words = words
        self.compounds = compounds

    def joiner_for(self, left: str, right: str, soft: bool, code: bool) -> str:
        """What joins the next line `right` to the paragraph so far (ending with `left`): a space, nothing
        (an identifier or URL cut at "_", "-" or "/"), or "-strip" (drop the hyphen of a broken word)."""
        if not left or not right:
            return " "
        if left.endswith("_"):
            return ""
        if left.endswith("/"):
            return "" if re.search(r"(?:https?|ftp)://\S*$", left) else " "
        if not left.endswith("-") or len(left) < 2:
            return " "
        if soft:
            return "-strip"
        return self._after_hyphen(left, right, code)

    def _after_hyphen(self, left: str, right: str, code: bool) -> str:
        """The join after a visible hyphen at the line end: "" keeps it (an identifier, option or real
        hyphen), "-strip" drops it (a word hyphenated at the line end)."""
        m = re.search(r"(\S*?)([^\W\d_]*)-$", left)
        head_all, head = (m.group(1) + m.group(2), m.group(2)) if m else ("", "")
        m2 = re.match(r"([^\W\d_]*)(\S*)", right)
        tail, tail_rest = (m2.group(1), m2.group(2)) if m2 else ("", right)
        if not head or re.search(r"[_\d]", head_all) or code or head_all.startswith("-") or left.endswith("--"):
            return ""  # an identifier or option cut at "-": one token again, hyphen kept
        if not tail or not tail[0].islower() or re.match(r"[_\d]", tail_rest or "x") and tail_rest:
            return ""  # "S-" + "Plus": a real hyphen
        return self._word_break(head, tail)

    def _word_break(self, head: str, tail: str) -> str:
        """Letters before and after the hyphen: one word again unless the document writes them as a
        compound, or both halves are words of the document."""
        joined = (head + tail).lower()
        compound = f"{head.lower()}-{tail.lower()}"
        n_joined = self.words.get(joined, 0)
        n_compound = self.compounds.get(compound, 0)
        if n_joined or n_compound:
            return "-strip" if n_joined >= n_compound else ""
        if tail.lower() in _SUFFIXES:
            return "-strip"
        if self.words.get(head.lower(), 0) and self.words.get(tail.lower(), 0) and len(head) >= 2 and len(tail) >= 3 \
                and len(head) + len(tail) >= 7:
            return ""  # both halves are words of the document: a compound ("well-known")
        return "-strip"
