"""Read files into documents: a title and sections, each with its heading path."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
                 ".rst": "rst", ".html": "html", ".htm": "html", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Document:
    source: str
    doc_id: str
    title: str
    sections: tuple[Section, ...] = field(default_factory=tuple)


class ReadError(Exception):
    """A file that cannot be read as a document; loading reports it and goes on."""


def kind_of(path: Path) -> str | None:
    """The reader for a file name, or None when the type is not supported."""
    name = path.name.lower()
    if name.endswith(".rst.txt"):  # Sphinx ships its reST sources under this name
        return "rst"
    return TEXT_SUFFIXES.get(path.suffix.lower())


def read_text(path: Path) -> str:
    """The file's text; binary or non-UTF-8 files raise ReadError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise ReadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadError(f"not UTF-8 text (byte {exc.start})") from None


def read_documents(path: Path, source: str) -> list[Document]:
    """All documents in one file: one per file, or one per line of a JSONL file."""
    kind = kind_of(path)
    if kind is None:
        raise ReadError(f"unsupported file type {path.suffix or '(none)'}")
    text = read_text(path)
    if kind == "jsonl":
        return list(parse_jsonl(text, source))
    parse = {"text": parse_text, "markdown": parse_markdown, "rst": parse_rst, "html": parse_html}[kind]
    title, sections = parse(text)
    return [Document(source, "", title or _title_from_name(path), tuple(sections))]


def _title_from_name(path: Path) -> str:
    name = path.name
    for suffix in (".rst.txt",):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _clean(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _SectionBuilder:
    """Collects text under the current heading path."""

    def __init__(self) -> None:
        self.path: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.sections: list[Section] = []

    def heading(self, level: int, title: str) -> None:
        self.flush()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, title.strip()))

    def add(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        text = _clean("\n".join(self.lines))
        if text:
            self.sections.append(Section(tuple(t for _, t in self.path), text))
        self.lines = []

    def finish(self) -> list[Section]:
        self.flush()
        return self.sections


def parse_text(text: str) -> tuple[str, list[Section]]:
    cleaned = _clean(text)
    return "", [Section((), cleaned)] if cleaned else []


_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(text: str) -> tuple[str, list[Section]]:
    builder = _SectionBuilder()
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
    builder = _SectionBuilder()
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


_BLOCK_TAGS = {"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "pre", "table", "tr", "br", "section",
               "article", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "figure", "td", "th"}
_SKIP_TAGS = {"script", "style", "nav", "header", "footer", "aside", "noscript", "template", "svg", "form",
              "button", "select", "head"}
_SKIP_CLASSES = {"headerlink", "sphinxsidebar", "related", "footer", "navigation", "breadcrumbs", "toc"}
_VOID_TAGS = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class _HTMLDocument(HTMLParser):
    def __init__(self, main_only: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.main_only = main_only
        self.builder = _SectionBuilder()
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, skips, is_main)
        self.skip_depth = 0
        self.main_depth = 0
        self.heading_level = 0
        self.heading_text: list[str] = []
        self.buffer: list[str] = []
        self.pre_depth = 0
        self.title = ""
        self.in_title = False
        self.first_h1 = ""

    def _capturing(self) -> bool:
        return self.skip_depth == 0 and (not self.main_only or self.main_depth > 0)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "title":
            self.in_title = True
        if tag in _VOID_TAGS:
            if tag in ("br", "hr") and self._capturing():
                self._break()
            return
        classes = set((attributes.get("class") or "").split())
        skips = tag in _SKIP_TAGS or bool(classes & _SKIP_CLASSES) or attributes.get("role") == "navigation" \
            or "hidden" in attributes
        is_main = tag == "main" or attributes.get("role") == "main"
        self.stack.append((tag, skips, is_main))
        self.skip_depth += skips
        self.main_depth += is_main
        if not self._capturing():
            return
        if tag == "pre":
            self.pre_depth += 1
        if re.fullmatch(r"h[1-6]", tag):
            self._break()
            self.heading_level = int(tag[1])
            self.heading_text = []
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _VOID_TAGS or not any(t == tag for t, _, _ in self.stack):
            return
        while self.stack:
            open_tag, skips, is_main = self.stack.pop()
            capturing = self._capturing()
            self.skip_depth -= skips
            self.main_depth -= is_main
            if capturing and open_tag == "pre":
                self.pre_depth -= 1
            if capturing and self.heading_level and open_tag == f"h{self.heading_level}":
                heading = re.sub(r"\s+", " ", "".join(self.heading_text)).replace("¶", "").strip()
                if heading:
                    self.first_h1 = self.first_h1 or (heading if self.heading_level == 1 else "")
                    self.builder.heading(self.heading_level, heading)
                self.heading_level = 0
            elif capturing and open_tag in _BLOCK_TAGS:
                self._break()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        if not self._capturing():
            return
        if self.heading_level:
            self.heading_text.append(data)
        elif self.pre_depth:
            self.buffer.append(data)
        else:
            self.buffer.append(re.sub(r"\s+", " ", data))

    def _break(self) -> None:
        text = "".join(self.buffer)
        self.buffer = []
        if self.pre_depth:
            for line in text.split("\n"):
                self.builder.add(line.rstrip())
        elif text.strip():
            self.builder.add(text.strip().replace("¶", ""))
        self.builder.add("")

    def finish(self) -> tuple[str, list[Section]]:
        self._break()
        title = re.sub(r"\s+", " ", self.title).strip()
        title = re.split(r"\s+[—|–-]\s+", title)[0] if title else ""
        return self.first_h1 or title, self.builder.finish()


def parse_html(text: str) -> tuple[str, list[Section]]:
    main_only = bool(re.search(r"<main[\s>]|role=[\"']main[\"']", text, re.I))
    parser = _HTMLDocument(main_only)
    parser.feed(text)
    parser.close()
    return parser.finish()


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
        body = _clean(record.get("text") or "")
        sections = (Section((), body),) if body else ()
        yield Document(source, str(record["_id"]), title, sections)
