"""Raster images (PNG, JPEG, WebP, TIFF with any number of frames) to pages.

Each frame is turned upright from its EXIF orientation, flattened onto white if it has transparency,
converted to RGB and fitted to the page width: a wider image is scaled down, a narrower one is centred
on a white page-width canvas (scaling a 200 px icon up to 1240 px would only blur it). An image taller
than :attr:`Limits.slice_height` becomes several pages.

Safety: the decoders are limited to those four formats, whatever the file is called, so a file that
really is EPS or PSD never reaches a riskier decoder. Every frame's size is read from its header and
checked against :attr:`Limits.max_image_pixels` before any pixel is decoded.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

from vault.rendering.errors import ImageTooLarge, MalformedDocument, RenditionFailed, TooManyPages
from vault.rendering.limits import Limits
from vault.rendering.page import Page

FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112


class ImagePages:
    """An opened image whose frames are decoded one at a time as pages are asked for."""

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, limits: Limits) -> None:
        self._limits = limits
        try:
            with warnings.catch_warnings():
                # Pillow's own bomb check warns between its two thresholds; ours is the one that counts.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(source, formats=FORMATS)
        except Image.DecompressionBombError:
            raise ImageTooLarge(_l("The image has too many pixels to show.")) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise MalformedDocument(_l("The file is not a readable PNG, JPEG, WebP or TIFF image.")) from None
        self._image: Image.Image | None = image
        try:
            frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
            if frames > limits.max_pages:
                raise TooManyPages(_l("The image has %(frames)s frames; at most %(max_pages)s can be shown.",
                                      frames=frames, max_pages=limits.max_pages))
            self._slices: list[int] = []
            for frame in range(frames):
                image.seek(frame)
                width, height = image.size
                if width <= 0 or height <= 0:
                    raise MalformedDocument(_l("The image has no pixels."))
                if width * height > limits.max_image_pixels:
                    raise ImageTooLarge(
                        _l("The image is %(width)s × %(height)s pixels; at most %(max_image_pixels)s pixels can "
                           "be shown.",
                           width=width, height=height, max_image_pixels=format(limits.max_image_pixels, ","))
                    )
                if image.getexif().get(_EXIF_ORIENTATION) in _ROTATED:
                    width, height = height, width
                scaled = height * min(1.0, limits.page_width / width)
                self._slices.append(max(1, math.ceil(scaled / limits.slice_height)))
        except (OSError, ValueError, EOFError, SyntaxError):
            self.close()
            raise MalformedDocument(_l("The image file is damaged.")) from None
        except BaseException:
            self.close()
            raise
        self.page_count = sum(self._slices)
        if self.page_count > limits.max_pages:
            self.close()
            raise TooManyPages(_l("The image would make %(page_count)s pages; at most %(max_pages)s can be shown.",
                                  page_count=self.page_count, max_pages=limits.max_pages))

    def pages(self) -> Iterator[Page]:
        number = 1
        for frame in range(len(self._slices)):
            for piece in self._frame_pages(frame):
                yield Page(number, piece)
                number += 1

    def _frame_pages(self, frame: int) -> Iterator[Image.Image]:
        image = self._image
        if image is None:
            raise RenditionFailed("The image was closed before all its pages were drawn.")
        limits = self._limits
        try:
            image.seek(frame)
            if image.format == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the page needs no more: a 40 MP photo
                # then never exists full size in memory. The request is in stored (not yet upright)
                # coordinates, so a rotated photo asks for its page width as height.
                rotated = image.getexif().get(_EXIF_ORIENTATION) in _ROTATED
                image.draft("RGB", (1, limits.page_width) if rotated else (limits.page_width, 1))
            upright = _to_rgb(ImageOps.exif_transpose(image))
        except (OSError, ValueError, EOFError, SyntaxError) as exc:
            raise RenditionFailed(f"Frame {frame + 1} of the image could not be decoded.") from exc
        width, height = upright.size
        scale = min(1.0, limits.page_width / width)
        source_slice = limits.slice_height / scale  # rows of the source that fill one page
        top = 0.0
        while top < height:
            bottom = min(float(height), top + source_slice)
            band = upright.crop((0, round(top), width, round(bottom)))
            target = (limits.page_width if scale < 1 else width, max(1, round((bottom - top) * scale)))
            if band.size != target:
                band = band.resize(target, Image.Resampling.LANCZOS)
            if band.width < limits.page_width:
                canvas = Image.new("RGB", (limits.page_width, band.height), "white")
                canvas.paste(band, ((limits.page_width - band.width) // 2, 0))
                band = canvas
            yield band
            top = bottom

    def close(self) -> None:
        if self._image is not None:
            self._image.close()
            self._image = None


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency flattened onto white; 16-bit and float greyscale scaled to 8 bits."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        image = _scale_to_l(image.convert("I"), 65535)
    elif image.mode in ("I", "F"):
        image = _scale_to_l(image, None)
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _scale_to_l(image: Image.Image, top: float | None) -> Image.Image:
    """Scale a 32-bit integer or float image into 8-bit greyscale, by ``top`` or by its own range."""
    low, high = image.getextrema() if top is None else (0, top)
    span = (high - low) or 1
    return image.point(lambda value: (value - low) * 255 / span).convert("L")
