"""The visible stamp: who viewed a page, when, where, under which view id, and how confidential it is.

Every page a viewer sees carries the stamp twice: a faint diagonal watermark tiled over the whole page,
so that no crop of any useful size escapes it, and an opaque footer strip with the same facts in
plain reading size, so a photo of the page names its viewer. The stamp is there to deter and to
attribute; the invisible mark (:mod:`vault.marking.forensic`) carries the view id where the stamp was
cropped or painted out.

Speed: the text masks depend only on the facts and the page size, so they are built once and kept
(an LRU cache); stamping a page is then ``Image.paste`` of cached solid images through the masks,
about 5 to 8 ms for a 1240 x 1754 page on an idle core.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from PIL import Image, ImageDraw

from vault.marking.fonts import font_for

WATERMARK_SIZE = 26
"""Watermark text height in pixels on a 1240-pixel-wide page; scaled with the page width."""
WATERMARK_ALPHA = 64
WATERMARK_COLOUR = (90, 90, 110)
WATERMARK_ANGLE = 30
GRID = (440, 300)
"""Horizontal and vertical repeat of the watermark on a 1240-pixel-wide page (scaled with it)."""
FOOTER_SIZE = 17
FOOTER_ALPHA = 225
FOOTER_TEXT = (20, 20, 20)
REFERENCE_WIDTH = 1240


def luma(colour: tuple[int, int, int]) -> int:
    """The grey level of an RGB colour (ITU-R BT.601 weights, as JPEG's YCbCr uses)."""
    red, green, blue = colour
    return round(0.299 * red + 0.587 * green + 0.114 * blue)


@dataclass(frozen=True)
class StampText:
    """The facts a stamp shows. ``viewed_at`` must be timezone-aware; it is shown in UTC.

    The two words of the stamp (``viewed_by``, ``view_word``) come in the viewer's language; the facts
    (name, login, time in UTC, view id, place) are the same whatever the language, so a photo of a
    stamped page is read back the same way by anyone."""

    viewer_name: str
    login: str
    viewed_at: datetime
    view_id: int
    place: str
    grade_label: str
    viewed_by: str = "viewed by"
    view_word: str = "view"

    def __post_init__(self) -> None:
        if self.viewed_at.tzinfo is None:
            raise ValueError("viewed_at must be timezone-aware")
        if not 0 <= self.view_id < 1 << 48:
            raise ValueError("view_id must be in [0, 2**48)")

    @property
    def view_ref(self) -> str:
        """The view id as printed: 12 hex digits in three groups, easy to read out over the phone."""
        digits = f"{self.view_id:012x}"
        return f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"

    @property
    def time_text(self) -> str:
        return self.viewed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def watermark_lines(self) -> tuple[str, ...]:
        return (f"{self.viewer_name} ({self.login})", self.time_text,
                f"{self.view_word} {self.view_ref} · {self.place}", self.grade_label)

    def footer_line(self) -> str:
        return (f"{self.grade_label} · {self.viewed_by} {self.viewer_name} ({self.login}) · {self.time_text} · "
                f"{self.place} · {self.view_word} {self.view_ref}")


def _scaled(value: int, width: int) -> int:
    return max(1, round(value * width / REFERENCE_WIDTH))


@functools.lru_cache(maxsize=64)
def _line(line: str, size: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """One line's glyph coverage (an ``L`` mask cut to its ink) and its ink box from the text origin.

    Kept: a viewer's name and a grade's label come back on every view of theirs, and drawing a line is
    most of what building a stamp costs."""
    font = font_for(line, size)
    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), line, font=font)
    mask = Image.new("L", (max(1, box[2] - box[0]), max(1, box[3] - box[1])), 0)
    ImageDraw.Draw(mask).text((-box[0], -box[1]), line, fill=255, font=font)
    return mask, box


def text_block(lines: tuple[str, ...], size: int, level: int = 255) -> Image.Image:
    """The lines drawn centred, one under the other, as an ``L`` mask of ``level`` on 0."""
    drawn = [_line(line, size) for line in lines]
    line_height = round(size * 1.3)
    width = max(box[2] - box[0] for _mask, box in drawn) + 8
    height = line_height * len(lines) + 8
    block = Image.new("L", (width, height), 0)
    for row, (mask, box) in enumerate(drawn):
        left = (width - (box[2] - box[0])) // 2
        top = 4 + row * line_height + box[1]
        block.paste(level, (left, top, left + mask.width, top + mask.height), mask)
    return block


def watermark_text(lines: tuple[str, ...], width: int) -> Image.Image:
    """The watermark's lines as an upright ``L`` block of alpha (WATERMARK_ALPHA already applied), for a
    page ``width`` pixels wide."""
    return text_block(lines, _scaled(WATERMARK_SIZE, width), WATERMARK_ALPHA)


@functools.lru_cache(maxsize=16)
def watermark_block(lines: tuple[str, ...], width: int) -> np.ndarray:
    """One watermark: :func:`watermark_text` turned by WATERMARK_ANGLE (counter-clockwise), an ``L`` array."""
    block = watermark_text(lines, width)
    return np.asarray(block.rotate(WATERMARK_ANGLE, expand=True, resample=Image.Resampling.BICUBIC))


def turned_size(size: tuple[int, int]) -> tuple[int, int]:
    """The (width, height) of :func:`watermark_block` for an upright block of ``size``, as Pillow's
    ``rotate(expand=True)`` computes it, without turning any pixels; the turned block's centre is the
    upright block's centre."""
    width, height = size
    angle = -math.radians(WATERMARK_ANGLE)
    a, b = round(math.cos(angle), 15), round(math.sin(angle), 15)
    d, e = -b, a
    # The same arithmetic as Pillow's, turning about the centre, so the rounding agrees to the pixel.
    c = a * -width / 2 + b * -height / 2 + width / 2
    f = d * -width / 2 + e * -height / 2 + height / 2
    corners = ((0, 0), (width, 0), (width, height), (0, height))
    xs = [a * x + b * y + c for x, y in corners]
    ys = [d * x + e * y + f for x, y in corners]
    return math.ceil(max(xs)) - math.floor(min(xs)), math.ceil(max(ys)) - math.floor(min(ys))


def watermark_places(size: tuple[int, int], block: tuple[int, int]) -> list[tuple[int, int]]:
    """Where the watermark blocks go on a page of ``size`` (width, height): the (left, top) pixel of
    each block of ``block`` (height, width) that touches the page, some partly off it."""
    width, height = size
    block_height, block_width = block
    step_x, step_y = _scaled(GRID[0], width), _scaled(GRID[1], width)
    places = []
    for row, top in enumerate(range(-block_height // 2, height, step_y)):
        # Alternate rows shift by half a step, so the stamp forms a brick pattern with no clear column.
        for left in range(-block_width // 2 + (step_x // 2 if row % 2 else 0) - step_x, width, step_x):
            if left + block_width > 0 and top + block_height > 0:
                places.append((left, top))
    return places


@functools.lru_cache(maxsize=16)
def watermark_mask(lines: tuple[str, ...], size: tuple[int, int]) -> Image.Image:
    """The page-sized ``L`` mask of the tiled diagonal watermark (alpha already applied)."""
    width, height = size
    rotated = watermark_block(lines, width)
    canvas = np.zeros((height, width), dtype=np.uint8)
    bh, bw = rotated.shape
    for left, top in watermark_places(size, rotated.shape):
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + bh, height), min(left + bw, width)
        part = rotated[y0 - top : y1 - top, x0 - left : x1 - left]
        np.maximum(canvas[y0:y1, x0:x1], part, out=canvas[y0:y1, x0:x1])
    return Image.fromarray(canvas, "L")


def footer_height(width: int) -> int:
    """Height in pixels of the footer strip on a page ``width`` pixels wide."""
    return round(_scaled(FOOTER_SIZE, width) * 2.2)


def footer_text(line: str, width: int) -> tuple[Image.Image, tuple[int, int]]:
    """The footer's line as an ``L`` mask, and the (width, height) it is shown at: its own size, or
    shrunk to leave a margin on each side of a page ``width`` pixels wide when the line is long."""
    block = text_block((line,), _scaled(FOOTER_SIZE, width))
    limit = width - 2 * _scaled(20, width)
    if block.width <= limit:
        return block, block.size
    return block, (limit, max(1, round(block.height * limit / block.width)))


@functools.lru_cache(maxsize=16)
def footer_mask(line: str, width: int) -> Image.Image:
    """The footer text as an ``L`` mask, as wide as the page, shrunk to fit when the line is long."""
    block, shown = footer_text(line, width)
    if shown != block.size:
        block = block.resize(shown, Image.Resampling.LANCZOS)
    strip = Image.new("L", (width, footer_height(width)), 0)
    strip.paste(block, ((width - block.width) // 2, (strip.height - block.height) // 2))
    return strip


def stamp_page(page: Image.Image, text: StampText) -> Image.Image:
    """Return ``page`` (as RGB) with the watermark and footer strip of ``text`` drawn on it."""
    stamped = page.convert("RGB") if page.mode != "RGB" else page.copy()
    width, height = stamped.size
    # Pasting a (cached) solid image through the mask is about twice as fast as pasting a colour tuple.
    mask = watermark_mask(text.watermark_lines(), (width, height))
    stamped.paste(_solid(WATERMARK_COLOUR, (width, height)), (0, 0), mask)
    strip_height = footer_height(width)
    top = height - strip_height
    if top > 0:
        strip = (width, strip_height)
        stamped.paste(_solid((255, 255, 255), strip), (0, top), _solid(FOOTER_ALPHA, strip))
        stamped.paste(_solid(FOOTER_TEXT, strip), (0, top), footer_mask(text.footer_line(), width))
    return stamped


def stamp_grey_in_place(page: Image.Image, text: StampText) -> None:
    """Draw the watermark and footer of ``text`` on the greyscale (``L``) ``page`` itself, in grey.

    A greyscale page is delivered as a greyscale image: the stamp is drawn at the luma of its colours,
    which is what :func:`stamp_page` draws on such a page less a tint of at most 2.5 levels of chroma
    (the watermark's colour is a near grey at alpha 64/255). Same masks, same geometry; no copy of the
    page and a third of the pixels to blend and encode.
    """
    if page.mode != "L":
        raise ValueError("stamp_grey_in_place needs an L page")
    width, height = page.size
    mask = watermark_mask(text.watermark_lines(), (width, height))
    page.paste(_solid(luma(WATERMARK_COLOUR), (width, height)), (0, 0), mask)
    strip_height = footer_height(width)
    top = height - strip_height
    if top > 0:
        strip = (width, strip_height)
        page.paste(_solid(255, strip), (0, top), _solid(FOOTER_ALPHA, strip))
        page.paste(_solid(luma(FOOTER_TEXT), strip), (0, top), footer_mask(text.footer_line(), width))


@functools.lru_cache(maxsize=16)
def _solid(colour: int | tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    """A solid image, ``L`` for a level and RGB for a colour; shared and never modified."""
    return Image.new("L" if isinstance(colour, int) else "RGB", size, colour)
