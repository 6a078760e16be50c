"""Shared pieces of laying text out with reportlab Platypus: page template, styles, decoding, PDF build."""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from typing import BinaryIO

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, SimpleDocTemplate

from vault.rendering.errors import RenditionFailed
from vault.rendering.fonts import MONO, SANS, register_fonts

MARGIN = 18 * mm
FRAME_WIDTH = A4[0] - 2 * MARGIN

# Characters reportlab cannot put in a Paragraph (C0 controls other than tab and newline, DEL, and the
# C1 block); they carry no text a reader needs.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def styles() -> dict[str, ParagraphStyle]:
    """Paragraph styles keyed by role. Built per call: ParagraphStyle objects are mutable."""
    register_fonts()
    body = ParagraphStyle("body", fontName=SANS, fontSize=10, leading=13.5, spaceAfter=4, splitLongWords=1)
    out = {
        "body": body,
        "line": ParagraphStyle("line", parent=body, spaceAfter=0),
        "code": ParagraphStyle("code", parent=body, fontName=MONO, fontSize=8.5, leading=11, spaceAfter=0),
        "quote": ParagraphStyle("quote", parent=body, leftIndent=14, textColor="#444444"),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8, leading=10, spaceAfter=0),
        "head": ParagraphStyle("head", parent=body, fontSize=8, leading=10, spaceAfter=0,
                               fontName=f"{SANS}-Bold"),
    }
    for level, size in enumerate((20, 16, 13.5, 12, 11, 10), start=1):
        out[f"h{level}"] = ParagraphStyle(f"h{level}", parent=body, fontName=f"{SANS}-Bold", fontSize=size,
                                          leading=size * 1.3, spaceBefore=size * 0.6, spaceAfter=size * 0.4)
    return out


def decode_text(data: bytes) -> str:
    """Decode user text: a UTF-16/UTF-8 byte-order mark wins, then UTF-8, then Windows-1252.

    Windows-1252 last because it is the one legacy encoding most office exports still produce; bytes it
    leaves undefined become U+FFFD rather than an error, so any file decodes.
    """
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return clean(data.decode(codec, errors="replace"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return clean(text)


def clean(text: str) -> str:
    """Normalise line ends, expand tabs and drop control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
    return _CONTROL.sub("", text)


def looks_binary(data: bytes) -> bool:
    """True for bytes that are not text in any encoding we read (NULs without a UTF-16 mark)."""
    head = data[:8192]
    return b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def build_pdf(story: Sequence[Flowable], out: BinaryIO, title: str) -> None:
    """Lay ``story`` out on A4 pages into ``out``; any layout failure becomes a RenditionFailed."""
    document = SimpleDocTemplate(out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                                 bottomMargin=MARGIN, title=title, author="", creator="", producer="",
                                 invariant=1)
    try:
        document.build(list(story))
    except RenditionFailed:
        raise
    except Exception as exc:  # reportlab raises LayoutError, ValueError, IndexError... for odd content
        raise RenditionFailed("The text could not be laid out on pages.") from exc
    out.seek(0)
