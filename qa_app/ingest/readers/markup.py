"""Plain text, Markdown and reStructuredText: sections from their headings."""

from __future__ import annotations

import re

from qa_app.ingest.readers.sections import SectionBuilder, clean_text
from qa_app.models import Section


def parse_text(text: str) -> tuple[str, list[Section]]:
    cleaned = clean_text(text)
    return "", [Section((), cleaned)] if cleaned else []


_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(text: str) -> tuple[str, list[Section]]:
    builder = SectionBuilder()
    title = ""
    lines = text.splitlines()
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _FENCE.match(line):
            in_fence = not in_fence
            builder.add(line)
        elif not in_fence and (m := _ATX.match(line)):
            level, heading = len(m.group(1)), m.group(2)
            title = title or (heading if level == 1 else "")
            builder.heading(level, heading)
        elif not in_fence and line.strip() and re.fullmatch(r"=+\s*|-+\s*", nxt) and len(nxt.strip()) >= 2:
            level = 1 if nxt.strip()[0] == "=" else 2
            title = title or (line.strip() if level == 1 else "")
            builder.heading(level, line.strip())
            i += 1
        else:
            builder.add(line)
        i += 1
    return title, builder.finish()


_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+<>:._])\1{2,}\s*$")
_RST_ROLE = re.compile(r":[\w:.+-]+:`([^`]*)`")
_RST_SKIP = re.compile(r"^\.\. (index|_[^:]*|highlight|sectionauthor|moduleauthor|toctree|testsetup|testcleanup)::?|^\.\. _")


def _rst_role_text(match: re.Match[str]) -> str:
    inner = match.group(1)
    if m := re.fullmatch(r"(.*?)\s*<[^>]*>", inner, re.S):
        inner = m.group(1) or inner
    return inner.lstrip("~!")


def _rst_inline(line: str) -> str:
    line = _RST_ROLE.sub(_rst_role_text, line)
    return re.sub(r"``([^`]+)``", r"\1", line)


def parse_rst(text: str) -> tuple[str, list[Section]]:
    builder = SectionBuilder()
    styles: list[tuple[str, bool]] = []  # heading levels in order of first use, as in docutils
    title = ""
    lines = text.splitlines()
    skipping_block = False
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        over = bool(_RST_ADORNMENT.match(line)) and i + 2 < len(lines) and lines[i + 2].strip() == line.strip()
        if over and lines[i + 1].strip():
            style, heading, step = (line.strip()[0], True), lines[i + 1].strip(), 3
        elif line.strip() and not line.startswith(" ") and _RST_ADORNMENT.match(nxt) and len(nxt.strip()) >= len(line.strip()):
            style, heading, step = (nxt.strip()[0], False), line.strip(), 2
        else:
            style = None
        if style is not None:
            if style not in styles:
                styles.append(style)
            level = styles.index(style) + 1
            heading = _rst_inline(heading)
            title = title or heading
            builder.heading(level, heading)
            skipping_block = False
            i += step
            continue
        if _RST_SKIP.match(line):
            skipping_block = True
        elif skipping_block and (not line.strip() or line.startswith((" ", "\t"))):
            pass
        else:
            skipping_block = False
            builder.add(_rst_inline(line))
        i += 1
    return title, builder.finish()

