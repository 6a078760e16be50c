"""The upload rules, in one place: which files are accepted, how they are recognised, how names are cleaned.

A file is judged by its content, not by what the browser declares: the first bytes are sniffed (magic
numbers) and must agree with the file name's extension, so a `.pdf` that is really a PNG, or an archive
renamed to `.docx`, is refused before any byte is stored. The declared content type is ignored because
any client can send any value. Archives are refused because their content cannot be judged without
expanding them; office documents are zip packages too, so they are recognised by their first entry
(`[Content_Types].xml` for OOXML, an uncompressed `mimetype` entry for OpenDocument) without expanding
anything.

`ValidatingReader` applies the rules while the upload streams through it: the size limit is counted on
the bytes actually read (a Content-Length header proves nothing), so memory stays flat and a too-large
file is refused at the first byte past the limit.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from typing import BinaryIO

from flask_babel import lazy_gettext as _l

from vault.core.errors import ServiceError

# Bytes looked at to recognise a file: enough for a tar header (magic at 257) and a zip's first entry.
SNIFF_BYTES = 4096
MAX_NAME_BYTES = 255
DEFAULT_NAME = "file"

PDF = "application/pdf"
TEXT = "text/plain"
CSV = "text/csv"
MARKDOWN = "text/markdown"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"


@dataclass(frozen=True)
class FileKind:
    """An accepted kind of file: the content type recorded, and the family its bytes must sniff as."""

    content_type: str
    family: str
    label: str


# Extension → kind. The extension decides the exact type inside a family (a zip package does not say
# whether it is a text or a spreadsheet in its first bytes); the sniffed family must agree with it.
KINDS: dict[str, FileKind] = {
    "pdf": FileKind(PDF, "pdf", "PDF document"),
    "txt": FileKind(TEXT, "text", "plain text"),
    "text": FileKind(TEXT, "text", "plain text"),
    "csv": FileKind(CSV, "text", "CSV table"),
    "md": FileKind(MARKDOWN, "text", "Markdown text"),
    "markdown": FileKind(MARKDOWN, "text", "Markdown text"),
    "png": FileKind(PNG, "png", "PNG image"),
    "jpg": FileKind(JPEG, "jpeg", "JPEG image"),
    "jpeg": FileKind(JPEG, "jpeg", "JPEG image"),
    "gif": FileKind(GIF, "gif", "GIF image"),
    "webp": FileKind(WEBP, "webp", "WebP image"),
    "docx": FileKind(DOCX, "ooxml", "Word document"),
    "xlsx": FileKind(XLSX, "ooxml", "Excel workbook"),
    "pptx": FileKind(PPTX, "ooxml", "PowerPoint presentation"),
    "odt": FileKind(ODT, "odf:" + ODT, "OpenDocument text"),
    "ods": FileKind(ODS, "odf:" + ODS, "OpenDocument spreadsheet"),
}

# What a sniffed family is called in an error message.
FAMILY_LABELS: dict[str, str] = {
    "pdf": _l("a PDF document"),
    "text": _l("text"),
    "png": _l("a PNG image"),
    "jpeg": _l("a JPEG image"),
    "gif": _l("a GIF image"),
    "webp": _l("a WebP image"),
    "ooxml": _l("an Office (OOXML) document"),
    "odf:" + ODT: _l("an OpenDocument text"),
    "odf:" + ODS: _l("an OpenDocument spreadsheet"),
}

ALLOWED_EXTENSIONS: tuple[str, ...] = tuple(sorted(KINDS))

_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_HEADER = struct.Struct("<4sHHHHHIIIHH")  # the 30 fixed bytes of a zip local file header
# OOXML writers put the content-types part first; some put the package relationships first instead, and
# some (openpyxl) the document properties.
_OOXML_FIRST = ("[Content_Types].xml", "_rels/.rels", "docProps/app.xml", "docProps/core.xml")
# Magic numbers of archive and compression formats, refused whatever their name says.
_ARCHIVES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"LZIP", "lzip"),
    (b"MSCF", "cab"),
)
_IMAGES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
# Control bytes that ordinary text does contain (tab, newlines, form feed, escape).
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0b\x0c\x1b")


def extension(name: str) -> str:
    """The lower-case extension of a file name, without the dot ("" when there is none)."""
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def sanitize_filename(name: str | None) -> str:
    """A file name safe to store and show: NFC, no folders, no control or bidi characters, no leading dots.

    Unicode letters are kept (a customer's name in its own script is not an attack); what is removed is
    what could steer a path (separators, leading dots), hide in logs (control characters) or disguise
    an extension (right-to-left overrides and other invisible format characters). The result fits in
    255 bytes of UTF-8, keeping the extension when it has to be shortened.
    """
    text = unicodedata.normalize("NFC", name or "")
    # Browsers on some systems send the whole client path; only its last component is the name.
    text = text.replace("\\", "/").rstrip("/").rpartition("/")[2]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Zl", "Zp"})
    text = text.strip().lstrip(".").strip()
    if not text:
        return DEFAULT_NAME
    return _fit(text, MAX_NAME_BYTES)


def _fit(name: str, limit: int) -> str:
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = dot + ext if dot and stem and len((dot + ext).encode("utf-8")) <= 32 else ""
    if not suffix:
        stem = name
    budget = limit - len(suffix.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip()
    return (cut or DEFAULT_NAME) + suffix


def kind_for(name: str) -> FileKind:
    """The accepted kind a (sanitized) file name announces.

    Raises:
        ServiceError: `file_type_not_allowed` when the extension is missing or not accepted.
    """
    ext = extension(name)
    kind = KINDS.get(ext)
    if kind is None:
        accepted = ", ".join("." + e for e in ALLOWED_EXTENSIONS)
        raise ServiceError(
            "file_type_not_allowed",
            _l("“.%(ext)s” files are not accepted. Accepted: %(accepted)s.", ext=ext, accepted=accepted) if ext
            else _l("Files without an extension are not accepted. Accepted: %(accepted)s.", accepted=accepted),
        )
    return kind


def sniff(head: bytes) -> str:
    """The family of a file from its first bytes: "pdf", "png", "ooxml", "odf:<type>", "text",
    "archive:<format>" or "unknown"."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    for magic, family in _IMAGES:
        if head.startswith(magic):
            return family
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(_ZIP_LOCAL):
        return _sniff_zip(head)
    for magic, fmt in _ARCHIVES:
        if head.startswith(magic):
            return "archive:" + fmt
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "archive:tar"
    if _looks_like_text(head):
        return "text"
    return "unknown"


def _sniff_zip(head: bytes) -> str:
    """Tell an office package from an archive by the name of its first entry, never expanding it."""
    if len(head) < _ZIP_HEADER.size:
        return "archive:zip"
    _sig, _ver, _flags, method, _t, _d, _crc, csize, _usize, name_len, extra_len = _ZIP_HEADER.unpack_from(head)
    name = head[_ZIP_HEADER.size:_ZIP_HEADER.size + name_len].decode("utf-8", errors="replace")
    if name in _OOXML_FIRST:
        return "ooxml"
    if name == "mimetype" and method == 0:
        start = _ZIP_HEADER.size + name_len + extra_len
        declared = head[start:start + min(csize, 200)].decode("ascii", errors="replace").strip()
        return "odf:" + declared
    return "archive:zip"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    controls = sum(1 for byte in head if byte < 32 and byte not in _TEXT_CONTROLS)
    return controls * 100 <= len(head)


def check_head(kind: FileKind, head: bytes, shown_ext: str) -> None:
    """Refuse a file whose first bytes are not what its extension says.

    Raises:
        ServiceError: `file_type_not_allowed` (archive or unknown content) or `file_type_mismatch`.
    """
    family = sniff(head)
    if family.startswith("archive:"):
        raise ServiceError(
            "file_type_not_allowed",
            _l("The file is a %(value)s archive; archives are not accepted (upload the files inside it one by one).",
               value=family.partition(":")[2]),
        )
    if family.startswith("odf:") and family not in FAMILY_LABELS:
        raise ServiceError("file_type_not_allowed", _l("This kind of OpenDocument file is not accepted."))
    if family == "unknown":
        raise ServiceError(
            "file_type_not_allowed",
            _l("The content of this file is not %(value)s as its name (.%(shown_ext)s) says, nor any other "
               "accepted kind.", value=FAMILY_LABELS.get(kind.family, kind.label), shown_ext=shown_ext),
        )
    if family != kind.family:
        raise ServiceError(
            "file_type_mismatch",
            _l("The file name says .%(shown_ext)s (%(label)s) but the content is %(value)s.",
               shown_ext=shown_ext, label=kind.label, value=FAMILY_LABELS[family]),
        )


class ValidatingReader:
    """A read-only stream over an upload that enforces the rules as bytes pass through.

    Nothing is released before the first bytes have been recognised, so a refused file never reaches
    the encryption or the store; the size limit is checked on every read. Errors are `ServiceError`s
    with the codes `empty_file`, `file_too_large`, `file_type_not_allowed`, `file_type_mismatch`.
    """

    def __init__(self, source: BinaryIO, name: str, max_bytes: int) -> None:
        self.name = name
        self.kind = kind_for(name)
        self.max_bytes = max_bytes
        self.size = 0
        self._source = source
        self._pending = b""
        self._started = False

    @property
    def content_type(self) -> str:
        return self.kind.content_type

    def _count(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise ServiceError(
                "file_too_large",
                _l("The file is larger than the limit of %(value)s.", value=human_size(self.max_bytes)),
            )
        if self.kind.family == "text" and b"\x00" in chunk:
            # Text has no NUL bytes; a text-looking start followed by binary content is not text.
            raise ServiceError("file_type_mismatch", _l("The file name says .%(value)s (text) but the content "
                                                        "is binary.", value=extension(self.name)))
        return chunk

    def _start(self) -> None:
        self._started = True
        parts: list[bytes] = []
        got = 0
        while got < SNIFF_BYTES:
            chunk = self._source.read(SNIFF_BYTES - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        head = b"".join(parts)
        if not head:
            raise ServiceError("empty_file", _l("The file is empty."))
        check_head(self.kind, head, extension(self.name))
        self._pending = self._count(head)

    def read(self, size: int = -1) -> bytes:
        if not self._started:
            self._start()
        if self._pending:
            if size is None or size < 0 or size >= len(self._pending):
                data, self._pending = self._pending, b""
            else:
                data, self._pending = self._pending[:size], self._pending[size:]
            return data
        if size is None or size < 0:
            size = 1024 * 1024  # never the whole rest at once: memory stays flat
        chunk = self._source.read(size)
        return self._count(chunk) if chunk else b""


def human_size(size: int) -> str:
    """A byte count in the units people read: "512 bytes", "1.5 MiB", "100 MiB"."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.0f} {unit}" if value >= 100 or value.is_integer() else f"{value:.1f} {unit}"
