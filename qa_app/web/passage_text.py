"""A passage's text as a person reads it: Markdown and reST markup turned into paragraphs, lists and
code, everything escaped, with the question's words and the answer's sentences still marked.

Marks are placed by offsets into the stored text (an extracted answer quotes `text[start:end]`), so
rendering keeps, for every character it shows, the offset it came from; markup characters that are
dropped take nothing with them, and markup never reaches the page unescaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

MARKUP_FORMATS = {"markdown", "rst"}
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+•]|\d{1,3}[.)]|#\.)\s+")
_RST_DIRECTIVE = re.compile(r"^\.\.\s+([\w:-]+)::\s*(.*)$")
_RST_CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "doctest", "testcode", "testoutput", "literalinclude"}
_RST_FIELD = re.compile(r"^:([\w -]+):\s*(.*)$")
_RST_COMMENT = re.compile(r"^\.\.(\s|$)")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
# Inline markup whose markers are dropped, the text between them kept (the group "text"): code spans
# are shown as code, emphasis as plain text, a link as its label.
_INLINE = re.compile(
    r"(?::[\w:.+-]+:`(?P<role>[^`\n]+)`)"
    r"|(?P<code>``(?P<rc>[^`]+)``|`(?P<mc>[^`\n]+)`(?!_))"
    r"|\*\*(?P<b>[^*\n]+)\*\*|(?<![\w*])\*(?P<i>[^*\s][^*\n]*)\*(?![\w*])"
    r"|(?<!\w)_(?P<u>[^_\s][^_\n]*)_(?!\w)"
    r"|\[(?P<label>[^\]\n]+)\]\([^)\s]+\)"
    r"|`(?P<rl>[^`<\n]+?)\s*<[^>\n]+>`__?"
    r"|`(?P<rr>[^`\n]+)`_")


@dataclass
class _Run:
    """Characters shown in one style, each with the offset in the stored text it came from."""

    code: bool
    chars: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class _Block:
    kind: str  # "p", "li", "pre"
    runs: list[_Run] = field(default_factory=list)
    depth: int = 0  # list nesting

    def add(self, text: str, start: int, code: bool = False) -> None:
        if not self.runs or self.runs[-1].code != code:
            self.runs.append(_Run(code))
        self.runs[-1].chars.extend((c, start + i) for i, c in enumerate(text))

    @property
    def empty(self) -> bool:
        return not any(c.strip() for run in self.runs for c, _ in run.chars)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _inline(block: _Block, line: str, start: int, markup: bool) -> None:
    """Add one source line to a prose block: markup markers dropped, code spans kept as code."""
    if block.runs and block.runs[-1].chars:
        block.add(" ", -1)  # a hard line break inside a paragraph is a space
    if not markup:
        block.add(line, start)
        return
    last = 0
    for match in _INLINE.finditer(line):
        block.add(line[last:match.start()], start + last)
        name = next(n for n in ("role", "rc", "mc", "b", "i", "u", "label", "rl", "rr") if match.group(n) is not None)
        shown = match.group(name)
        if name == "role" and (target := re.fullmatch(r"(.*?)\s*<[^>]*>", shown)):  # :ref:`label <target>`
            shown = target.group(1) or shown
        block.add(shown.lstrip("~!") if name == "role" else shown, start + match.start(name),
                  code=name in ("role", "rc", "mc"))
        last = match.end()
    block.add(line[last:], start + last)


def blocks(text: str, fmt: str) -> list[_Block]:
    """The passage as paragraphs, list items and code blocks, in order."""
    markup = fmt in MARKUP_FORMATS
    if not markup:
        return _plain_blocks(text)
    out: list[_Block] = []
    current: _Block | None = None
    code_indent: int | None = None  # inside an indented code block: its minimum indent
    code_next = False  # the paragraph before ended with "::" or a code directive: indented lines are code
    fence = False

    def close() -> None:
        nonlocal current
        if current is not None and not current.empty:
            out.append(current)
        current = None

    for start, line in _lines(text):
        stripped = line.strip()
        if fence or _FENCE.match(line):  # Markdown fenced code
            if _FENCE.match(line):
                if fence:
                    close()
                    fence = False
                else:
                    close()
                    fence = True
                    current = _Block("pre")
                continue
            assert current is not None
            current.add(line + "\n", start, code=True)
            continue
        if code_indent is not None:
            if not stripped or _indent(line) >= code_indent:
                assert current is not None
                current.add(line[code_indent:] + "\n", start + min(code_indent, len(line)), code=True)
                continue
            close()
            code_indent = None
        if not stripped:
            close()
            continue
        doctest = stripped.startswith((">>> ", "... ")) or stripped in (">>>", "...")
        if doctest and (stripped.startswith(">") or (current is not None and current.kind == "pre")):
            if current is None or current.kind != "pre":  # a doctest session is code
                close()
                current = _Block("pre")
            current.add(stripped + "\n", start + _indent(line), code=True)
            if _indent(line):  # the session's output lines follow at the same indent
                code_indent, code_next = _indent(line), False
            continue
        if code_next and _indent(line) > 0 and (current is None or current.kind != "li"):
            close()
            code_indent = _indent(line)
            current = _Block("pre")
            current.add(line[code_indent:] + "\n", start + code_indent, code=True)
            code_next = False
            continue
        directive = _RST_DIRECTIVE.match(stripped)
        if directive:
            close()
            code_next = directive.group(1) in _RST_CODE_DIRECTIVES
            continue  # the directive line itself is markup; its content follows, indented
        if _RST_COMMENT.match(stripped):
            close()
            continue
        fieldline = _RST_FIELD.match(stripped)
        if fieldline and (current is None or current.kind != "pre"):
            close()
            current = _Block("p")
            offset = start + line.index(fieldline.group(1))
            current.add(fieldline.group(1) + ":", offset)
            _inline(current, fieldline.group(2), start + line.index(fieldline.group(2)) if fieldline.group(2) else start,
                    markup)
            close()
            continue
        if re.fullmatch(r"([=\-~^\"'`#*+<>:._])\1{3,}", stripped):  # a reST transition or underline
            continue
        heading = _MD_HEADING.match(line) if fmt == "markdown" else None
        item = _LIST_ITEM.match(line)
        if item:
            close()
            current = _Block("li", depth=len(item.group(1)) // 2)
            line_start = item.end()
        elif heading:
            close()
            current = _Block("p")
            line_start = heading.end()
        else:
            if current is None or current.kind == "pre":
                close()
                current = _Block("p")
            line_start = _indent(line)
        body = line[line_start:]
        code_next = body.rstrip().endswith("::")
        if code_next:  # "text::" shows as "text:" ("::" alone disappears), and the indented block is code
            cut = body.rstrip()
            body = cut[:-1] if len(cut) > 2 and cut[-3] != " " else cut[:-2].rstrip()
        _inline(current, body, start + line_start, markup)
    close()
    return out


def _plain_blocks(text: str) -> list[_Block]:
    """Text without markup (HTML, PDF, Office, plain text): paragraphs by blank lines, line breaks kept."""
    out = []
    for match in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", text):
        block = _Block("p")
        block.add(match.group(0), match.start())
        if not block.empty:
            out.append(block)
    return out


def _term_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\w*", re.IGNORECASE)


def _render_run(run: _Run, terms: re.Pattern[str] | None, spans: Sequence[tuple[int, int]]) -> str:
    text = "".join(c for c, _ in run.chars)
    marked = [False] * len(text)
    if terms is not None:
        for match in terms.finditer(text):
            for i in range(match.start(), match.end()):
                marked[i] = True
    answer = [any(s <= offset < e for s, e in spans) if offset >= 0 else False for _, offset in run.chars]
    for i in range(1, len(answer) - 1):  # an inserted space between two quoted characters is quoted too
        if run.chars[i][1] < 0 and answer[i - 1] and answer[i + 1]:
            answer[i] = True
    out: list[str] = []
    in_answer = in_term = False
    for i, char in enumerate(text):
        if answer[i] != in_answer:  # the answer's mark holds the term marks inside it
            if in_term:
                out.append("</mark>")
                in_term = False
            out.append('<mark class="answer">' if answer[i] else "</mark>")
            in_answer = answer[i]
        if marked[i] != in_term:
            out.append("<mark>" if marked[i] else "</mark>")
            in_term = marked[i]
        out.append(str(escape(char)))
    out.append("</mark>" * (in_term + in_answer))
    html = "".join(out)
    return f"<code>{html}</code>" if run.code else html


def render_passage(text: str, fmt: str, terms: Sequence[str] = (),
                   spans: Sequence[tuple[int, int]] | None = None) -> Markup:
    """The passage as HTML: <p>, <ul><li> and <pre><code> blocks, inline <code>, marks in place."""
    pattern = _term_pattern(terms)
    spans = sorted(spans or [])
    html: list[str] = []
    in_list = False
    for block in blocks(text, fmt):
        if block.kind == "li" and not in_list:
            html.append('<ul class="items">')
            in_list = True
        elif block.kind != "li" and in_list:
            html.append("</ul>")
            in_list = False
        if block.kind == "pre":  # no blank lines left at the end of a code block
            while block.runs and block.runs[-1].chars and not block.runs[-1].chars[-1][0].strip():
                block.runs[-1].chars.pop()
        inner = "".join(_render_run(run, pattern, spans) for run in block.runs)
        if block.kind == "pre":
            html.append(f"<pre>{inner.rstrip()}</pre>")
        elif block.kind == "li":
            style = f' class="depth-{min(block.depth, 4)}"' if block.depth else ""
            html.append(f"<li{style}>{inner.strip()}</li>")
        else:
            html.append(f"<p>{inner.strip()}</p>")
    if in_list:
        html.append("</ul>")
    return Markup("".join(html))
