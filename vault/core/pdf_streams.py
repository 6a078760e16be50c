"""What a PDF stream, and what a PDF page draws, unpacks to: read a piece at a time, never held whole.

A few kilobytes of deflate can unpack to gigabytes, and PDFium holds what it unpacks while it draws a page
(or reads its text). So the pages drawn at upload (`vault.rendering.pdf`) and a leaked file being traced
(`vault.marking.trace`) measure each page first (`first_page_over`) and hand PDFium qpdf's own reading of
the file (`write_as_read`), and a stamped copy joins a page's content streams through the same pieces
(`vault.marking.pdf`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

import pikepdf
from pikepdf import Name

PIECE = 1 << 20
"""Bytes unpacked at a time."""
MAX_PAGE_DRAWING = 256 << 20
"""Bytes what one page draws may unpack to (`first_page_over`): two full-page colour scans at 600 dpi, or
16 MiB of drawing operators (`CONTENT_WEIGHT`)."""
CONTENT_WEIGHT = 16
"""What a byte of drawing operators counts for: PDFium holds the page objects it parses them into, about
twenty bytes for each byte of short operators (16 MB of them raised a worker's peak memory by 327 MiB)."""


class PackedOtherwise(ValueError):
    """A stream packed by a filter other than deflate (or by deflate with a predictor): only qpdf could
    unpack it, and only whole."""


def filters_of(stream: pikepdf.Stream) -> list[Name]:
    """The stream's filters, in the order they are undone (none for a stream stored as it is)."""
    filters = stream.get(Name.Filter)
    if filters is None:
        return []
    return list(filters) if isinstance(filters, pikepdf.Array) else [filters]


def unpacked(stream: pikepdf.Stream) -> Iterator[bytes]:
    """The stream's bytes, unpacked a piece of at most PIECE bytes at a time.

    Stored as they are, or deflated without a predictor, as nearly every content stream is. A stream whose
    deflate data is damaged ends where the damage starts, as a reader draws it.

    Raises:
        PackedOtherwise: another filter, or a predictor.
    """
    filters = filters_of(stream)
    parameters = stream.get(Name.DecodeParms)
    if isinstance(parameters, pikepdf.Array) and len(parameters) == 1:
        parameters = parameters[0]
    if filters and (filters != [Name.FlateDecode] or not (parameters is None or parameters == pikepdf.Dictionary())):
        raise PackedOtherwise(f"a stream packed by {', '.join(str(f) for f in filters)}")
    raw = stream.read_raw_bytes()
    if not filters:
        yield raw
        return
    inflater = zlib.decompressobj()
    data = raw
    try:
        while True:
            piece = inflater.decompress(data, PIECE)
            data = inflater.unconsumed_tail
            if piece:
                yield piece
            if inflater.eof or (not data and len(piece) < PIECE):
                return
    except zlib.error:
        return


def unpacked_size(stream: pikepdf.Stream, limit: int) -> int:
    """How many bytes the stream unpacks to, counted up to just past ``limit`` (then the count stops).

    Raises:
        PackedOtherwise: see `unpacked`.
    """
    size = 0
    for piece in unpacked(stream):
        size += len(piece)
        if size > limit:
            break
    return size


def first_page_over(pdf: pikepdf.Pdf, limit: int) -> int | None:
    """The number (from 1) of the first page whose drawing unpacks to more than ``limit`` bytes, or None.

    What a page draws: its content, the forms, patterns, fonts and annotations' looks it reaches, and, for a
    page with annotations, the interactive form's default resources (PDFium draws a field without a look of
    its own in their fonts); each stream unpacked a piece at a time and not kept (see `unpacked`), images at
    their declared size, streams packed by other filters at the most those filters can produce. An object
    shared by many pages is measured once and counted for each.

    Raises:
        RecursionError: objects nested too deeply to walk.
    """
    form = pdf.Root.get("/AcroForm")
    drawing = _Drawing(limit, form.get("/DR") if isinstance(form, pikepdf.Dictionary) else None)
    for number, page in enumerate(pdf.pages, 1):
        if drawing.page(page.obj) > limit:
            return number
    return None


def write_as_read(pdf: pikepdf.Pdf, out: BinaryIO) -> None:
    """Write the document out as qpdf reads it, for PDFium to read instead of the file.

    Each repairs a damaged page tree its own way: PDFium took a stream listed among a tree's /Kids for a
    page where qpdf dropped it, and drew a page `first_page_over` had never measured. What qpdf writes is
    its own reading, plainly, each stream copied as packed, byte for byte (nothing is unpacked to write it).
    """
    pdf.save(out, stream_decode_level=pikepdf.StreamDecodeLevel.none, compress_streams=False,
             object_stream_mode=pikepdf.ObjectStreamMode.preserve, fix_metadata_version=False)


# Keys that lead away from what a page draws (to other pages, the document's structure, actions, popups):
# the walk of `_Drawing` does not follow them.
_AWAY = frozenset({"/Parent", "/P", "/Dest", "/D", "/A", "/AA", "/Next", "/Prev", "/First", "/Last", "/Popup",
                   "/IRT", "/Metadata", "/PieceInfo", "/Thumb", "/B", "/StructParent", "/StructParents"})
# The most each filter can multiply a stream's size by, for streams that cannot be measured a piece at a time
# (`PackedOtherwise`): LZW 3,840 bytes for a 9-bit code at most, RunLength 128 for 2, ASCII85 4 for 1
# ("z"), deflate 1,032 for 1; any other filter (image codecs in a non-image stream) is taken as 65,536.
_WORST = {"/LZWDecode": 3414, "/RunLengthDecode": 64, "/ASCII85Decode": 4, "/ASCIIHexDecode": 1,
          "/FlateDecode": 1032, "/Crypt": 1}
_COMPONENTS = {"/DeviceGray": 1, "/CalGray": 1, "/DeviceRGB": 3, "/CalRGB": 3, "/Lab": 3, "/DeviceCMYK": 4,
               "/Indexed": 1, "/Separation": 1}


class _Drawing:
    """What a page draws, in unpacked bytes: each object's total is counted once per document (a font or a
    form shared by every page is unpacked once), and added for every page that reaches it."""

    def __init__(self, limit: int, form_resources: pikepdf.Object | None = None) -> None:
        self.limit = limit
        self._form_resources = form_resources
        self._totals: dict[tuple[int, int], int] = {}
        self._open: set[tuple[int, int]] = set()

    def page(self, page: pikepdf.Dictionary) -> int:
        total = 0
        annotations = page.get("/Annots")
        # Its resources are its own or the page tree's it inherits.
        parts = ((page.get("/Contents"), True), (pikepdf.Page(page).get_resources(), False), (annotations, False),
                 (self._form_resources if annotations is not None else None, False))
        for part, content in parts:
            if part is not None and total <= self.limit:
                total += self._cost(part, content)
        return total

    def _cost(self, value: pikepdf.Object, content: bool = False) -> int:
        """`content`: streams reached here are drawing operators (a page's content, a Type 3 glyph's)."""
        if not isinstance(value, pikepdf.Dictionary | pikepdf.Array | pikepdf.Stream):
            return 0
        key = value.objgen if value.is_indirect else None
        if key is not None:
            if (key, content) in self._totals:
                return self._totals[key, content]
            if key in self._open:
                return 0  # a cycle: counted where it started
            self._open.add(key)
        total = self._own(value, content) if isinstance(value, pikepdf.Stream) else 0
        children = value.items() if not isinstance(value, pikepdf.Array) else ((None, item) for item in value)
        # What an array of content streams or a Type 3 font's glyph procedures (/CharProcs) hold is content.
        inside = content and not isinstance(value, pikepdf.Stream)
        for name, child in children:
            if total > self.limit:
                break
            if name not in _AWAY:
                total += self._cost(child, inside or name == "/CharProcs")
        if key is not None:
            self._open.discard(key)
            self._totals[key, content] = total
        return total

    def _own(self, stream: pikepdf.Stream, content: bool) -> int:
        """The stream's own cost: an image's pixels; drawing operators (a page's or glyph's content, a
        form's, a tiling pattern's) at `CONTENT_WEIGHT` per byte; anything else unpacked, counted or bounded."""
        if stream.get("/Subtype") == pikepdf.Name.Image:
            return _image_bytes(stream)
        weight = CONTENT_WEIGHT if content or stream.get("/Subtype") == pikepdf.Name.Form or stream.get(
            "/PatternType") == 1 else 1
        try:
            return unpacked_size(stream, self.limit // weight) * weight
        except PackedOtherwise:
            bound = len(stream.read_raw_bytes())
            for name in filters_of(stream):
                bound *= _WORST.get(str(name), 1 << 16)
            return bound * weight


def _image_bytes(image: pikepdf.Stream) -> int:
    """An image's pixels at its declared size and depth, as PDFium decodes them; a JPEG 2000 image at
    the larger of that and what its data holds (`_jpx_bytes`)."""
    declared = _declared_image_bytes(image)
    if Name.JPXDecode in filters_of(image):
        return max(declared, _jpx_bytes(image))
    return declared


def _jpx_bytes(image: pikepdf.Stream) -> int:
    """What decoding a JPEG 2000 image's data takes: the size in its codestream's SIZ segment, four bytes
    a sample (OpenJPEG decodes each sample into a 32-bit integer), whatever the image dictionary declares.
    A codestream of a few hundred bytes may hold 40,000 × 40,000 pixels; declared 100 × 100, a 12,000 ×
    12,000 one raised a worker's peak memory by 708 MiB.

    The codestream is found by the JP2 boxes (a `jp2c` box) or at the data's start; data packed otherwise,
    or in which no codestream is found, counts as the whole stream's raw size times a thousand.
    """
    filters = filters_of(image)
    raw = image.read_raw_bytes()
    if filters == [Name.JPXDecode]:
        head = raw
    elif filters == [Name.FlateDecode, Name.JPXDecode] and image.get(Name.DecodeParms) is None:
        head = zlib.decompressobj().decompress(raw, _JPX_HEAD)
    else:
        return len(raw) * 1000
    codestream = _codestream(head)
    if codestream is None or len(codestream) < 42 or codestream[:4] != _SOC_SIZ:
        return len(raw) * 1000
    x, y, x0, y0 = (int.from_bytes(codestream[at:at + 4], "big") for at in (8, 12, 16, 20))
    components = int.from_bytes(codestream[40:42], "big")
    return max(0, x - x0) * max(0, y - y0) * max(1, components) * 4


_JPX_HEAD = 1 << 20
"""Bytes of a deflated JPEG 2000 stream unpacked to find its codestream's size."""
_SOC_SIZ = b"\xff\x4f\xff\x51"
"""How a JPEG 2000 codestream starts: its SOC marker, then its SIZ segment's."""


def _codestream(data: bytes) -> bytes | None:
    """The JPEG 2000 codestream in ``data``: the content of its top-level `jp2c` box, or ``data`` itself
    when it starts as a bare codestream does."""
    if data[:4] == _SOC_SIZ:
        return data
    at = 0
    while at + 8 <= len(data):
        length, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        header = 8
        if length == 1:
            if at + 16 > len(data):
                return None
            length, header = int.from_bytes(data[at + 8:at + 16], "big"), 16
        elif length == 0:
            length = len(data) - at
        if kind == b"jp2c":
            return data[at + header:at + length]
        if length < header:
            return None
        at += length
    return None


def _declared_image_bytes(image: pikepdf.Stream) -> int:
    try:
        width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
        bits = 1 if image.get("/ImageMask") else int(image.get("/BitsPerComponent", 8))
    except (TypeError, ValueError):
        return 0
    space = image.get("/ColorSpace")
    if isinstance(space, pikepdf.Array) and len(space) > 0:
        family = str(space[0])
        if family == "/ICCBased" and isinstance(space[1] if len(space) > 1 else None, pikepdf.Stream):
            components = int(space[1].get("/N", 4))
        elif family == "/DeviceN" and len(space) > 1 and isinstance(space[1], pikepdf.Array):
            components = len(space[1])
        else:
            components = _COMPONENTS.get(family, 4)
    else:
        components = _COMPONENTS.get(str(space), 4) if space is not None else 4
    return max(0, width) * max(0, height) * max(1, components) * max(1, bits) // 8
