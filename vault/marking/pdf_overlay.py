"""The form drawn over every page of a stamped PDF copy, built as PDF objects in the copy itself.

It holds, bottom to top: the forensic mark (black through a page-sized darkening alpha, the mark's tile
repeated from the top-left corner), the diagonal watermark (its upright text block, turned by the form at
every place :func:`vault.marking.stamp.watermark_places` gives, as on a stamped page image), the footer (a
band of white at FOOTER_ALPHA, then its line opaque) and the invisible id text line. Geometry: one
overlay pixel is one pixel of a render NOMINAL_WIDTH pixels across, as the mark's decoder reads it.

Why this shape: per view only the tile, the watermark's block and the footer's line are new
(`ViewOverlay`, about 2 ms, made before the PDF is in hand), and a copy's form then costs about 1.5 ms
per page size, where two page-sized layers drawn and deflated per view took about 15 ms. The mark stays
one page-sized image: drawn tile by tile, a render whose pixels do not fall on the tiles' edges darkens
their shared column twice, a faint grid. Its deflate stream is one band of tiles deflated once and
repeated (`DeflatedBand`). A solid colour is an image of one bit per pixel whose one colour
is that colour (``/Indexed``), so its pixels deflate to almost nothing.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np
import pikepdf
from pikepdf import Dictionary, Name

from vault.marking import forensic
from vault.marking.errors import MarkingError
from vault.marking.stamp import (
    FOOTER_ALPHA,
    FOOTER_TEXT,
    WATERMARK_ANGLE,
    WATERMARK_COLOUR,
    StampText,
    footer_height,
    footer_text,
    luma,
    turned_size,
    watermark_places,
    watermark_text,
)

MAX_HEIGHT = 20 * forensic.NOMINAL_WIDTH
"""The tallest overlay drawn, in pixels of the NOMINAL_WIDTH grid (a page 20 times as tall as wide)."""
FAST_LEVEL = 1
"""Deflate level of what a copy packs per view (alphas, mostly zeros; joined page content): several times
faster than level 6, on the request's path."""
BAND_PIECE_ROWS = 32
"""Rows of the mark's band deflated as one piece (`DeflatedBand`): pieces this long deflate as small as the
band in one piece, and cutting a band costs a deflate of fewer rows than this."""


def pdf_number(value: float) -> str:
    """A number in a content stream or a dictionary: a thousandth of a point is far below a pixel."""
    return f"{value:.3f}"


def _numbers(*values: float) -> str:
    return " ".join(pdf_number(value) for value in values)


@functools.lru_cache(maxsize=16)
def _zero_bits(width: int, height: int) -> bytes:
    """Deflated pixels of a one-bit image of colour index 0: the same for every view of a size."""
    return zlib.compress(bytes(-(-width // 8) * height), 6)


class DeflatedBand:
    """The mark's band of tiles as deflate pieces, from which the zlib stream of the band repeated down a
    page of any height is joined without deflating the page, or even the band, again.

    The band is deflated once, BAND_PIECE_ROWS rows at a time, each piece ended by a full flush, which
    leaves nothing referring back to earlier bytes: a page is the pieces joined once per whole band, then
    those of its cut band's rows (the last, partial, piece deflated there), an empty final block and the
    checksum. The pieces depend on the view alone, so they are made before the PDF is in hand
    (`ViewOverlay`); a copy then spends tens of microseconds per page size, not a band's deflate.
    """

    def __init__(self, band: bytes, row: int) -> None:
        if row <= 0 or len(band) % row:
            raise ValueError("a band is a whole number of rows")
        self.band, self.row = band, row
        self.rows = len(band) // row
        step = BAND_PIECE_ROWS * row
        compressor = zlib.compressobj(FAST_LEVEL, zlib.DEFLATED, -15)
        self.pieces = [compressor.compress(band[start:start + step]) + compressor.flush(zlib.Z_FULL_FLUSH)
                       for start in range(0, len(band), step)]
        self._whole = b"".join(self.pieces)
        self._checksum = zlib.adler32(band)

    def repeated(self, rows: int) -> bytes:
        """The zlib stream of the band repeated and cut to ``rows`` rows."""
        if rows < 0:
            raise ValueError("rows must not be negative")
        repeats, rest = divmod(rows, self.rows) if self.rows else (0, 0)
        kept, part = divmod(rest, BAND_PIECE_ROWS)
        tail = self.pieces[:kept]
        if part:
            cut = self.band[kept * BAND_PIECE_ROWS * self.row:rest * self.row]
            compressor = zlib.compressobj(FAST_LEVEL, zlib.DEFLATED, -15)
            tail = [*tail, compressor.compress(cut) + compressor.flush(zlib.Z_FULL_FLUSH)]
        final = zlib.compressobj(FAST_LEVEL, zlib.DEFLATED, -15).flush()  # an empty block marked final
        checksum = 1
        for _ in range(repeats):
            checksum = _adler32_joined(checksum, self._checksum, len(self.band))
        checksum = zlib.adler32(self.band[:rest * self.row], checksum)
        # 0x78 0x01: deflate with a 32 KiB window, the fastest level's flag; the check bits make it a multiple of 31.
        return b"\x78\x01" + self._whole * repeats + b"".join(tail) + final + checksum.to_bytes(4, "big")


def _adler32_joined(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from the checksum of each (zlib's ``adler32_combine``,
    which Python does not expose): a page of repeated bands is summed from one band's checksum."""
    base = 65521
    rem = second_length % base
    low = (first & 0xFFFF) + (second & 0xFFFF) + base - 1
    high = rem * (first & 0xFFFF) % base + (first >> 16) + (second >> 16) + base - rem
    return (low % base) | ((high % base) << 16)


def _stream(pdf: pikepdf.Pdf, deflated: bytes, **entries: object) -> pikepdf.Stream:
    stream = pikepdf.Stream(pdf, b"")
    for key, value in entries.items():
        stream[Name("/" + key)] = value
    stream.write(deflated, filter=Name.FlateDecode)
    return pdf.make_indirect(stream)


def _alpha_image(pdf: pikepdf.Pdf, colour: int | tuple[int, int, int], size: tuple[int, int],
                 alpha: bytes) -> pikepdf.Stream:
    """An image of one ``colour`` (a grey level or RGB) seen through ``alpha``: the deflated pixels of an
    ``L`` image of ``size`` (width, height)."""
    width, height = size
    smask = _stream(pdf, alpha, Type=Name.XObject, Subtype=Name.Image, Width=width, Height=height,
                    BitsPerComponent=8, ColorSpace=Name.DeviceGray)
    levels = bytes([colour]) if isinstance(colour, int) else bytes(colour)
    base = Name.DeviceGray if isinstance(colour, int) else Name.DeviceRGB
    return _stream(pdf, _zero_bits(width, height), Type=Name.XObject, Subtype=Name.Image, Width=width,
                   Height=height, BitsPerComponent=1, ColorSpace=pikepdf.Array([Name.Indexed, base, 0,
                   pikepdf.String(levels)]), SMask=smask)


def _alpha_of(mask: np.ndarray) -> bytes:
    """An ``L`` array's pixels, deflated at the fast level."""
    return zlib.compress(np.ascontiguousarray(mask).tobytes(), FAST_LEVEL)


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def id_line_operators(line: str) -> str:
    """The content operators of the invisible id line, in font /F1 (Helvetica) at the page's bottom left.

    Text render mode 3: neither filled nor stroked, so invisible, but extracted and found by search."""
    return f"BT /F1 4 Tf 3 Tr 1 0 0 1 4 4 Tm {_pdf_string(line)} Tj ET"


def _helvetica(pdf: pikepdf.Pdf) -> pikepdf.Object:
    return pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica,
                                        Encoding=Name.WinAnsiEncoding))


class _Placer:
    """Content operators that place images by the pixels of the overlay's grid (origin top left), where
    they sit on a stamped page image."""

    def __init__(self, width_pt: float, height_pt: float) -> None:
        # Square pixels from the top, as a render NOMINAL_WIDTH across has them.
        self.scale = width_pt / forensic.NOMINAL_WIDTH
        self.height_pt = height_pt
        self.operators: list[str] = []

    def draw(self, name: str, left: float, top: float, width: float, height: float) -> None:
        """Image ``name`` over the pixels from (left, top), ``width`` x ``height`` of them."""
        x, y = left * self.scale, self.height_pt - (top + height) * self.scale
        self.operators.append(f"q {_numbers(width * self.scale, 0, 0, height * self.scale, x, y)} cm /{name} Do Q")

    def draw_turned(self, name: str, centre: tuple[float, float], size: tuple[int, int], degrees: float) -> None:
        """Image ``name`` of ``size`` pixels, turned counter-clockwise by ``degrees`` about its centre,
        which lands on pixel ``centre``."""
        x, y = centre[0] * self.scale, self.height_pt - centre[1] * self.scale
        cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        width, height = size[0] * self.scale, size[1] * self.scale
        at, turn = _numbers(1, 0, 0, 1, x, y), _numbers(cos, sin, -sin, cos, 0, 0)
        self.operators.append(f"q {at} cm {turn} cm {_numbers(width, 0, 0, height, -width / 2, -height / 2)} cm "
                              f"/{name} Do Q")

    def fill(self, state: str, grey: int, top: int, height: int) -> None:
        """The full-width band of pixel rows from ``top``, in ``grey``, with graphics state ``state``."""
        y = self.height_pt - (top + height) * self.scale
        self.operators.append(f"q /{state} gs {pdf_number(grey / 255)} g "
                              f"{_numbers(0, y, forensic.NOMINAL_WIDTH * self.scale, height * self.scale)} re f Q")


@dataclass(frozen=True)
class ViewOverlay:
    """What a copy's overlay holds that depends on the view alone, not on the PDF: the mark's band, the
    watermark's upright block and the footer's line, each as the deflated pixels the copy's images take,
    and the invisible id line.

    Drawing the text and deflating the band is about 2 ms of a copy's stamping, and none of it needs the
    PDF: a one-request view makes it while the PDF is still being read (`vault.services.views`), and what
    is left once the PDF is in hand is placing these on its page sizes (`overlay_form`).
    """

    view_id: int
    id_line: str
    band: DeflatedBand
    watermark_size: tuple[int, int]  # (width, height) of the upright block
    watermark_alpha: bytes
    footer_size: tuple[int, int]  # (width, height) of the line as drawn
    footer_shown: tuple[int, int]  # and as shown: shrunk on the page when it is too long
    footer_alpha: bytes

    @classmethod
    def of(cls, text: StampText, secret: bytes, id_line: str) -> ViewOverlay:
        width = forensic.NOMINAL_WIDTH
        tile = np.asarray(forensic.tile_alpha_overlay(secret, text.view_id))
        band = np.tile(tile, (1, -(-width // tile.shape[1])))[:, :width]
        block = np.asarray(watermark_text(text.watermark_lines(), width))
        line, shown = footer_text(text.footer_line(), width)
        return cls(view_id=text.view_id, id_line=id_line,
                   band=DeflatedBand(np.ascontiguousarray(band).tobytes(), width),
                   watermark_size=(block.shape[1], block.shape[0]), watermark_alpha=_alpha_of(block),
                   footer_size=line.size, footer_shown=shown, footer_alpha=_alpha_of(np.asarray(line)))


def overlay_form(pdf: pikepdf.Pdf, overlay: ViewOverlay, width_pt: float, height_pt: float) -> pikepdf.Stream:
    """A form XObject of ``width_pt`` x ``height_pt`` in ``pdf`` holding the mark, the stamp and the
    invisible id line of ``overlay``, to be drawn over a page as its reader sees it."""
    width = forensic.NOMINAL_WIDTH
    height = max(1, round(height_pt * width / width_pt))
    if height > MAX_HEIGHT:
        # The mark is a page-sized image: a sliver 1 pt wide and a mile long would need gigabytes.
        raise MarkingError(f"a page of {width_pt:g} x {height_pt:g} pt is too narrow for its height to stamp")
    placer = _Placer(width_pt, height_pt)
    # The mark is one page-sized image, not the tile drawn again and again: a renderer whose pixels do
    # not fall exactly on the tile's edges paints the column or row two tiles share twice, and the
    # darkening doubles there, a faint grid over the page.
    mark = _alpha_image(pdf, 0, (width, height), overlay.band.repeated(height))
    # Stretched over the whole page: a render NOMINAL_WIDTH across has the image's pixels as its own.
    placer.operators.append(f"q {_numbers(width_pt, 0, 0, height_pt, 0, 0)} cm /Mk Do Q")
    # The watermark's upright block, turned here rather than in pixels, centred where the page image's
    # turned block is centred. No render keeps its pixels as drawn anyway (a turned image is resampled).
    turned = turned_size(overlay.watermark_size)
    for left, top in watermark_places((width, height), (turned[1], turned[0])):
        placer.draw_turned("Wm", (left + turned[0] / 2, top + turned[1] / 2), overlay.watermark_size,
                           WATERMARK_ANGLE)
    images = {"Mk": mark, "Wm": _alpha_image(pdf, WATERMARK_COLOUR, overlay.watermark_size, overlay.watermark_alpha)}
    strip = footer_height(width)
    if strip < height:
        # The footer as on a stamped page image: a band of white at FOOTER_ALPHA, then its line opaque,
        # shrunk by the renderer (not resampled here) when it is too long for the page.
        top = height - strip
        placer.fill("Fa", 255, top, strip)
        shown_width, shown_height = overlay.footer_shown
        images["Ft"] = _alpha_image(pdf, luma(FOOTER_TEXT), overlay.footer_size, overlay.footer_alpha)
        placer.draw("Ft", (width - shown_width) // 2, top + (strip - shown_height) // 2, shown_width, shown_height)
    content = "\n".join([*placer.operators, id_line_operators(overlay.id_line)]).encode("latin-1")
    resources = Dictionary(XObject=Dictionary({"/" + key: value for key, value in images.items()}),
                           Font=Dictionary(F1=_helvetica(pdf)),
                           ExtGState=Dictionary(Fa=Dictionary(Type=Name.ExtGState, ca=FOOTER_ALPHA / 255)))
    return _stream(pdf, zlib.compress(content, 6), Type=Name.XObject, Subtype=Name.Form,
                   BBox=pikepdf.Array([0, 0, width_pt, height_pt]), Resources=resources)
