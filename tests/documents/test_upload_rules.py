"""The upload rules on their own: names, recognition by content, and the streaming checks."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from tests.documents.conftest import PNG_HEAD, Trickle, docx_bytes, odt_bytes, pdf_bytes, text_bytes, zip_bytes
from vault.core.errors import ServiceError
from vault.services import uploads


@pytest.mark.parametrize(("raw", "clean"), [
    ("report.pdf", "report.pdf"),
    ("C:\\Users\\ann\\Desktop\\report.pdf", "report.pdf"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("...hidden.pdf", "hidden.pdf"),
    ("  spaced name .pdf  ", "spaced name .pdf"),
    ("tab\tand\nnewline\x00.pdf", "tabandnewline.pdf"),
    ("invoice\u202egpj.pdf", "invoicegpj.pdf"),  # a right-to-left override that would disguise the extension
    ("Mu\u0308ller.pdf", "Müller.pdf"),  # NFC: the combining diaeresis becomes one letter
    ("東京支店の顧客.pdf", "東京支店の顧客.pdf"),
    # The slash of the closing tag is a path separator: only what follows it is the name.
    ("<script>alert(1)</script>.pdf", "script>.pdf"),
    ("<b>offer<b> & terms.pdf", "<b>offer<b> & terms.pdf"),  # markup is kept: pages escape it
    ("", "file"),
    (None, "file"),
    ("...", "file"),
    ("/", "file"),
])
def test_sanitize_filename(raw, clean):
    assert uploads.sanitize_filename(raw) == clean


def test_long_names_are_cut_to_255_bytes_keeping_the_extension():
    name = uploads.sanitize_filename("é" * 300 + ".pdf")
    assert len(name.encode("utf-8")) <= 255
    assert name.endswith(".pdf")
    assert name.startswith("éé")
    # Cut on a character boundary: it still decodes, and no half letter is left.
    assert name.encode("utf-8").decode("utf-8") == name


@pytest.mark.parametrize(("head", "family"), [
    (pdf_bytes(), "pdf"),
    (PNG_HEAD, "png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
    (b"GIF89a\x01\x00", "gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
    (docx_bytes(), "ooxml"),
    (odt_bytes(), "odf:application/vnd.oasis.opendocument.text"),
    (zip_bytes(), "archive:zip"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04", "archive:7z"),
    (b"Rar!\x1a\x07\x01\x00", "archive:rar"),
    (gzip.compress(b"hello", mtime=0), "archive:gzip"),
    (text_bytes(500), "text"),
    ("Grüße aus Köln; 顧客\n".encode(), "text"),
    (b"\x00\x01\x02\x03binary", "unknown"),
])
def test_sniff(head, family):
    assert uploads.sniff(head[:uploads.SNIFF_BYTES]) == family


def test_sniff_recognises_a_tar_archive():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    assert uploads.sniff(out.getvalue()[:uploads.SNIFF_BYTES]) == "archive:tar"


def _read_all(data: bytes, name: str, limit: int = 10 * 1024 * 1024, step: int = 65536) -> tuple[bytes, str]:
    reader = uploads.ValidatingReader(Trickle(data, step), uploads.sanitize_filename(name), limit)
    parts = []
    while chunk := reader.read(1024 * 1024):
        parts.append(chunk)
    return b"".join(parts), reader.content_type


@pytest.mark.parametrize(("data", "name", "content_type"), [
    (pdf_bytes(), "a.pdf", uploads.PDF),
    (PNG_HEAD + b"\x00" * 100, "a.PNG", uploads.PNG),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "photo.jpeg", uploads.JPEG),
    (text_bytes(3000), "notes.txt", uploads.TEXT),
    (b"name,segment\nAcme,key\n", "customers.csv", uploads.CSV),
    (b"# Visit\n\n- agreed terms\n", "visit.md", uploads.MARKDOWN),
    (docx_bytes(), "offer.docx", uploads.DOCX),
    (docx_bytes(), "prices.xlsx", uploads.XLSX),
    (odt_bytes(), "letter.odt", uploads.ODT),
    (odt_bytes("application/vnd.oasis.opendocument.spreadsheet"), "sheet.ods", uploads.ODS),
])
def test_accepted_files_pass_through_unchanged(data, name, content_type):
    out, detected = _read_all(data, name, step=7)  # tiny reads: the sniffing must not depend on chunking
    assert out == data
    assert detected == content_type


@pytest.mark.parametrize(("data", "name", "code"), [
    (PNG_HEAD + b"\x00" * 100, "dossier.pdf", "file_type_mismatch"),
    (pdf_bytes(), "photo.png", "file_type_mismatch"),
    (zip_bytes(), "offer.docx", "file_type_not_allowed"),
    (zip_bytes(), "customers.zip", "file_type_not_allowed"),
    (gzip.compress(b"x" * 100, mtime=0), "notes.txt", "file_type_not_allowed"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 40, "a.pdf", "file_type_not_allowed"),
    (odt_bytes(), "sheet.ods", "file_type_mismatch"),
    (odt_bytes("application/vnd.oasis.opendocument.presentation"), "slides.odt", "file_type_not_allowed"),
    (docx_bytes(), "letter.odt", "file_type_mismatch"),
    (text_bytes(100), "program.exe", "file_type_not_allowed"),
    (text_bytes(100), "README", "file_type_not_allowed"),
    (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64, "tool.pdf", "file_type_not_allowed"),
    (text_bytes(8000) + b"\x00\x01binary tail", "log.txt", "file_type_mismatch"),
    (b"", "empty.pdf", "empty_file"),
])
def test_refused_files(data, name, code):
    with pytest.raises(ServiceError) as refused:
        _read_all(data, name)
    assert refused.value.code == code
    assert refused.value.message.endswith(".")


def test_the_size_limit_counts_bytes_read_not_what_was_announced():
    limit = 100_000
    exact, _ = _read_all(text_bytes(limit), "big.txt", limit=limit)
    assert len(exact) == limit
    with pytest.raises(ServiceError) as refused:
        _read_all(text_bytes(limit + 1), "big.txt", limit=limit)
    assert refused.value.code == "file_too_large"
    assert "97.7 KiB" in refused.value.message


def test_nothing_is_released_before_the_content_is_recognised():
    source = Trickle(PNG_HEAD + b"\x00" * 10_000, step=3)
    reader = uploads.ValidatingReader(source, "dossier.pdf", 10**6)
    with pytest.raises(ServiceError):
        reader.read(1)


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 bytes"), (512, "512 bytes"), (1536, "1.5 KiB"), (100 * 1024 * 1024, "100 MiB"), (3 * 1024**3, "3 GiB"),
])
def test_human_size(size, text):
    assert uploads.human_size(size) == text
