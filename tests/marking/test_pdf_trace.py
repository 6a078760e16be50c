"""Stamped PDF copies and tracing: the id comes back from metadata, text or pixels, and forgeries fail."""

from __future__ import annotations

import importlib
import io
import time
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pikepdf
import pypdfium2
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from tests.marking.conftest import SECRET, VIEW_ID
from tests.marking.pages import render, several_streams
from tests.rendering.inputs import slow_pages
from vault.marking import MarkingError, StampText, decode, stamp_pdf, trace, trace_apart, write_stamped_pages_pdf
from vault.marking import pdf as pdf_module
from vault.marking.pdf import META_ID, META_MAC, view_mac
from vault.marking.trace import TraceResult
from vault.rendering.page import encode_page
from vault.services.viewer import render_stamped


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


def delivered_pages(pages: list[Image.Image], text: StampText) -> list[bytes]:
    """The pages as the viewer delivers them: stored losslessly, then stamped, marked and JPEG-encoded."""
    return [render_stamped(encode_page(page)[0], text, SECRET) for page in pages]


def test_page_images_become_a_marked_pdf(page: Image.Image, stamp_text: StampText) -> None:
    out = io.BytesIO()
    size = write_stamped_pages_pdf(delivered_pages([page], stamp_text), stamp_text, SECRET, out)
    pdf = out.getvalue()
    assert size == len(pdf)
    assert trace(pdf, SECRET).method == "metadata"  # type: ignore[union-attr]
    assert PdfReader(io.BytesIO(pdf)).metadata[META_MAC] == view_mac(SECRET, VIEW_ID)  # another reader agrees
    rendered = render(pdf)
    assert len(rendered) == 1 and rendered[0].size == page.size
    assert trace(images_only_pdf(rendered), SECRET).view_id == VIEW_ID  # type: ignore[union-attr]
    with pytest.raises(MarkingError):
        write_stamped_pages_pdf([], stamp_text, SECRET, io.BytesIO())
    png = io.BytesIO()
    page.save(png, "PNG")
    with pytest.raises(MarkingError, match="JPEG"):
        write_stamped_pages_pdf([png.getvalue()], stamp_text, SECRET, io.BytesIO())


def test_pages_are_written_as_they_come(page: Image.Image, stamp_text: StampText) -> None:
    """A long rendition is never held whole: each page is in the file before the next one is asked for."""
    jpeg = delivered_pages([page], stamp_text)[0]
    out = io.BytesIO()
    written_when_asked: list[int] = []

    def pages() -> Iterator[bytes]:
        for _ in range(3):
            written_when_asked.append(out.tell())
            yield jpeg

    write_stamped_pages_pdf(pages(), stamp_text, SECRET, out)
    assert written_when_asked[1] - written_when_asked[0] > len(jpeg)
    assert written_when_asked[2] - written_when_asked[1] > len(jpeg)
    assert len(PdfReader(io.BytesIO(out.getvalue())).pages) == 3


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


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_and_offset_pages_are_stamped_as_displayed(source_pdf: bytes, stamp_text: StampText,
                                                           degrees: int) -> None:
    """A /Rotate page is stamped upright as the reader sees it; a page whose box does not start at 0, 0 too."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source_pdf)))
    writer.pages[0].rotate(degrees)
    box = writer.pages[1].mediabox
    writer.pages[1].mediabox = type(box)((-50, 100, float(box.width) - 50, float(box.height) + 100))
    out = io.BytesIO()
    writer.write(out)
    original = out.getvalue()
    stamped = stamp_pdf(original, stamp_text, SECRET)
    before, after = render(original), render(stamped)
    assert [im.size for im in after] == [im.size for im in before]
    assert (after[0].width > after[0].height) == (degrees != 180)  # turned as displayed
    for page_before, page_after in zip(before, after, strict=True):
        footer = np.asarray(page_after.convert("L"))[-30:]
        assert (footer < 100).sum() > 1000, "footer text missing at the displayed bottom"
        assert np.abs(np.asarray(page_after, dtype=int) - np.asarray(page_before, dtype=int)).sum() > 0
    found = trace(images_only_pdf(after), SECRET)
    assert found is not None and found.view_id == VIEW_ID


def dark_rows(image: Image.Image) -> np.ndarray:
    """Per pixel row, how many pixels are darker than the stamp's faint layers ever make white paper."""
    return (np.asarray(image.convert("L")) < 100).sum(axis=1)


def blank_pdf() -> bytes:
    out = io.BytesIO()
    blank = canvas.Canvas(out)
    blank.showPage()
    blank.save()
    return out.getvalue()


def test_the_stamp_sits_inside_the_crop_box(stamp_text: StampText) -> None:
    """A reader shows a page's crop box, not its media box: the footer must be at the crop's bottom."""
    with pikepdf.open(io.BytesIO(blank_pdf())) as pdf:
        left, bottom, right, top = (float(value) for value in pdf.pages[0].mediabox)
        pdf.pages[0].cropbox = pikepdf.Array([left + 30, bottom + 120, right, top - 10])
        out = io.BytesIO()
        pdf.save(out)
    stamped = render(stamp_pdf(out.getvalue(), stamp_text, SECRET))[0]
    assert dark_rows(stamped)[-40:].sum() > 1000, "no footer at the bottom of what the reader sees"
    assert trace(images_only_pdf([stamped]), SECRET).view_id == VIEW_ID  # type: ignore[union-attr]


def test_pages_that_inherit_their_resources_keep_them(source_pdf: bytes, stamp_text: StampText) -> None:
    """Resources held by the page tree, not the page: the page's own text must still be drawn."""
    with pikepdf.open(io.BytesIO(source_pdf)) as pdf:
        shared = pdf.pages[0].obj.Resources
        for page in pdf.pages:
            del page.obj[pikepdf.Name.Resources]
        pdf.Root.Pages.Resources = shared
        out = io.BytesIO()
        pdf.save(out)
    inherited = out.getvalue()
    before, after = render(inherited), render(stamp_pdf(inherited, stamp_text, SECRET))
    for page_before, page_after in zip(before, after, strict=True):
        body = slice(0, page_before.height - 60)
        text_before, text_after = dark_rows(page_before)[body].sum(), dark_rows(page_after)[body].sum()
        assert text_before > 20_000 and text_after >= 0.9 * text_before, "the page's own text was lost"


def crafted(content: bytes, annotations: list[pikepdf.Dictionary] | None = None) -> bytes:
    """A one-page PDF with ``content`` (its own text drawn first) and ``annotations``, as a compiler who
    wants an unstamped copy might upload it."""
    with pikepdf.open(io.BytesIO(blank_pdf())) as pdf:
        page = pdf.pages[0]
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F9=pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica))))
        page.obj.Contents = pdf.make_stream(b"BT /F9 24 Tf 72 700 Td (Customer list) Tj ET\n" + content)
        if annotations:
            page.obj.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(a) for a in annotations]))
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def white_box(pdf_width: float = 595.28, pdf_height: float = 841.89) -> pikepdf.Dictionary:
    """An annotation the size of the page whose look a renderer makes itself: an opaque white square."""
    return pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Square, F=4,
                              Rect=pikepdf.Array([0, 0, pdf_width, pdf_height]), IC=pikepdf.Array([1, 1, 1]),
                              C=pikepdf.Array([1, 1, 1]), CA=1)


def rendered_with_annotations(pdf: bytes) -> Image.Image:
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0]
        image = page.render(scale=(1240 - 0.01) / page.get_size()[0], may_draw_forms=True,
                            draw_annots=True).to_pil().convert("RGB")
        page.close()
        return image
    finally:
        document.close()


@pytest.mark.parametrize("content", [
    b"Q Q Q 0.01 0 0 0.01 0 0 cm",  # pops the state the stamp was to be drawn in, then shrinks everything
    b"BT /F9 12 Tf (unterminated",  # swallows whatever content streams follow it
], ids=["unbalanced-Q", "open-string"])
def test_the_page_content_cannot_hide_the_stamp(stamp_text: StampText, content: bytes) -> None:
    stamped = rendered_with_annotations(stamp_pdf(crafted(content), stamp_text, SECRET))
    assert dark_rows(stamped)[-40:].sum() > 1000, "the footer is gone"
    assert trace(images_only_pdf([stamped]), SECRET).view_id == VIEW_ID  # type: ignore[union-attr]


def test_an_annotation_cannot_cover_the_stamp(stamp_text: StampText) -> None:
    stamped = rendered_with_annotations(stamp_pdf(crafted(b"", [white_box()]), stamp_text, SECRET))
    assert dark_rows(stamped)[-40:].sum() > 1000, "the footer is covered"
    assert trace(images_only_pdf([stamped]), SECRET).view_id == VIEW_ID  # type: ignore[union-attr]


def test_a_filled_form_keeps_its_values_under_the_stamp(stamp_text: StampText) -> None:
    """A form whose values the reader was to draw (/NeedAppearances, no appearance of its own): the
    values are drawn into the copy, under the stamp, not dropped with the fields."""
    with pikepdf.open(io.BytesIO(blank_pdf())) as pdf:
        helv = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                    BaseFont=pikepdf.Name.Helvetica))
        field = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Tx, T=pikepdf.String("buyer"),
            V=pikepdf.String("Acme Holdings"), DA=pikepdf.String("/Helv 14 Tf 0 g"), F=4,
            Rect=pikepdf.Array([72, 600, 400, 630]), P=pdf.pages[0].obj))
        pdf.pages[0].obj.Annots = pikepdf.Array([field])
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]), NeedAppearances=True,
                                               DR=pikepdf.Dictionary(Font=pikepdf.Dictionary(Helv=helv)),
                                               DA=pikepdf.String("/Helv 14 Tf 0 g"))
        out = io.BytesIO()
        pdf.save(out)
    stamped = stamp_pdf(out.getvalue(), stamp_text, SECRET)
    document = pypdfium2.PdfDocument(stamped)
    try:
        page = document[0]
        text = page.get_textpage().get_text_range()
    finally:
        document.close()
    assert "Acme Holdings" in text
    assert b"/AcroForm" not in stamped and trace(stamped, SECRET).view_id == VIEW_ID  # type: ignore[union-attr]


def test_a_page_too_narrow_for_its_height_is_refused_before_anything_is_drawn(stamp_text: StampText) -> None:
    with pikepdf.open(io.BytesIO(blank_pdf())) as pdf:
        pdf.pages[0].mediabox = pikepdf.Array([0, 0, 1, 14_400])  # a sliver: a page-sized mark of 22 GB
        out = io.BytesIO()
        pdf.save(out)
    with pytest.raises(MarkingError, match="too narrow"):
        stamp_pdf(out.getvalue(), stamp_text, SECRET)


def test_content_in_several_streams_is_joined_as_a_reader_joins_it(stamp_text: StampText) -> None:
    """The division between content streams may fall between an operator's operands and the operator:
    the copy still draws what the original draws."""
    copy = stamp_pdf(several_streams(b"0 0 0 rg 72 600 300", b"100 re f"), stamp_text, SECRET)
    page = np.asarray(render(copy)[0].convert("L"))
    box = page[1754 - round(700 * 1240 / 595.28) + 20 : 1754 - round(600 * 1240 / 595.28) - 20, 170:750]
    assert (box < 80).mean() > 0.95, "the rectangle split over two streams is not drawn"
    assert trace(copy, SECRET).view_id == VIEW_ID  # type: ignore[union-attr]


def test_content_that_unpacks_large_stays_packed_in_the_copy(stamp_text: StampText) -> None:
    """Two small deflated streams that unpack to 24 MiB (a few kilobytes of deflate can unpack to
    gigabytes): joining them must not write the copy, or hold it, unpacked."""
    drawing = b"0 0 m\n" * (2 << 20)
    original = several_streams(drawing, drawing)
    copy = stamp_pdf(original, stamp_text, SECRET)
    assert len(copy) < len(original) + (1 << 20)
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        form = pdf.pages[0].Resources.XObject.P
        assert form.Filter == pikepdf.Name.FlateDecode and len(form.read_bytes()) == 2 * len(drawing) + 1


def test_content_is_unpacked_a_piece_at_a_time(stamp_text: StampText) -> None:
    """Two streams of 20 MiB each, over the page's limit: what is held at once stays near one piece."""
    drawing = b"0 0 m\n" * ((20 << 20) // 6)
    original = several_streams(drawing, drawing)
    tracemalloc.start()
    try:
        with pytest.raises(MarkingError, match="too large"):
            stamp_pdf(original, stamp_text, SECRET)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB held at once"


def test_content_that_unpacks_beyond_the_limit_is_refused(stamp_text: StampText,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_module, "MAX_JOINED_PAGE", 1 << 20)
    with pytest.raises(MarkingError, match="too large"):
        stamp_pdf(several_streams(b"0 0 m\n" * 100_000, b"0 0 m\n" * 100_000), stamp_text, SECRET)
    monkeypatch.setattr(pdf_module, "MAX_JOINED_PAGE", 32 << 20)
    monkeypatch.setattr(pdf_module, "MAX_CONTENT", 1 << 20)
    with pytest.raises(MarkingError, match="too large"):
        stamp_pdf(several_streams(b"0 0 m\n" * 100_000, b"0 0 m\n" * 100_000), stamp_text, SECRET)


def test_content_shared_by_many_pages_is_written_once(stamp_text: StampText, monkeypatch: pytest.MonkeyPatch) -> None:
    """One content stream of 256 KiB drawn by 40 pages (a 300 KB file): moved into one form, not into one
    copy per page (10 MB here; a few thousand pages made gigabytes)."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595.28, 841.89))
    content = pdf.make_stream(b"% filler\n" * (256 * 1024 // 9) + b"0 0 0 rg 72 600 300 100 re f\n")
    pdf.pages[0].obj.Contents = content
    for _ in range(39):
        pdf.pages.append(pdf.pages[0])
        pdf.pages[-1].obj.Contents = content
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    original = out.getvalue()
    copy = stamp_pdf(original, stamp_text, SECRET)
    assert len(copy) < len(original) + (1 << 20)
    with pikepdf.open(io.BytesIO(copy)) as stamped:
        forms = {page.Resources.XObject.P.objgen for page in stamped.pages}
    assert len(forms) == 1
    # Distinct contents each count against the copy's limit.
    monkeypatch.setattr(pdf_module, "MAX_CONTENT", 1 << 20)
    with pytest.raises(MarkingError, match="too large"):
        stamp_pdf(several_streams(b"0 0 m\n" * 100_000, b"0 0 m\n" * 100_000), stamp_text, SECRET)


def test_content_packed_otherwise_is_refused_not_unpacked_whole(stamp_text: StampText) -> None:
    """Streams packed by other filters (hex here; LZW could unpack a thousandfold) are not unpacked whole
    in memory: the copy is refused, and the viewer's stamped pages leave instead (tests/viewer)."""
    with pytest.raises(MarkingError, match="cannot unpack"):
        stamp_pdf(several_streams(b"0 0 m", b"10 10 l S", filters=pikepdf.Name.ASCIIHexDecode), stamp_text,
                  SECRET)


def test_a_leak_whose_page_unpacks_too_large_is_traced_by_its_metadata_or_refused(
        stamp_text: StampText, monkeypatch: pytest.MonkeyPatch) -> None:
    """PDFium would hold all a page unpacks to read its text or draw it: such a file is read by qpdf only."""
    monkeypatch.setattr(importlib.import_module("vault.marking.trace"), "MAX_PAGE_DRAWING", 1 << 20)
    bomb = several_streams(b"0 0 m\n" * 200_000, b"0 0 m\n" * 200_000)  # 2.4 MB of drawing
    with pytest.raises(MarkingError, match="unpacks to more than 1 MiB"):
        trace(bomb, SECRET)
    with pikepdf.open(io.BytesIO(bomb)) as pdf:  # the same file with a stamped copy's metadata
        pdf.docinfo[pikepdf.Name(META_ID)] = f"{VIEW_ID:012x}"
        pdf.docinfo[pikepdf.Name(META_MAC)] = view_mac(SECRET, VIEW_ID)
        out = io.BytesIO()
        pdf.save(out)
    assert trace(out.getvalue(), SECRET) == TraceResult(VIEW_ID, "metadata")


def test_an_encrypted_leak_that_opens_without_a_password_is_measured_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Encrypted with an empty user password (an owner password only), a PDF opens in any reader, PDFium
    included, so its pages are measured like any other before PDFium reads them."""
    monkeypatch.setattr(importlib.import_module("vault.marking.trace"), "MAX_PAGE_DRAWING", 1 << 20)
    with pikepdf.open(io.BytesIO(several_streams(b"0 0 m\n" * 200_000, b"0 0 m\n" * 200_000))) as pdf:
        out = io.BytesIO()
        pdf.save(out, encryption=pikepdf.Encryption(owner="owner", user=""))
    with pikepdf.open(io.BytesIO(out.getvalue())) as pdf:
        assert pdf.is_encrypted
    with pytest.raises(MarkingError, match="unpacks to more than 1 MiB"):
        trace(out.getvalue(), SECRET)


def test_a_leak_qpdf_cannot_read_is_not_handed_to_pdfium_unmeasured(monkeypatch: pytest.MonkeyPatch) -> None:
    """qpdf cannot read a page tree whose `/Kids` is misspelt; PDFium opens the file and counts a page.
    Such a file reached PDFium unmeasured (and this one then failed there with an error no caller
    expected): it is refused, as its upload is."""
    monkeypatch.setattr(importlib.import_module("vault.marking.trace"), "MAX_PAGE_DRAWING", 1 << 20)
    bomb = several_streams(b"0 0 m\n" * 200_000, b"0 0 m\n" * 200_000).replace(b"/Kids", b"/Kidz")
    document = pypdfium2.PdfDocument(bomb)
    assert len(document) == 1  # PDFium would read it
    document.close()
    with pytest.raises(MarkingError, match="cannot be measured"):
        trace(bomb, SECRET)


def test_a_leak_whose_page_takes_too_long_to_draw_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracing draws pages to read the image mark; one that draws for too long is abandoned, as at upload."""
    monkeypatch.setattr(importlib.import_module("vault.marking.trace"), "PAGE_DRAW_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(MarkingError, match="page 1 of the PDF takes too long to draw"):
        trace(slow_pages(2000), SECRET)
    assert time.monotonic() - started < 1.5  # drawing it whole takes about 1.8 s


def test_the_mark_draws_no_grid(stamp_text: StampText) -> None:
    """The mark over a blank page is even at every render width: no darker line where tiles meet."""
    document = pypdfium2.PdfDocument(stamp_pdf(blank_pdf(), stamp_text, SECRET))
    try:
        for width in (1000, 1240, 1733):
            page = document[0]
            pixels = np.asarray(page.render(scale=(width - 0.01) / page.get_size()[0]).to_pil().convert("L"),
                                dtype=float)
            page.close()
            scale = width / 1240
            columns = pixels[: pixels.shape[0] // 2].mean(axis=0)
            rows = pixels[:, : pixels.shape[1] // 2].mean(axis=1)
            for means, step in ((columns, 128), (rows, 224)):
                edges = [round(k * step * scale) for k in range(1, 4)]
                at_edges = min(means[edge - 1 : edge + 2].min() for edge in edges)
                assert at_edges > means.mean() - 1.5, f"a line where the mark's tiles meet at {width} px"
    finally:
        document.close()


def test_oversized_and_strange_images(monkeypatch: pytest.MonkeyPatch) -> None:
    trace_module = importlib.import_module("vault.marking.trace")  # the package's `trace` is the function
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(buffer, "PNG")
    monkeypatch.setattr(trace_module, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(MarkingError, match="too large"):
        trace(buffer.getvalue(), SECRET)
    # A thin strip is neither decoded as it is nor blown up to page width: no id, no gigapixel resize.
    assert decode(Image.new("RGB", (4, 40_000), "white"), SECRET) is None


def test_a_trace_in_a_fork_finds_what_the_trace_finds(stamped: bytes) -> None:
    assert trace_apart(stamped, SECRET) == trace(stamped, SECRET) == TraceResult(VIEW_ID, "metadata")


def test_a_trace_in_a_fork_refuses_what_the_trace_refuses() -> None:
    with pytest.raises(MarkingError, match="neither a PDF"):
        trace_apart(b"not a leaked file", SECRET)


def test_a_trace_in_a_fork_is_stopped_at_its_time() -> None:
    # A page that draws for about 2.7 s, under the trace's own 10 s a page: the fork's time ends it.
    started = time.monotonic()
    with pytest.raises(MarkingError, match=r"took longer than 0\.5 s"):
        trace_apart(slow_pages(3000), SECRET, seconds=0.5)
    assert time.monotonic() - started < 1.5
