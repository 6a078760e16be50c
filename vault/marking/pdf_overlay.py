"""The one-page PDF drawn over every page of a stamped PDF copy, written directly as PDF objects.

It holds, bottom to top: the forensic mark (black through the darkening alpha of one mark tile, drawn
tile by tile from the top-left corner), the tiled diagonal watermark, the footer strip (white at
FOOTER_ALPHA, its text opaque) and the invisible id text line. Geometry: one overlay pixel is one pixel of
a render NOMINAL_WIDTH pixels across, as the mark's decoder reads it.

Why by hand and not through reportlab: reportlab writes images as ASCII85 text in pure Python and hashes
them, some 250 ms for the two page-sized layers of every download. Here each layer is a page-sized
image whose colour is a constant (deflated once per page size and kept; the stamp's footer rows are
added to a copy of the kept deflate stream) and whose alpha is an ``/SMask``; the per-view alphas are
deflated at level 1 (mostly zeros), and the mark's is its 128 x 224 tile
pasted over the page. The overlay of an A4 page takes about 15 ms.
"""

from __future__ import annotations

import functools
import zlib

from PIL import Image

from vault.marking import forensic
from vault.marking.stamp import (
    FOOTER_ALPHA,
    FOOTER_TEXT,
    WATERMARK_COLOUR,
    StampText,
    footer_height,
    footer_mask,
    watermark_mask,
)

_MASK_LEVEL = 1  # deflate level of per-view masks: mostly zeros, level 1 is several times faster than 6


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


@functools.lru_cache(maxsize=16)
def _solid_stream(colour: tuple[int, ...], width: int, height: int) -> bytes:
    """Deflated pixels of a solid image (RGB for three levels, grey for one): the same for every view."""
    return zlib.compress(bytes(colour) * (width * height), 6)


def _image(width: int, height: int, grey: bool, data: bytes, smask: int | None = None) -> bytes:
    entries = (f"/Type /XObject /Subtype /Image /Width {width} /Height {height} /BitsPerComponent 8 "
               f"/ColorSpace /{'DeviceGray' if grey else 'DeviceRGB'} /Filter /FlateDecode /Length {len(data)}")
    if smask is not None:
        entries += f" /SMask {smask} 0 R"
    return b"<< " + entries.encode() + b" >>\nstream\n" + data + b"\nendstream"


def _deflate(data: bytes) -> bytes:
    """Per-view pixels, deflated at the fast level."""
    return zlib.compress(data, _MASK_LEVEL)


@functools.lru_cache(maxsize=16)
def _colour_above(colour: tuple[int, int, int], width: int, rows: int) -> tuple[bytes, zlib._Compress]:
    """A deflate stream fed ``rows`` rows of ``colour``: its output so far and the open stream, which each
    view copies to add its footer rows."""
    compressor = zlib.compressobj(6)
    return compressor.compress(bytes(colour) * (width * rows)), compressor


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def overlay_pdf(text: StampText, secret: bytes, id_line: str, width_pt: float, height_pt: float) -> bytes:
    """A one-page PDF of ``width_pt`` x ``height_pt`` holding the mark, the stamp and ``id_line`` (invisible)."""
    width = forensic.NOMINAL_WIDTH
    height = max(1, round(height_pt * width / width_pt))
    strip = footer_height(width)
    top = height - strip
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    # Both layers are page-sized images drawn over the whole page, as a render NOMINAL_WIDTH across sees
    # them pixel for pixel: smaller images at fractional positions would be resampled, blurring the
    # mark and shifting the footer's text by a fraction of a pixel.
    tile = forensic.tile_alpha_overlay(secret, text.view_id)
    mark = Image.new("L", (width, height), 0)
    for row in range(0, height, tile.height):
        for left in range(0, width, tile.width):
            mark.paste(tile, (left, row))
    mark_alpha = add(_image(width, height, True, _deflate(mark.tobytes())))
    mark_image = add(_image(width, height, True, _solid_stream((0,), width, height), mark_alpha))
    alpha = watermark_mask(text.watermark_lines(), (width, height))
    colour = _solid_stream(WATERMARK_COLOUR, width, height)
    if top > 0:
        # The footer strip as on a stamped page image: white at FOOTER_ALPHA, its text opaque in FOOTER_TEXT.
        text_mask = footer_mask(text.footer_line(), width)
        strip_colour = Image.new("RGB", (width, strip), (255, 255, 255))
        strip_colour.paste(FOOTER_TEXT, (0, 0, width, strip), text_mask)
        alpha = alpha.copy()
        alpha.paste(FOOTER_ALPHA, (0, top, width, height))
        alpha.paste(255, (0, top, width, height), text_mask)
        head, kept = _colour_above(WATERMARK_COLOUR, width, top)
        compressor = kept.copy()
        colour = head + compressor.compress(strip_colour.tobytes()) + compressor.flush()
    stamp_alpha = add(_image(width, height, True, _deflate(alpha.tobytes())))
    stamp_image = add(_image(width, height, False, colour, stamp_alpha))
    content = [f"q {_number(width_pt)} 0 0 {_number(height_pt)} 0 0 cm /Mk Do /St Do Q"]
    resources = f"/XObject << /Mk {mark_image} 0 R /St {stamp_image} 0 R >>"
    # Text render mode 3: neither filled nor stroked, so invisible, but extracted and found by search.
    content.append(f"BT /F1 4 Tf 3 Tr 1 0 0 1 4 4 Tm {_pdf_string(id_line)} Tj ET")
    stream = zlib.compress("\n".join(content).encode("latin-1"), 6)
    contents = add(b"<< /Filter /FlateDecode /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
                   + b"\nendstream")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pages = len(objects) + 3
    page = add(f"<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 {_number(width_pt)} {_number(height_pt)}] "
               f"/Resources << {resources} /Font << /F1 {font} 0 R >> >> "
               f"/Contents {contents} 0 R >>".encode())
    catalog = add(f"<< /Type /Catalog /Pages {pages} 0 R >>".encode())
    assert add(f"<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>".encode()) == pages
    return _file(objects, catalog)


def _file(objects: list[bytes], root: int) -> bytes:
    """The objects as a PDF file with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
