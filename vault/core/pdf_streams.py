"""What a PDF stream unpacks to, read a piece at a time: never the whole of it in memory.

A few kilobytes of deflate can unpack to gigabytes. The pages drawn at upload measure what a page would
have PDFium unpack before it draws (`vault.rendering.pdf`), and a stamped copy joins a page's content
streams through the same pieces (`vault.marking.pdf`), so both hold one piece at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pikepdf
from pikepdf import Name

PIECE = 1 << 20
"""Bytes unpacked at a time."""


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
