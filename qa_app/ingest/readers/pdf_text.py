"""Text of a PDF as the reader emits it: NFKC (ligatures, math letters, odd spaces), ASCII quotes, no
control characters; and the artifacts a text layer carries that no reader wants (dot leaders, Sphinx's
index macros and wrapped-line marks, TeX's circled-c copyright sign)."""

from __future__ import annotations

import re
import unicodedata

_TRANSLATE = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2212": "-",  # minus sign
    "\u00ad": "",  # soft hyphen inside a line
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "",
    "\u02d3": "", "\u2423": " ",  # Sphinx's marks of a wrapped code line: "␣" at the end, "˓→" below
})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# dot leaders of a table of contents or an index: ". . . ." or "....." (not R's "...")
_LEADERS = re.compile(r"\s*(?:\.\s){3,}\.?\s*|\s*\.{5,}\s*|\s\.(?:\s?\.)+\s+(?=\S+$)")
_SPHINX_MACRO = re.compile(r"\\spx[a-z]+")  # Sphinx index entries leak \spxentry into the text layer
_COPYRIGHT = re.compile(r"\bCopyright c(?=\s*\d)")  # TeX draws © as a c in a circle
# the start of a list item: a bullet, "1." or "(a)"; such a line begins a paragraph and is no heading
_BULLET = re.compile(r"^(?:[\u2022\u25e6\u25aa\u25cf\u2023\u2043\u2219*\u2013\u2014-]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")


def normalize(text: str) -> str:
    """The text as the reader emits it: NFKC, ASCII quotes, one space for any run of spaces."""
    text = unicodedata.normalize("NFKC", text.translate(_TRANSLATE))
    text = text.replace("\u2192", "->") if "\u2192" in text else text
    text = _CONTROL.sub("", text)
    return _SPACES.sub(" ", text)


def _clean_line(text: str) -> str:
    text = _SPHINX_MACRO.sub("", text) if "\\spx" in text else text
    if "Copyright c" in text:
        text = _COPYRIGHT.sub("Copyright \u00a9", text)
    return text.strip()
