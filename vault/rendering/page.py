"""One rendered page, and how a stored page is encoded.

Stored pages are **lossless**, in one of two encodings chosen per page (:attr:`Page.media_type`):

* a page with no colour (every pixel has R = G = B: nearly every text page) is stored as 8-bit
  greyscale **PNG, zlib level 3**;
* a page with colour is stored as **lossless WebP, method 0**.

Why lossless: a stored page is a *base*. Each delivery decodes it, stamps the viewer's name and an
invisible mark on it, and encodes it again for the browser. A lossy base would put a second generation
of artefacts under the stamp and weaken the invisible mark.

Why two encodings, measured on a dense 1240 × 1754 text page (80 lines of 9 pt text) and on a
photograph-like page, on one core: greyscale PNG was the fastest and smallest for the text page (about
15-30 ms and 370 KiB, decoding in about 10 ms), against lossless WebP at 57 ms and 470 KiB and RGB PNG
at 73 ms and 780 KiB, because WebP has no single-channel mode and stores grey as RGB. On colour pages
PNG is slow (250 ms on the photo page) where WebP method 0 takes about 80 ms for a similar size; higher
WebP methods shrink text further but cost 4-80× the time on photographs. Checking a page for colour
costs 2-5 ms. Pillow decodes both, so the stamping step needs no format switch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property

from PIL import Image, ImageChops

GREY_MEDIA_TYPE = "image/png"
COLOUR_MEDIA_TYPE = "image/webp"
PAGE_MEDIA_TYPES = (GREY_MEDIA_TYPE, COLOUR_MEDIA_TYPE)


def is_grey(image: Image.Image) -> bool:
    """True when every pixel of an RGB image has equal red, green and blue."""
    red, green, blue = image.split()
    return ImageChops.difference(red, green).getbbox() is None and ImageChops.difference(green, blue).getbbox() is None


def encode_page(image: Image.Image) -> tuple[bytes, str]:
    """Encode an RGB page losslessly; return the bytes and their media type (see the module docstring)."""
    out = io.BytesIO()
    if is_grey(image):
        image.convert("L").save(out, format="PNG", compress_level=3)
        return out.getvalue(), GREY_MEDIA_TYPE
    image.save(out, format="WEBP", lossless=True, method=0, quality=0)
    return out.getvalue(), COLOUR_MEDIA_TYPE


@dataclass(frozen=True)
class Page:
    """One page of a rendition.

    Attributes:
        number: 1-based position in the rendition.
        image: the page as an RGB Pillow image, :attr:`Limits.page_width` pixels wide.
    """

    number: int
    image: Image.Image

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @cached_property
    def _encoded(self) -> tuple[bytes, str]:
        return encode_page(self.image)

    def encode(self) -> bytes:
        """The page in its stored encoding; :attr:`media_type` says which. Computed once per page."""
        return self._encoded[0]

    @property
    def media_type(self) -> str:
        """``image/png`` (greyscale page) or ``image/webp`` (colour page), both lossless."""
        return self._encoded[1]
