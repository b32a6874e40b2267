"""Files uploaded from the page: checked, kept under `DATA_DIR/uploads/CORPUS/NAME`, and put back as they
were when a load of them fails.

An upload arrives in a staging folder (`uploads/.incoming/<random>/`, hidden so no corpus can be named
like it), one `IncomingFile` per file: its size is bounded while it is written, its SHA-256 taken on
the way. `check` then looks at what the bytes are, whatever the name says:

- the name: one plain file name (no folders, nothing hidden, no control or direction characters), of
  a type the readers know;
- the content: a PDF starts with `%PDF-` (and opens, with a sane page count), an Office or EPUB file is
  a zip package of that kind that is not a zip bomb nor encrypted (the readers' own checks), a text
  format is UTF-8 without NUL bytes. A file whose content is of another type is refused with what it is.

`place` moves a checked file to its final path, keeping the file it replaces aside until `settle` knows
whether the load read the new one: when it could not, the old file comes back (its passages were never
removed: the loader keeps a file's passages when it cannot read it), and a new file that cannot be read
is deleted. Same bytes under the same name: nothing moves, and the loader finds nothing to add.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import shutil
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from qa_app.errors import BadRequest, NotFound, PayloadTooLarge, QAError, ReadError, UnsupportedFile
from qa_app.ingest.readers import FORMATS, kind_of
from qa_app.ingest.readers.office import open_package
from qa_app.ingest.readers.pdf import MAX_PAGES, page_count
from qa_app.store.expressions import check_corpus

STAGING = ".incoming"
REPLACED = ".replaced"  # where a file being replaced waits for the load of its successor
MAX_NAME_BYTES = 200  # below every common file system's 255, with room for the folders around it
PACKAGES = {"docx": "DOCX", "pptx": "PPTX", "xlsx": "XLSX", "odt": "ODT", "epub": "EPUB"}
TEXT_KINDS = frozenset({"text", "markdown", "rst", "html", "jsonl", "csv"})
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_CHUNK = 1 << 20


def accepted_types() -> str:
    """The file names an upload accepts, for messages and the file picker: ".md, .txt, ..."."""
    return ", ".join(sorted(FORMATS))


def clean_name(given: str) -> str:
    """The name an uploaded file is kept under, or BadRequest / UnsupportedFile saying why not."""
    name = unicodedata.normalize("NFC", given).strip()
    shown = repr(name[:80])
    if not name:
        raise BadRequest("a file without a name", field="files")
    if "/" in name or "\\" in name:
        raise BadRequest(f"{shown}: a file name may not contain / or \\ (upload files, not folders)", field="files")
    if name.startswith("."):
        raise BadRequest(f"{shown}: hidden file names (starting with '.') are not accepted", field="files")
    # Control characters cannot be stored in Milvus; format characters (right-to-left overrides,
    # zero-width joiners) make a name read differently from what it is ("invoice\u202efdp.exe").
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise BadRequest(f"{shown}: control or invisible formatting characters in the file name", field="files")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise BadRequest(f"{shown}: the file name is longer than {MAX_NAME_BYTES} bytes", field="files")
    if kind_of(Path(name)) is None:
        suffix = Path(name).suffix or "(no extension)"
        raise UnsupportedFile(f"{name}: files of type {suffix} cannot be read; accepted: {accepted_types()}",
                              field="files")
    return name


def describe(head: bytes) -> str:
    """What the first bytes of a file look like, for a refusal."""
    if not head:
        return "the file is empty"
    if b"%PDF-" in head[:1024]:
        return "it is a PDF"
    if head.startswith(ZIP_MAGIC):
        return "it is a zip archive (an Office or EPUB file)"
    if head.startswith((OLE_MAGIC, b"MZ", b"\x7fELF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "it is a binary file (a legacy Office document, a program or an image)"
    if b"\x00" in head:
        return "it is binary data"
    text = head.decode("utf-8", "replace").lstrip().lower()
    if text.startswith(("<!doctype html", "<html")):
        return "it is an HTML page"
    if text.startswith("<"):
        return "it is XML or HTML text"
    return "it is text"


@dataclass
class Received:
    """One file of an upload as it arrived: its kept name, and the staged copy or why it was refused."""

    name: str
    size: int = 0
    digest: str = ""
    path: Path | None = None
    error: QAError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.path is not None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "size": self.size, "status": "received" if self.ok else "refused"}
        if self.error is not None:
            data.update(reason=self.error.message, error_status=self.error.status)
        return data


class IncomingFile:
    """A file being written to the staging folder, refused once it is larger than `max_bytes`.
    `write` blocks on the disk: call it from a thread, with chunks of a megabyte or so."""

    def __init__(self, folder: Path, name: str, max_bytes: int) -> None:
        self.received = Received(name)
        self.path = folder / name
        self.max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self._file = self.path.open("xb")

    def write(self, data: bytes) -> None:
        if self.received.error is not None:
            return  # already refused: the rest of its bytes are read and dropped
        self.received.size += len(data)
        if self.received.size > self.max_bytes:
            self.refuse(PayloadTooLarge(f"{self.received.name} is larger than the {self.max_bytes / 2**20:.3g} MB a file "
                                        f"may be (QA_MAX_UPLOAD_MB)", field="files"))
            return
        self._hash.update(data)
        self._file.write(data)

    def refuse(self, error: QAError) -> None:
        self.received.error = error
        self.discard()

    def discard(self) -> None:
        """Close and delete what was written (an upload that failed half-way)."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> Received:
        if self.received.error is None:
            self._file.close()
            self.received.digest = self._hash.hexdigest()
            self.received.path = self.path
        return self.received


@dataclass
class Placement:
    """A checked file at its final path, and the file it replaced (kept aside until the load is known)."""

    name: str
    path: Path
    replaced: Path | None = None
    unchanged: bool = False  # the same bytes were already there


class UploadStore:
    """The upload folder of one app: `root/CORPUS/NAME`, staging in `root/.incoming/`."""

    def __init__(self, root: Path, max_bytes: int, max_files: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_files = max_files

    def staging(self) -> Path:
        """A new, empty staging folder for one upload."""
        folder = self.root / STAGING / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def receive(self, folder: Path, given_name: str) -> IncomingFile:
        """An IncomingFile for `given_name` (BadRequest / UnsupportedFile for a name that is refused)."""
        name = clean_name(given_name)
        if (folder / name).exists():
            raise BadRequest(f"{name} is twice in this upload", field="files")
        return IncomingFile(folder, name, self.max_bytes)

    def discard(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def check(self, received: Received) -> Received:
        """`received`, refused (its staged copy deleted) when its content is not what its name says.
        Reads the file: call it from a thread."""
        if not received.ok:
            return received
        assert received.path is not None
        try:
            check_content(received.path, received.name)
        except QAError as exc:
            received.error = exc
            received.path.unlink(missing_ok=True)
            received.path = None
        return received

    def folder_of(self, corpus: str) -> Path:
        return self.root / check_corpus(corpus)

    def place(self, received: Received, corpus: str) -> Placement:
        """Move a checked file to `root/corpus/name`, keeping the file it replaces aside."""
        assert received.ok and received.path is not None
        folder = self.folder_of(corpus)
        folder.mkdir(parents=True, exist_ok=True)
        final = (folder / received.name).resolve()
        if final.is_file():
            if file_digest(final) == received.digest:
                received.path.unlink(missing_ok=True)
                return Placement(received.name, final, unchanged=True)
            aside = folder / REPLACED / uuid.uuid4().hex
            aside.mkdir(parents=True)
            replaced = aside / received.name
            os.replace(final, replaced)
            os.replace(received.path, final)
            return Placement(received.name, final, replaced)
        os.replace(received.path, final)
        return Placement(received.name, final)

    def settle(self, placement: Placement, loaded: bool) -> None:
        """After the load: drop the replaced file if the new one was read, else put things back."""
        if loaded:
            if placement.replaced is not None:
                shutil.rmtree(placement.replaced.parent, ignore_errors=True)
            return
        if placement.unchanged:
            return  # the same bytes as before: nothing was moved
        if placement.replaced is not None:
            os.replace(placement.replaced, placement.path)
            shutil.rmtree(placement.replaced.parent, ignore_errors=True)
        else:
            placement.path.unlink(missing_ok=True)

    def is_upload(self, source: str) -> bool:
        """Whether `source` names a file this store keeps (root/CORPUS/NAME), not any other loaded path."""
        try:
            relative = Path(source).relative_to(self.root.resolve())
        except ValueError:
            return False
        parts = relative.parts
        return len(parts) == 2 and not parts[0].startswith(".") and not parts[1].startswith(".")

    def corpus_of(self, source: str) -> str:
        return Path(source).parent.name

    def remove(self, source: str) -> None:
        """Delete an uploaded file (NotFound for anything that is not one)."""
        if not self.is_upload(source):
            raise NotFound(f"{source!r} is not an uploaded file: only uploads can be removed from the page")
        Path(source).unlink(missing_ok=True)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_content(path: Path, name: str) -> None:
    """UnsupportedFile when the bytes are of another type than the name says, ReadError when they are
    of that type but cannot be read safely (encrypted, a zip bomb, a page count past the reader's limit)."""
    kind = kind_of(Path(name))
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        raise ReadError(f"{name}: the file is empty", field="files")
    if kind == "pdf":
        if b"%PDF-" not in head[:1024]:
            raise UnsupportedFile(f"{name} is named .pdf but is not a PDF: {describe(head)}", field="files")
        try:
            pages = page_count(path)
        except ReadError as exc:
            raise ReadError(f"{name}: {exc.message}", field="files") from None
        if pages > MAX_PAGES:
            raise ReadError(f"{name}: {pages:,} pages (more than {MAX_PAGES:,}): refused", field="files")
    elif kind in PACKAGES:
        # An OLE file is a legacy or a password-protected Office file: the reader's check says which.
        if not head.startswith((ZIP_MAGIC, OLE_MAGIC)):
            raise UnsupportedFile(f"{name} is named {Path(name).suffix} but is not one: {describe(head)}", field="files")
        try:
            open_package(path.read_bytes(), PACKAGES[kind], allow_doctype=kind == "epub").close()
        except ReadError as exc:
            raise ReadError(f"{name}: {exc.message}", field="files") from None
    elif kind in TEXT_KINDS:
        _check_text(path, name, head)


def _check_text(path: Path, name: str, head: bytes) -> None:
    if b"%PDF-" in head[:1024] or head.startswith(ZIP_MAGIC) or b"\x00" in head:
        raise UnsupportedFile(f"{name} is named {Path(name).suffix} but is not text: {describe(head)}", field="files")
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if b"\x00" in chunk:
                raise UnsupportedFile(f"{name} is not text: it holds NUL bytes", field="files")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise UnsupportedFile(f"{name} is not UTF-8 text (byte {offset + exc.start})", field="files") from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UnsupportedFile(f"{name} is not UTF-8 text (it ends inside a character)", field="files") from None
