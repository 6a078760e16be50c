"""Raster images: every accepted format, EXIF orientation, transparency, tall slices and refusals."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.rendering.inputs import image_bytes, png_header_only
from vault.rendering import (
    DEFAULT_LIMITS,
    ImageTooLarge,
    Limits,
    MalformedDocument,
    Page,
    RenditionFailed,
    TooManyPages,
    render,
)

RED = (220, 20, 20)


def _pages(data: bytes, media_type: str, name: str, limits: Limits = DEFAULT_LIMITS) -> list[Page]:
    with render(io.BytesIO(data), media_type, name, limits) as rendition:
        assert rendition.has_preview and rendition.kind == "image"
        pages = list(rendition.pages())
        assert len(pages) == rendition.page_count
    return pages


@pytest.mark.parametrize(
    ("fmt", "media_type", "name"),
    [("PNG", "image/png", "a.png"), ("JPEG", "image/jpeg", "a.jpg"), ("WEBP", "image/webp", "a.webp"),
     ("TIFF", "image/tiff", "a.tif")],
)
def test_each_format_becomes_one_rgb_page_at_page_width(fmt: str, media_type: str, name: str) -> None:
    source = Image.new("RGB", (2480, 1000), RED)
    pages = _pages(image_bytes(source, fmt), media_type, name)
    assert len(pages) == 1
    page = pages[0]
    assert (page.width, page.height) == (1240, 500)  # scaled down to the page width, aspect kept
    assert page.image.mode == "RGB"
    red, green, _ = page.image.getpixel((620, 250))
    assert red > 180 and green < 70


def test_exif_orientation_is_applied() -> None:
    # Stored landscape, left half red; orientation 6 means "rotate 90° clockwise to display", so the
    # upright image is portrait with the red half on top.
    source = Image.new("RGB", (400, 200), "white")
    source.paste(Image.new("RGB", (200, 200), RED), (0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    page = _pages(image_bytes(source, "JPEG", exif=exif.tobytes(), quality=95), "image/jpeg", "p.jpg")[0]
    assert (page.width, page.height) == (1240, 400)  # narrower than a page: centred, not stretched
    assert page.image.getpixel((620, 50))[1] < 80  # top: red
    assert page.image.getpixel((620, 350))[1] > 200  # bottom: white
    assert page.image.getpixel((10, 50)) == (255, 255, 255)  # the margin is white canvas


def test_transparency_is_flattened_onto_white() -> None:
    source = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    page = _pages(image_bytes(source, "PNG"), "image/png", "t.png")[0]
    assert page.image.getpixel((620, 50)) == (255, 255, 255)


def test_multi_frame_tiff_gives_one_page_per_frame() -> None:
    frames = [Image.new("RGB", (300, 200), colour) for colour in ("red", "green", "blue")]
    data = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    pages = _pages(data, "image/tiff", "scan.tiff")
    assert len(pages) == 3
    assert [page.image.getpixel((620, 100)) for page in pages] == [(255, 0, 0), (0, 128, 0), (0, 0, 255)]


def test_a_tall_image_is_cut_into_page_height_slices() -> None:
    source = Image.new("RGB", (1240, 4000), "white")
    source.paste(Image.new("RGB", (1240, 10), RED), (0, 3995))  # a red line at the very bottom
    pages = _pages(image_bytes(source, "PNG"), "image/png", "long-screenshot.png")
    assert [page.height for page in pages] == [1754, 1754, 492]
    assert pages[-1].image.getpixel((620, 491))[1] < 80


def test_pixel_bomb_is_refused_from_its_header() -> None:
    data = png_header_only(60_000, 60_000)  # 3.6 gigapixels in about 100 bytes
    assert len(data) < 200
    with pytest.raises(ImageTooLarge) as caught:
        render(io.BytesIO(data), "image/png", "bomb.png")
    assert caught.value.code == "image_too_large"


def test_our_pixel_limit_applies_below_pillows_own() -> None:
    with pytest.raises(ImageTooLarge) as caught:
        render(io.BytesIO(png_header_only(3000, 3000)), "image/png", "big.png", Limits(max_image_pixels=8_000_000))
    assert "3000 × 3000" in caught.value.message


def test_too_many_frames_or_slices_is_refused() -> None:
    frames = [Image.new("RGB", (10, 10))] * 4
    data = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(TooManyPages):
        render(io.BytesIO(data), "image/tiff", "a.tif", Limits(max_pages=3))
    with pytest.raises(TooManyPages):
        render(io.BytesIO(image_bytes(Image.new("RGB", (100, 8000)), "PNG")), "image/png", "a.png",
               Limits(max_pages=3))


@pytest.mark.parametrize(
    "data",
    [b"not an image at all", image_bytes(Image.new("RGB", (10, 10)), "PNG")[:40],
     image_bytes(Image.new("RGB", (10, 10)), "GIF"), b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"],
    ids=["text", "truncated-header", "gif-named-png", "eps-named-png"],
)
def test_what_is_not_one_of_the_four_formats_is_refused(data: bytes) -> None:
    # EPS would reach Ghostscript if Pillow were allowed to pick any decoder; the formats are pinned.
    with pytest.raises(MalformedDocument):
        render(io.BytesIO(data), "image/png", "a.png")


def test_a_damaged_png_is_refused_when_opened() -> None:
    data = image_bytes(Image.effect_noise((400, 400), 50).convert("RGB"), "PNG")
    with pytest.raises(MalformedDocument):
        render(io.BytesIO(data[: len(data) // 2]), "image/png", "half.png")


def test_a_damaged_jpeg_body_fails_while_drawing() -> None:
    # The header is intact, so render() accepts it; the missing pixel data surfaces when the page is
    # drawn, as the one error the upload turns into "no preview".
    data = image_bytes(Image.effect_noise((400, 400), 50).convert("RGB"), "JPEG")
    with render(io.BytesIO(data[: len(data) // 2]), "image/jpeg", "half.jpg") as rendition:
        assert rendition.page_count == 1
        with pytest.raises(RenditionFailed):
            list(rendition.pages())
