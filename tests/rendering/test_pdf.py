"""PDF pages: sizes, page count before drawing, refusals, thread safety and flat memory."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader, PdfWriter

from tests.rendering.inputs import pdf_bytes
from vault.rendering import (
    EncryptedDocument,
    ImageTooLarge,
    Limits,
    MalformedDocument,
    Page,
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
