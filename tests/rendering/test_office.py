"""Office documents through a real LibreOffice: one conversion per type, refusals, and the hard timeout."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from docx import Document
from openpyxl import Workbook
from pptx import Presentation

from vault.rendering import ConversionTimeout, Limits, MalformedDocument, Page, render
from vault.rendering.office import convert_to_pdf, soffice_path

pytestmark = pytest.mark.skipif(soffice_path() is None, reason="LibreOffice is not installed")

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"


def _docx() -> bytes:
    document = Document()
    document.add_heading("Quarterly report Отчёт 报告", 0)
    for number in range(60):
        document.add_paragraph(f"Paragraph {number}: the customer asked for a new offer. Клиент. 客户。")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _xlsx() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Customer", "Amount"])
    for number in range(20):
        sheet.append([f"Customer {number}", number * 10])
    sheet.append(["Total", "=SUM(B2:B21)"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _pptx() -> bytes:
    deck = Presentation()
    for number in range(3):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {number + 1}"
        slide.placeholders[1].text = "Point one\nPoint two"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _odt() -> bytes:
    """The smallest ODF text document LibreOffice accepts: mimetype, manifest and content."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        "<office:body><office:text><text:p>Hello from ODF, Привет, 你好</text:p></office:text></office:body>"
        "</office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


CASES = {
    "docx": (_docx, DOCX, "report.docx"),
    "xlsx": (_xlsx, XLSX, "figures.xlsx"),
    "pptx": (_pptx, PPTX, "deck.pptx"),
    "odt": (_odt, ODT, "letter.odt"),
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[str, int, list[Page]]]:
    """Each office type converted once (one LibreOffice run each), shared by the tests below."""
    results = {}
    for kind, (build, media_type, name) in CASES.items():
        with render(io.BytesIO(build()), media_type, name) as rendition:
            assert rendition.has_preview, rendition
            results[kind] = (rendition.kind, rendition.page_count, list(rendition.pages()))
    return results


@pytest.mark.parametrize("kind", list(CASES))
def test_office_document_becomes_pages(rendered: dict, kind: str) -> None:
    got_kind, count, pages = rendered[kind]
    assert got_kind == kind
    assert count == len(pages) >= 1
    for page in pages:
        assert page.width == 1240 and page.image.mode == "RGB"
        assert page.image.convert("L").getextrema()[0] < 100  # something was drawn


def test_page_counts_follow_the_documents(rendered: dict) -> None:
    assert rendered["docx"][1] >= 2  # 60 paragraphs do not fit on one page
    assert rendered["pptx"][1] == 3  # one page per slide
    slide = rendered["pptx"][2][0]
    assert slide.width > slide.height  # slides stay landscape


def test_a_file_that_is_not_a_zip_is_refused_without_starting_libreoffice() -> None:
    with pytest.raises(MalformedDocument):
        render(io.BytesIO(b"just some text pretending to be a document"), DOCX, "fake.docx")


def test_a_broken_zip_has_no_preview_and_no_garbage_pdf() -> None:
    # The pinned import filter makes LibreOffice refuse it instead of importing the bytes as text.
    data = b"PK\x03\x04" + bytes(range(256)) * 4
    with render(io.BytesIO(data), DOCX, "broken.docx") as outcome:
        assert not outcome.has_preview and outcome.code == "rendition_failed"


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(int(proc.name))
    return found


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    workdir = tmp_path / "job"
    workdir.mkdir()
    source = workdir / "document.docx"
    source.write_bytes(_docx())
    started = time.monotonic()
    with pytest.raises(ConversionTimeout) as caught:
        convert_to_pdf(source, "docx", workdir, timeout=0.5)
    assert time.monotonic() - started < 10
    assert caught.value.code == "conversion_timeout"
    deadline = time.monotonic() + 3
    while _processes_mentioning(str(workdir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(str(workdir)) == []
    assert not (workdir / "out" / "document.pdf").exists()


def test_timeout_through_render_is_a_no_preview_outcome() -> None:
    with render(io.BytesIO(_docx()), DOCX, "slow.docx", Limits(convert_timeout=0.2)) as outcome:
        assert not outcome.has_preview and outcome.code == "conversion_timeout"
        assert "longer than" in outcome.reason
