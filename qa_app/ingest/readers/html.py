"""HTML pages: the main content's text under its h1-h6 headings; navigation, scripts and styles dropped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from qa_app.ingest.readers.sections import SectionBuilder
from qa_app.models import Section

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
        self.builder = SectionBuilder()
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

