"""Office documents through a real LibreOffice: one conversion per type, refusals, and the hard timeout."""

from __future__ import annotations

import http.server
import io
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.rendering.inputs import docx_bytes, odt_bytes, pptx_bytes, xlsx_bytes
from vault.rendering import ConversionTimeout, Limits, MalformedDocument, Page, render
from vault.rendering.office import convert_to_pdf, soffice_path

pytestmark = pytest.mark.skipif(soffice_path() is None, reason="LibreOffice is not installed")

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"


CASES = {
    "docx": (docx_bytes, DOCX, "report.docx"),
    "xlsx": (xlsx_bytes, XLSX, "figures.xlsx"),
    "pptx": (pptx_bytes, PPTX, "deck.pptx"),
    "odt": (odt_bytes, ODT, "letter.odt"),
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
    source.write_bytes(docx_bytes())
    started = time.monotonic()
    with pytest.raises(ConversionTimeout) as caught:
        convert_to_pdf(source, "docx", workdir, timeout=0.5, memory=Limits().convert_memory)
    assert time.monotonic() - started < 10
    assert caught.value.code == "conversion_timeout"
    deadline = time.monotonic() + 3
    while _processes_mentioning(str(workdir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(str(workdir)) == []
    assert not (workdir / "out" / "document.pdf").exists()


def test_timeout_through_render_is_a_no_preview_outcome() -> None:
    with render(io.BytesIO(docx_bytes()), DOCX, "slow.docx", Limits(convert_timeout=0.2)) as outcome:
        assert not outcome.has_preview and outcome.code == "conversion_timeout"
        assert "longer than" in outcome.reason


def test_images_linked_by_url_are_not_fetched() -> None:
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/pixel.png"
        with render(io.BytesIO(odt_bytes(linked_image=url)), ODT, "linked.odt") as rendition:
            assert rendition.has_preview and len(list(rendition.pages())) == 1
    finally:
        server.shutdown()
        server.server_close()
    # Without the profile setting, LibreOffice 7.4 requests /pixel.png during the conversion.
    assert requests == []


def _long_docx(paragraphs: int) -> bytes:
    """A small .docx (about 100 KB) whose text unpacks to 50 bytes a paragraph."""
    base = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    xml = base.read("word/document.xml").decode()
    head, tail = xml.split("<w:body>", 1)
    body = "<w:body>" + "<w:p><w:r><w:t>customer record line</w:t></w:r></w:p>" * paragraphs + tail
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as packed:
        for item in base.infolist():
            data = (head + body).encode() if item.filename == "word/document.xml" else base.read(item.filename)
            packed.writestr(item, data)
    return out.getvalue()


def test_libreoffice_runs_within_its_memory_limit() -> None:
    """A document that grows LibreOffice by tens of MiB a second (to about 770 MiB for this one) fails at
    the limit, long before the timeout, and leaves no preview; the limit holds for the processes
    LibreOffice starts."""
    started = time.monotonic()
    with render(io.BytesIO(_long_docx(400_000)), DOCX, "long.docx",
                Limits(convert_memory=384 << 20, convert_timeout=120)) as outcome:
        assert not outcome.has_preview and outcome.code == "rendition_failed"
    assert time.monotonic() - started < 60
