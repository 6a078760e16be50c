"""PDF pages: sizes, page count before drawing, refusals, thread safety and flat memory."""

from __future__ import annotations

import io
import math
import threading
import time
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader, PdfWriter

from tests.marking.pages import several_streams
from tests.rendering.inputs import deflated_stream, image_bomb_pdf, one_page_pdf, pdf_bytes, slow_pages
from vault.rendering import (
    DrawingTooLarge,
    EncryptedDocument,
    ImageTooLarge,
    Limits,
    MalformedDocument,
    Page,
    RenditionFailed,
    TooManyPages,
    render,
)


def _encrypt(data: bytes, user: str, owner: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user, owner_password=owner, permissions_flag=0)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_multi_page_pdf_yields_every_page_at_page_width() -> None:
    with render(io.BytesIO(pdf_bytes(3)), "application/pdf", "report.pdf") as rendition:
        assert rendition.has_preview and rendition.kind == "pdf"
        assert rendition.page_count == 3
        pages = list(rendition.pages())
    assert [page.number for page in pages] == [1, 2, 3]
    assert {(page.width, page.height) for page in pages} == {(1240, 1754)}
    assert pages[0].image.mode == "RGB"
    # Ink on the page: the heading was drawn, not a blank bitmap.
    assert pages[0].image.convert("L").getextrema()[0] < 100
    # A black-on-white text page has no colour: stored as greyscale PNG.
    assert pages[0].media_type == "image/png" and pages[0].encode()[:8] == b"\x89PNG\r\n\x1a\n"


def test_path_source_and_octet_stream_fall_back_to_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "scan.PDF"
    path.write_bytes(pdf_bytes(2))
    with render(path, "application/octet-stream", path.name) as rendition:
        assert rendition.kind == "pdf" and rendition.page_count == 2


@pytest.mark.parametrize(
    ("colour", "media_type", "magic"), [(False, "image/png", b"\x89PNG"), (True, "image/webp", b"RIFF")]
)
def test_encoded_page_decodes_back_losslessly(colour: bool, media_type: str, magic: bytes) -> None:
    image = Image.effect_noise((1240, 300), 60).convert("RGB")
    if colour:
        image.paste((200, 30, 30), (0, 0, 100, 100))
    page = Page(1, image)
    assert page.media_type == media_type and page.encode().startswith(magic)
    decoded = Image.open(io.BytesIO(page.encode())).convert("RGB")
    assert ImageChops.difference(decoded, image).getbbox() is None


@pytest.mark.parametrize(("user", "owner"), [("secret", "owner"), ("", "owner")], ids=["user-password", "owner-only"])
def test_encrypted_pdf_is_refused(user: str, owner: str) -> None:
    data = _encrypt(pdf_bytes(1), user, owner)
    with pytest.raises(EncryptedDocument) as caught:
        render(io.BytesIO(data), "application/pdf", "locked.pdf")
    assert caught.value.code == "encrypted_document"
    assert "without" in caught.value.message


@pytest.mark.parametrize(
    "data",
    [b"", b"%PDF-1.4\n" + bytes(range(256)) * 8, pdf_bytes(2)[:-400], b"plain text, not a PDF"],
    ids=["empty", "garbage-after-header", "truncated", "text"],
)
def test_malformed_pdf_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedDocument) as caught:
        render(io.BytesIO(data), "application/pdf", "broken.pdf")
    assert caught.value.code == "malformed_document"


def test_too_many_pages_is_refused_before_any_page_is_drawn() -> None:
    with pytest.raises(TooManyPages) as caught:
        render(io.BytesIO(pdf_bytes(6)), "application/pdf", "long.pdf", Limits(max_pages=5))
    assert "6 pages" in caught.value.message and caught.value.code == "too_many_pages"
    # The limit itself is allowed.
    with render(io.BytesIO(pdf_bytes(5)), "application/pdf", "ok.pdf", Limits(max_pages=5)) as rendition:
        assert rendition.page_count == 5


def test_a_page_that_would_render_huge_is_refused() -> None:
    # 10 pt wide and 14,400 pt tall: at 1240 px wide that is 1240 × 1,785,600 pixels.
    with pytest.raises(ImageTooLarge):
        render(io.BytesIO(pdf_bytes(1, size=(10, 14400))), "application/pdf", "strip.pdf")


def test_threads_rendering_at_once_get_the_same_pages_as_one_thread() -> None:
    data = pdf_bytes(8)
    with render(io.BytesIO(data), "application/pdf", "a.pdf") as rendition:
        expected = [page.image.tobytes() for page in rendition.pages()]
    results: list[list[bytes]] = [[] for _ in range(3)]

    def work(slot: int) -> None:
        with render(io.BytesIO(data), "application/pdf", "a.pdf") as rendition:
            results[slot] = [page.image.tobytes() for page in rendition.pages()]

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 3


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def test_memory_stays_flat_over_a_300_page_pdf(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    path.write_bytes(pdf_bytes(300))
    with render(path, "application/pdf", "long.pdf") as rendition:
        assert rendition.page_count == 300
        pages = rendition.pages()
        for _ in range(30):
            next(pages)
        after_warm_up = _rss_bytes()
        peak = after_warm_up
        for count, page in enumerate(pages, start=31):
            assert page.number == count
            peak = max(peak, _rss_bytes())
    # One page is 6.5 MB as RGB; 300 pages held at once would be 2 GB. Allow a few pages of slack.
    assert peak - after_warm_up < 40 * 1024 * 1024


DRAWING = b"0 0 m\n" * (1 << 20)  # 6 MiB of drawing that deflates to about 6 KB


def _form_bomb(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
    form = deflated_stream(pdf, DRAWING, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form,
                     BBox=pikepdf.Array([0, 0, 100, 100]))
    page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(X1=form))
    page.obj.Contents = pdf.make_stream(b"/X1 Do")


def _field_font_bomb(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
    """A text field without a look of its own, in a font of the form's default resources whose program
    unpacks to 6 MiB: PDFium loads the font to draw the field's value."""
    program = deflated_stream(pdf, bytes(6 << 20), Length1=6 << 20)
    descriptor = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=pikepdf.Name("/Bomb"), Flags=32, ItalicAngle=0, Ascent=800,
        Descent=-200, CapHeight=700, StemV=80, FontBBox=pikepdf.Array([0, 0, 1000, 1000]), FontFile2=program))
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.TrueType, BaseFont=pikepdf.Name("/Bomb"), FirstChar=32,
        LastChar=126, Widths=pikepdf.Array([500] * 95), FontDescriptor=descriptor,
        Encoding=pikepdf.Name.WinAnsiEncoding))
    field = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Tx, T=pikepdf.String("name"),
        V=pikepdf.String("Hello"), Rect=pikepdf.Array([100, 700, 400, 730]), DA=pikepdf.String("/Bomb 12 Tf 0 g"),
        F=4, P=page.obj))
    page.obj.Annots = pikepdf.Array([field])
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]), NeedAppearances=True,
                                           DR=pikepdf.Dictionary(Font=pikepdf.Dictionary(Bomb=font)))


def _jpx_larger_than_declared(**options: object):
    """An image declared 100 × 100 whose JPEG 2000 data is 3,000 × 2,000 pixels (a few hundred bytes):
    PDFium decodes what the data holds, four bytes a sample."""
    data = io.BytesIO()
    Image.new("L", (3000, 2000), 255).save(data, "JPEG2000", **options)

    def build(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        image = pikepdf.Stream(pdf, data.getvalue())
        for key, value in {"/Type": pikepdf.Name.XObject, "/Subtype": pikepdf.Name.Image, "/Width": 100,
                           "/Height": 100, "/ColorSpace": pikepdf.Name.DeviceGray, "/BitsPerComponent": 8,
                           "/Filter": pikepdf.Name.JPXDecode}.items():
            image[pikepdf.Name(key)] = value
        page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=pdf.make_indirect(image)))
        page.obj.Contents = pdf.make_stream(b"q 500 0 0 500 0 0 cm /Im1 Do Q")

    return one_page_pdf(build)


@pytest.mark.parametrize("make", [
    lambda: several_streams(DRAWING, DRAWING),  # the page's own content streams
    lambda: one_page_pdf(_form_bomb),  # a form the page draws
    image_bomb_pdf,  # an image that would unpack to 4.8 GB
    lambda: one_page_pdf(_field_font_bomb),  # a font the interactive form draws a field in
    _jpx_larger_than_declared,  # in the JPEG 2000 file format
    lambda: _jpx_larger_than_declared(no_jp2=True),  # a bare JPEG 2000 codestream
    # 512 KiB of operators: PDFium holds about twenty bytes of page objects for each (`CONTENT_WEIGHT`)
    lambda: several_streams(DRAWING[:1 << 19]),
], ids=["content", "form", "image", "field font", "jp2", "j2k", "dense content"])
def test_a_page_that_unpacks_beyond_the_limit_is_refused_before_it_is_drawn(make) -> None:
    """A few kilobytes of deflate can unpack to gigabytes, which PDFium would hold while drawing the page
    (a 597 KB file of 2 × 200 MB took a worker to 918 MiB): what a page draws is measured first."""
    with pytest.raises(DrawingTooLarge) as caught:
        render(io.BytesIO(make()), "application/pdf", "bomb.pdf", Limits(max_page_unpacked=4 << 20))
    assert caught.value.code == "drawing_too_large" and "page 1" in caught.value.message
    # Within the limit, the same page is drawn.
    with render(io.BytesIO(several_streams(DRAWING[:1 << 16], DRAWING[:1 << 16])), "application/pdf", "ok.pdf",
                Limits(max_page_unpacked=4 << 20)) as rendition:
        assert len(list(rendition.pages())) == 1


def test_content_packed_by_filters_that_cannot_be_measured_is_bounded_by_their_worst_case() -> None:
    """LZW can unpack a stream thousands of times over; a stream whose worst case exceeds the limit is
    refused unread, a small one is drawn."""
    def lzw(size: int):
        def build(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
            stream = pikepdf.Stream(pdf, b"")
            stream.write(bytes(size), filter=pikepdf.Name.LZWDecode)
            page.obj.Contents = pdf.make_indirect(stream)
        return build

    with pytest.raises(DrawingTooLarge):
        render(io.BytesIO(one_page_pdf(lzw(4096))), "application/pdf", "old.pdf", Limits(max_page_unpacked=4 << 20))
    with render(io.BytesIO(one_page_pdf(lzw(60))), "application/pdf", "old.pdf",
                Limits(max_page_unpacked=4 << 20)) as rendition:
        assert rendition.page_count == 1


def test_objects_nested_past_what_can_be_walked_are_a_clear_refusal() -> None:
    def nested(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        inner = pdf.make_indirect(pikepdf.Dictionary())
        for _ in range(5000):
            inner = pdf.make_indirect(pikepdf.Dictionary(Next2=inner))
        page.obj.Resources = pikepdf.Dictionary(Properties=pikepdf.Dictionary(MC0=inner))

    with pytest.raises(MalformedDocument, match="nested"):
        render(io.BytesIO(one_page_pdf(nested)), "application/pdf", "deep.pdf")



def _stream_page(pdf: pikepdf.Pdf) -> pikepdf.Stream:
    """A stream whose dictionary has a page's keys, drawing DRAWING on a 200 × 300 page: PDFium takes
    one listed among a page tree's /Kids for a page, qpdf skips it."""
    stream = pikepdf.Stream(pdf, b"not a page")
    stream.Type = pikepdf.Name.Page
    stream.MediaBox = pikepdf.Array([0, 0, 200, 300])
    stream.Resources = pikepdf.Dictionary()
    stream.Contents = deflated_stream(pdf, DRAWING)
    stream.Parent = pdf.Root.Pages
    return pdf.make_indirect(stream)


def test_pdfium_draws_only_the_pages_qpdf_measured() -> None:
    """qpdf measures what pages draw and PDFium draws them, and each repairs a damaged page tree its own
    way. With a stream page ahead of the real one (the tree's /Count says one page), PDFium drew the
    stream's 6 MiB page that qpdf had never seen, past a 4 MiB limit; it now draws qpdf's copy."""
    def build(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        pdf.Root.Pages.Kids = pikepdf.Array([_stream_page(pdf), page.obj])

    with render(io.BytesIO(one_page_pdf(build)), "application/pdf", "tree.pdf",
                Limits(max_page_unpacked=4 << 20)) as rendition:
        [page] = list(rendition.pages())
    assert page.image.height == math.ceil(841.89 * page.image.width / 595.28)  # the A4 page, not 200 × 300


def test_a_page_only_pdfium_would_find_is_never_drawn() -> None:
    """The stream page alone: qpdf finds no page, so nothing is drawn and the file is refused."""
    def build(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        pdf.Root.Pages.Kids = pikepdf.Array([_stream_page(pdf)])

    with pytest.raises(MalformedDocument):
        render(io.BytesIO(one_page_pdf(build)), "application/pdf", "tree.pdf", Limits(max_page_unpacked=4 << 20))


def test_a_page_that_takes_too_long_to_draw_is_abandoned() -> None:
    started = time.monotonic()
    with render(io.BytesIO(slow_pages(2000)), "application/pdf", "slow.pdf",
                Limits(page_draw_seconds=0.3)) as rendition, pytest.raises(RenditionFailed, match="too long"):
        list(rendition.pages())
    assert time.monotonic() - started < 1.5  # drawing it whole takes about 1.8 s


def test_slow_pages_cannot_add_up_past_the_drawing_time_of_the_whole_pdf() -> None:
    """Eight pages of about 0.45 s each would take 3.6 s; the whole PDF gets 0.6 s. How many pages fit
    depends on how busy the machine is, so the test holds the bound itself: drawing stops in time, short
    of the last page, and what was drawn came in order."""
    with render(io.BytesIO(slow_pages(500, pages=8)), "application/pdf", "slow.pdf",
                Limits(page_draw_seconds=10, draw_seconds=0.6)) as rendition:
        drawn = []
        started = time.monotonic()
        with pytest.raises(RenditionFailed, match="too long"):
            for page in rendition.pages():
                drawn.append(page.number)
        took = time.monotonic() - started
    assert drawn == list(range(1, len(drawn) + 1)) and len(drawn) < 8
    assert took < 2.0
