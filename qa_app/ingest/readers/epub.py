"""EPUB books (2 and 3): the chapters in spine order, each read by the HTML reader, under a heading
path that starts with the chapter's title from the table of contents; the book's title from its
metadata. Read with zipfile and the OPF package document (no EPUB library): the archive passes the
same checks as Office files first (zip bombs, DTD internal subsets and entities refused)."""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree  # type: ignore[import-untyped]  # no type information

from qa_app.errors import ReadError
from qa_app.ingest.readers.html import parse_html
from qa_app.ingest.readers.office import open_package, parse_xml, read_bytes, read_member
from qa_app.models import Document, Section

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
_XHTML = "{http://www.w3.org/1999/xhtml}"
_EPUB_NS = "{http://www.idpf.org/2007/ops}"
_ENC = "{http://www.w3.org/2001/04/xmlenc#}"
_HTML_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}
# The navigation document is XHTML that may use HTML entities (&nbsp;) no DTD defines here: recover.
_LENIENT_XML = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False,
                               huge_tree=False)
# What converters write when a document has no title (LibreOffice, Calibre).
_PLACEHOLDER_TITLES = {"unknown title", "unknown", "untitled", ""}
_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}


def read_epub(path: Path, source: str) -> list[Document]:
    data = read_bytes(path)
    archive = open_package(data, "EPUB", allow_doctype=True)
    names = set(archive.namelist())
    opf_path = _rootfile(archive, names)
    opf = _xml(archive, opf_path)
    base = posixpath.dirname(opf_path)
    title = next((re.sub(r"\s+", " ", t.text or "").strip() for t in opf.iter(f"{_DC}title")
                  if (t.text or "").strip()), "")
    if title.casefold() in _PLACEHOLDER_TITLES:
        title = ""
    title = title or path.stem
    manifest: dict[str, tuple[str, str, set[str]]] = {}  # id -> (path in the zip, media type, properties)
    for item in opf.iter(f"{_OPF}item"):
        href = item.get("href") or ""
        manifest[item.get("id") or ""] = (_resolve(base, href), (item.get("media-type") or "").lower(),
                                          set((item.get("properties") or "").split()))
    _refuse_drm(archive, names, {p for p, _, _ in manifest.values()})
    spine = opf.find(f"{_OPF}spine")
    if spine is None:
        raise ReadError("corrupt EPUB file: the package document has no spine")
    labels = _toc_labels(archive, names, manifest, spine)
    sections: list[Section] = []
    missing = 0
    chapter = ""
    for itemref in spine.iter(f"{_OPF}itemref"):
        entry = manifest.get(itemref.get("idref") or "")
        if entry is None or entry[0] not in names:
            missing += 1
            continue
        member, media_type, properties = entry
        if "nav" in properties or media_type not in _HTML_TYPES:
            continue  # the navigation document repeats the headings; images, SVG pages have no text here
        _, parts = parse_html(_chapter_html(read_member(archive, member, "EPUB")))
        own = next((s.headings[0] for s in parts if s.headings), "")
        # A chapter split over several files keeps its title in the files the contents do not name.
        chapter = labels.get(member) or own or chapter
        for number, part in enumerate(parts):
            text = part.text
            if number == 0 and not part.headings and chapter:
                text = _without_title(text, chapter)
            if text:
                sections.append(Section(_under(chapter, part.headings), text))
    notes = (f"{missing} chapter{'s' if missing > 1 else ''} of the spine missing from the archive",) \
        if missing else ()
    if not any(s.text.strip() for s in sections):
        raise ReadError("no text found")
    return [Document(source, "", title, tuple(sections), format="epub", notes=notes)]


def _rootfile(archive: zipfile.ZipFile, names: set[str]) -> str:
    if "META-INF/container.xml" not in names:
        raise ReadError("corrupt EPUB file: no META-INF/container.xml")
    container = _xml(archive, "META-INF/container.xml")
    for rootfile in container.iter(f"{_CONTAINER}rootfile"):
        full_path = unquote(rootfile.get("full-path") or "")
        if full_path in names and (rootfile.get("media-type") or "application/oebps-package+xml") \
                == "application/oebps-package+xml":
            return full_path
    raise ReadError("corrupt EPUB file: container.xml names no package document in the archive")


def _xml(archive: zipfile.ZipFile, name: str) -> Any:
    return parse_xml(read_member(archive, name, "EPUB"), "EPUB", name)


def _resolve(base: str, href: str) -> str:
    """The zip path of an href relative to the folder `base` (fragment dropped)."""
    target = unquote(urlsplit(href).path)
    return posixpath.normpath(posixpath.join(base, target)) if target else ""


def _refuse_drm(archive: zipfile.ZipFile, names: set[str], content: set[str]) -> None:
    """Encrypted chapters (DRM) cannot be read; obfuscated fonts are fine."""
    if "META-INF/encryption.xml" not in names:
        return
    encryption = _xml(archive, "META-INF/encryption.xml")
    for data in encryption.iter(f"{_ENC}EncryptedData"):
        method = data.find(f"{_ENC}EncryptionMethod")
        if method is not None and method.get("Algorithm") in _FONT_OBFUSCATION:
            continue
        reference = data.find(f"{_ENC}CipherData/{_ENC}CipherReference")
        uri = _resolve("", reference.get("URI") or "") if reference is not None else ""
        if uri in content:
            raise ReadError("encrypted EPUB file (DRM-protected): its chapters cannot be read")


def _toc_labels(archive: zipfile.ZipFile, names: set[str], manifest: dict[str, tuple[str, str, set[str]]],
                spine: Any) -> dict[str, str]:
    """File in the zip -> the title the table of contents gives it (its first entry for that file):
    from the EPUB 3 navigation document, else the EPUB 2 NCX."""
    labels: dict[str, str] = {}
    nav = next((p for p, _, props in manifest.values() if "nav" in props and p in names), None)
    if nav is not None:
        root = etree.fromstring(read_member(archive, nav, "EPUB"), _LENIENT_XML)
        navs = list(root.iter(f"{_XHTML}nav")) if root is not None else []
        tocs = [n for n in navs if "toc" in (n.get(f"{_EPUB_NS}type") or "").split()] or navs
        for toc in tocs[:1]:
            for link in toc.iter(f"{_XHTML}a"):
                target = _resolve(posixpath.dirname(nav), link.get("href") or "")
                text = re.sub(r"\s+", " ", "".join(link.itertext())).strip()
                if target and text:
                    labels.setdefault(target, text)
    if labels:
        return labels
    ncx = manifest.get(spine.get("toc") or "")
    ncx_path = ncx[0] if ncx else next((p for p, t, _ in manifest.values() if t == "application/x-dtbncx+xml"), "")
    if ncx_path in names:
        root = _xml(archive, ncx_path)
        for point in root.iter(f"{_NCX}navPoint"):
            label = point.find(f"{_NCX}navLabel/{_NCX}text")
            content = point.find(f"{_NCX}content")
            if label is None or content is None:
                continue
            target = _resolve(posixpath.dirname(ncx_path), content.get("src") or "")
            text = re.sub(r"\s+", " ", label.text or "").strip()
            if target and text:
                labels.setdefault(target, text)
    return labels


def _chapter_html(raw: bytes) -> str:
    """XHTML as text for the HTML reader; <header> elements (where EPUB 3 puts chapter headings) read
    as content, since on a web page the HTML reader skips them as site chrome."""
    declared = re.match(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)", raw)
    encoding = declared.group(1).decode() if declared else "utf-8"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    try:
        text = raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding,
                          "replace")
    except LookupError:
        text = raw.decode("utf-8", "replace")
    return re.sub(r"<(/?)header\b", r"<\1div", text, flags=re.I)


def _under(chapter: str, headings: tuple[str, ...]) -> tuple[str, ...]:
    """The section's heading path, starting with the chapter title (not repeated when its first heading
    is that title)."""
    if not chapter:
        return headings
    if headings and _same(headings[0], chapter):
        return headings
    return (chapter, *headings)


def _same(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip().casefold() == re.sub(r"\s+", " ", b).strip().casefold()


def _without_title(text: str, chapter: str) -> str:
    """The text without a first paragraph that only repeats the chapter title (converters that write
    headings as styled paragraphs, like LibreOffice's EPUB export)."""
    first, _, rest = text.partition("\n\n")
    return rest if _same(first, chapter) else text
