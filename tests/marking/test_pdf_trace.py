"""Stamped PDF copies and tracing: the id comes back from metadata, text or pixels, and forgeries fail."""

from __future__ import annotations

import importlib
import io

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from tests.marking.conftest import SECRET, VIEW_ID
from tests.marking.pages import render
from vault.marking import MarkingError, StampText, decode, images_to_stamped_pdf, stamp_pdf, trace
from vault.marking.pdf import META_ID, META_MAC, view_mac


@pytest.fixture(scope="module")
def stamped(source_pdf: bytes, stamp_text: StampText) -> bytes:
    return stamp_pdf(source_pdf, stamp_text, SECRET)


def images_only_pdf(images: list[Image.Image]) -> bytes:
    """What "print to PDF" of a screenshot leaves: the pixels, no metadata, no text layer."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for image in images:
        size = (image.width * 72 / 150, image.height * 72 / 150)
        pdf.setPageSize(size)
        pdf.drawImage(ImageReader(image), 0, 0, *size)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def test_metadata_is_found_first(stamped: bytes) -> None:
    result = trace(stamped, SECRET)
    assert result is not None and (result.view_id, result.method, result.forged) == (VIEW_ID, "metadata", ())
    info = PdfReader(io.BytesIO(stamped)).metadata
    assert info[META_ID] == f"{VIEW_ID:012x}" and info[META_MAC] == view_mac(SECRET, VIEW_ID)


def test_text_layer_without_metadata(stamped: bytes) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(stamped)))
    writer.metadata = None
    out = io.BytesIO()
    writer.write(out)
    result = trace(out.getvalue(), SECRET)
    assert result is not None and (result.view_id, result.method) == (VIEW_ID, "text")


def test_pixels_after_metadata_and_text_are_gone(stamped: bytes) -> None:
    pages = render(stamped)
    result = trace(images_only_pdf(pages), SECRET)
    assert result is not None and (result.view_id, result.method, result.page) == (VIEW_ID, "pdf-render", 0)
    for fmt, options in (("PNG", {}), ("JPEG", {"quality": 75}), ("WEBP", {"quality": 80})):
        buffer = io.BytesIO()
        pages[1].save(buffer, fmt, **options)
        found = trace(buffer.getvalue(), SECRET)
        assert found is not None and (found.view_id, found.method) == (VIEW_ID, "image"), fmt


def test_forged_metadata_is_not_believed(source_pdf: bytes) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source_pdf)))
    writer.add_metadata({META_ID: f"{VIEW_ID:012x}", META_MAC: "0" * 32})
    out = io.BytesIO()
    writer.write(out)
    assert trace(out.getvalue(), SECRET) is None


def test_forged_claim_is_reported_beside_the_real_one(stamped: bytes) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(stamped)))
    writer.add_metadata({META_ID: "000000000001", META_MAC: view_mac(b"guessed", 1)})
    out = io.BytesIO()
    writer.write(out)
    result = trace(out.getvalue(), SECRET)
    assert result is not None and (result.view_id, result.method, result.forged) == (VIEW_ID, "text", (1,))


def test_wrong_key_traces_nothing(stamped: bytes) -> None:
    assert trace(images_only_pdf(render(stamped)[:1]), b"wrong") is None
    assert trace(stamped, b"wrong") is None


def test_clean_files_trace_nothing(source_pdf: bytes, page: Image.Image) -> None:
    assert trace(source_pdf, SECRET) is None
    buffer = io.BytesIO()
    page.save(buffer, "PNG")
    assert trace(buffer.getvalue(), SECRET) is None


def test_page_images_become_a_marked_pdf(page: Image.Image, stamp_text: StampText) -> None:
    pdf = images_to_stamped_pdf([page], stamp_text, SECRET)
    assert trace(pdf, SECRET).method == "metadata"  # type: ignore[union-attr]
    rendered = render(pdf)
    assert len(rendered) == 1 and rendered[0].size == page.size
    assert trace(images_only_pdf(rendered), SECRET).view_id == VIEW_ID  # type: ignore[union-attr]
    with pytest.raises(MarkingError):
        images_to_stamped_pdf([], stamp_text, SECRET)


@pytest.mark.parametrize("data", [b"", b"hello, world", b"%PDF-1.4\n garbage", b"GIF89a" + b"\0" * 20])
def test_unreadable_input_is_a_clear_error(data: bytes, stamp_text: StampText) -> None:
    with pytest.raises(MarkingError):
        trace(data, SECRET)
    with pytest.raises(MarkingError):
        stamp_pdf(data, stamp_text, SECRET)


def test_gif_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(buffer, "GIF")
    with pytest.raises(MarkingError, match="GIF"):
        trace(buffer.getvalue(), SECRET)


def test_encrypted_pdf_is_refused(source_pdf: bytes, stamp_text: StampText) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source_pdf)))
    writer.encrypt("pw")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(MarkingError, match="encrypted"):
        stamp_pdf(out.getvalue(), stamp_text, SECRET)


def test_rotated_and_offset_pages_are_stamped_as_displayed(source_pdf: bytes, stamp_text: StampText) -> None:
    """A /Rotate page is stamped upright as the reader sees it; a page whose box does not start at 0, 0 too."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source_pdf)))
    writer.pages[0].rotate(90)
    box = writer.pages[1].mediabox
    writer.pages[1].mediabox = type(box)((-50, 100, float(box.width) - 50, float(box.height) + 100))
    out = io.BytesIO()
    writer.write(out)
    original = out.getvalue()
    stamped = stamp_pdf(original, stamp_text, SECRET)
    before, after = render(original), render(stamped)
    assert [im.size for im in after] == [im.size for im in before]
    assert after[0].width > after[0].height  # still landscape, as displayed
    for page_before, page_after in zip(before, after, strict=True):
        footer = np.asarray(page_after.convert("L"))[-30:]
        assert (footer < 100).sum() > 1000, "footer text missing at the displayed bottom"
        assert np.abs(np.asarray(page_after, dtype=int) - np.asarray(page_before, dtype=int)).sum() > 0
    found = trace(images_only_pdf(after), SECRET)
    assert found is not None and found.view_id == VIEW_ID


def test_oversized_and_strange_images(monkeypatch: pytest.MonkeyPatch) -> None:
    trace_module = importlib.import_module("vault.marking.trace")  # the package's `trace` is the function
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(buffer, "PNG")
    monkeypatch.setattr(trace_module, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(MarkingError, match="too large"):
        trace(buffer.getvalue(), SECRET)
    # A thin strip is neither decoded as it is nor blown up to page width: no id, no gigapixel resize.
    assert decode(Image.new("RGB", (4, 40_000), "white"), SECRET) is None
