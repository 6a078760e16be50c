"""One rendered page, and the encoding every stored page uses.

Stored page encoding: **lossless WebP, method 0** (``PAGE_MEDIA_TYPE``). Why:

* A stored page is a *base*: each delivery decodes it, stamps the viewer's name and an invisible mark on
  it, and encodes it again for the browser. A lossy base would put a second generation of compression
  artefacts under the stamp and weaken the invisible mark, so the base is lossless.
* Among lossless encoders, WebP at method 0 was the fastest and the smallest on text pages (a dense
  1240 × 1754 text page: about 57 ms and 470 KiB, against PNG level 1 at 73 ms and 780 KiB, PNG level 6
  at 125 ms and 980 KiB). Higher WebP methods shrink text further but cost 4-80× the time on photos.
* Decoding it back is about 25 ms, the same as PNG. Pages that are photographs are large in any lossless
  format (several MiB); that is the price of an unweakened base.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

PAGE_MEDIA_TYPE = "image/webp"
PAGE_EXTENSION = ".webp"


def encode_page(image: Image.Image) -> bytes:
    """Encode an RGB page as lossless WebP (method 0: the fastest setting, see the module docstring)."""
    out = io.BytesIO()
    image.save(out, format="WEBP", lossless=True, method=0, quality=0)
    return out.getvalue()


@dataclass(frozen=True)
class Page:
    """One page of a rendition.

    Attributes:
        number: 1-based position in the rendition.
        image: the page as an RGB Pillow image, ``width`` pixels wide.
    """

    number: int
    image: Image.Image

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    def encode(self) -> bytes:
        """The page in the stored encoding (:data:`PAGE_MEDIA_TYPE`)."""
        return encode_page(self.image)
