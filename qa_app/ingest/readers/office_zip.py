"""The checks every zip-based Office reader (and the EPUB reader) runs before a library opens a file:
its size, the number of members, their declared unpacked sizes and compression ratios (zip bombs), that
it is the kind of file its name says (not a renamed PPTX, text file or password-protected OLE
container), and that no XML part declares a DTD (entity-expansion "billion laughs" attacks): OOXML and
ODF never use one. zipfile stops a member at its declared size (a lying header fails its CRC), so the
declared sizes bound the work. Also the safe XML parser and the wrapper that turns a library's errors
on a damaged file into a ReadError."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lxml import etree  # type: ignore[import-untyped]  # no type information

from qa_app.errors import ReadError

# Hostile or absurd files are refused before any library parses them.
MAX_FILE_BYTES = 100 * 2**20  # the file itself
MAX_UNPACKED_BYTES = 200 * 2**20  # all members of a zip, as their headers declare
MAX_MEMBERS = 10_000  # members of a zip
MAX_RATIO = 100  # unpacked / packed size of one member ...
RATIO_MIN_BYTES = 2 * 2**20  # ... that unpacks to more than this (small parts compress well legitimately)
MAX_XML_PROLOG_BYTES = 2**20  # XML before the root element: where a DTD would be

_R = TypeVar("_R")

SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=True, remove_pis=True)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # the stream of a password-protected OOXML file
_ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": "ODT",
    "application/vnd.oasis.opendocument.text-template": "ODT",
    "application/vnd.oasis.opendocument.presentation": "ODP",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "application/vnd.oasis.opendocument.graphics": "ODG",
    "application/epub+zip": "EPUB",
}
_OOXML_MAIN = [  # the content type of the main part says what an OOXML package is
    ("DOCX", re.compile(rb"(wordprocessingml\.(document|template)|ms-word\.[A-Za-z.]+)\.main\+xml")),
    ("PPTX", re.compile(rb"(presentationml\.(presentation|slideshow|template)|ms-powerpoint\.[A-Za-z.]+)"
                        rb"\.main\+xml")),
    ("XLSX", re.compile(rb"(spreadsheetml\.(sheet|template)|ms-excel\.[A-Za-z.]+)\.main\+xml")),
]
# Encodings an XML part may declare: those in which "<!DOCTYPE" is plain ASCII (or UTF-16/32, decoded).
_XML_ENCODINGS = re.compile(r"(utf-?(8|16|32)(-?[lb]e)?|(us-)?ascii|iso-?8859-\d+|latin-?1|(windows|cp)-?125\d|"
                            r"shift_jis|euc-jp|euc-kr|gb2312|gbk|big5)", re.I)


def read_bytes(path: Path) -> bytes:
    """The file's bytes; too large or unreadable files raise ReadError."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ReadError(f"file too large ({size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB)")
        return path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None


def open_package(data: bytes, kind: str, *, allow_doctype: bool = False) -> zipfile.ZipFile:
    """The zip archive of a `kind` file ("DOCX", "PPTX", "XLSX", "ODT", "EPUB"), after the checks
    against renamed, encrypted, corrupt and hostile files. `allow_doctype` lets XML parts declare a DTD
    without an internal subset (XHTML in EPUB does); entity declarations are always refused."""
    _check_signature(data, kind)
    archive, members = _open_zip(data, kind)
    _check_members(members, kind)
    found = _package_kind(archive, kind)
    if found != kind:
        raise ReadError(f"not {_a(kind)} file: " + (f"it is {_a(found)} file" if found else
                                                    "a zip archive without the parts of one"))
    for member in members:
        if not member.is_dir():
            _check_xml_prolog(archive, member, kind, allow_doctype)
    return archive


def _check_signature(data: bytes, kind: str) -> None:
    """Refuse a legacy binary Office file (or a password-protected one) and anything not a zip archive."""
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise ReadError(f"encrypted {kind} file (password-protected): save it without a password to read it")
        raise ReadError(f"not {_a(kind)} file: it is a legacy binary Office file (.doc/.xls/.ppt); save it as {kind}")
    if not data.startswith(b"PK"):
        raise ReadError(f"not {_a(kind)} file: {_looks_like(data)}")


def _open_zip(data: bytes, kind: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ReadError(f"corrupt {kind} file: damaged zip archive ({exc})") from None
    return archive, members


def _check_members(members: list[zipfile.ZipInfo], kind: str) -> None:
    """Refuse too many members, too much unpacked in all, a member that unpacks too many times its
    packed size, and encrypted members."""
    if len(members) > MAX_MEMBERS:
        raise ReadError(f"refused: {len(members)} members in the zip archive (the limit is {MAX_MEMBERS}; "
                        "a possible zip bomb)")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ReadError(f"refused as a possible zip bomb: the members would unpack to {unpacked / 2**20:.0f} MB "
                        f"(the limit is {MAX_UNPACKED_BYTES // 2**20} MB)")
    for member in members:
        if member.file_size > RATIO_MIN_BYTES and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            ratio = member.file_size / max(member.compress_size, 1)
            raise ReadError(f"refused as a possible zip bomb: {member.filename} would unpack {ratio:.0f} times "
                            f"its packed size (the limit is {MAX_RATIO})")
        if member.flag_bits & 0x1:
            raise ReadError(f"encrypted {kind} file: zip member {member.filename} is encrypted")


def _a(name: str) -> str:
    """The name with its article, as it is read aloud: "a DOCX", "an XLSX", "an ODT"."""
    return ("an " if name[:1].upper() in "AEFHILMNORSX" else "a ") + name


def _looks_like(data: bytes) -> str:
    if not data:
        return "the file is empty"
    if data.startswith(b"%PDF"):
        return "it is a PDF file"
    head = data[:4096]
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else ""
        if text and text.lstrip().startswith("<"):
            return "it is an XML or HTML text file, not a zip archive"
        if text:
            return "it is a text file, not a zip archive"
    return "not a zip archive"


def _package_kind(archive: zipfile.ZipFile, wanted: str) -> str | None:
    names = set(archive.namelist())
    try:
        if "mimetype" in names:
            mimetype = archive.read("mimetype")[:200].decode("ascii", "replace").strip()
            return _ODF_TYPES.get(mimetype, mimetype or None)
        if "[Content_Types].xml" in names:
            types = read_member(archive, "[Content_Types].xml", wanted, limit=MAX_XML_PROLOG_BYTES)
            for name, pattern in _OOXML_MAIN:
                if pattern.search(types):
                    return name
            return "Office Open XML"
        if "META-INF/container.xml" in names:
            return "EPUB"
    except KeyError:
        return None
    return None


def read_member(archive: zipfile.ZipFile, name: str | zipfile.ZipInfo, kind: str, limit: int = -1) -> bytes:
    try:
        with archive.open(name) as stream:
            return stream.read(limit)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        label = name.filename if isinstance(name, zipfile.ZipInfo) else name
        raise ReadError(f"corrupt {kind} file: {label}: {exc}") from None


def _check_xml_prolog(archive: zipfile.ZipFile, member: zipfile.ZipInfo, kind: str, allow_doctype: bool) -> None:
    """Refuse a member that looks like XML and declares a DTD before its root element (or, with
    `allow_doctype`, one with an internal subset, where entities would be declared)."""
    chunk = 64 * 1024
    try:
        with archive.open(member) as stream:
            data = stream.read(chunk)
            while True:
                verdict = _prolog_verdict(data, allow_doctype)
                if verdict != "more":
                    break
                more = stream.read(chunk)
                if not more or len(data) >= MAX_XML_PROLOG_BYTES:
                    verdict = "long" if more else "ok"
                    break
                data += more
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise ReadError(f"corrupt {kind} file: {member.filename}: {exc}") from None
    if verdict == "dtd":
        raise ReadError(f"refused: {member.filename} declares a DTD or XML entities (a possible entity-expansion "
                        "attack; Office files never need one)")
    if verdict == "long":
        raise ReadError(f"refused: {member.filename} has more than {MAX_XML_PROLOG_BYTES // 1024} KB before its "
                        "XML root element")
    if verdict.startswith("encoding:"):
        raise ReadError(f"refused: {member.filename} declares an unsupported XML encoding ({verdict[9:]})")


def _prolog_verdict(data: bytes, allow_doctype: bool) -> str:
    """"ok" (not XML, or no DTD), "dtd", "more" (the prolog goes on past `data`), or "encoding:NAME"."""
    text = _decode_xml_head(data)
    if text is None:
        return "ok"
    if text.startswith("\x00encoding:"):
        return text[1:]
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            return "more"
        if text.startswith("<?", i):
            close = "?>"
        elif text.startswith("<!--", i):
            close = "-->"
        elif text.startswith("<!", i):  # in a prolog, only a document type declaration starts so
            if not allow_doctype:
                return "dtd"
            close = ">"
            end = text.find(close, i)
            if "[" in text[i: end if end >= 0 else len(text)] or "<!ENTITY" in text:
                return "dtd"  # an internal subset: where entities are declared
        else:
            return "ok"  # the root element: the prolog is over (or text that is not XML at all)
        end = text.find(close, i + 2)
        if end < 0:
            return "more"
        i = end + len(close)


def _decode_xml_head(data: bytes) -> str | None:
    """The start of an XML member as text, None when it does not start like XML, or "\\0encoding:X"."""
    boms = [(b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xef\xbb\xbf", "utf-8"),
            (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le")]
    patterns = [(b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00<", "utf-16-be"),
                (b"<\x00", "utf-16-le")]
    for mark, codec in boms:
        if data.startswith(mark):
            return data[len(mark):].decode(codec, "replace")
    stripped = data.lstrip(b" \t\r\n")
    for mark, codec in patterns:
        if data.startswith(mark):
            return data.decode(codec, "replace")
    if not stripped.startswith(b"<"):
        if stripped[:4] == b"\x4c\x6f\xa7\x94":  # "<?xm" in EBCDIC
            return "\x00encoding:EBCDIC"
        return None
    text = data.decode("latin-1")
    declared = re.match(r"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']+)", text)
    if declared and not _XML_ENCODINGS.fullmatch(declared.group(1)):
        return "\x00encoding:" + declared.group(1)[:40]
    return text


def parse_xml(data: bytes, kind: str, name: str) -> Any:
    try:
        return etree.fromstring(data, SAFE_XML)
    except etree.XMLSyntaxError as exc:
        raise ReadError(f"corrupt {kind} file: {name}: {exc}") from None


def _with_library(kind: str, load: Callable[..., _R], *args: Any) -> _R:
    """`load(*args)`: a library's work on a checked package, its errors on a damaged file a ReadError."""
    try:
        return load(*args)
    except ReadError:
        raise
    except Exception as exc:  # a damaged file makes these libraries raise almost anything
        raise ReadError(f"corrupt {kind} file: {type(exc).__name__}: {exc}") from None

