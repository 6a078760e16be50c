"""Small input files for the rendering tests, generated in memory with reportlab and Pillow."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


def pdf_bytes(pages: int, size: tuple[float, float] = A4) -> bytes:
    """A PDF of ``pages`` pages, each with a heading naming its number and a few lines of text."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=size, invariant=1)
    for number in range(1, pages + 1):
        pdf.setFont("Helvetica-Bold", 16)
        pdf.drawString(50, size[1] - 60, f"Page {number}")
        pdf.setFont("Helvetica", 9)
        for line in range(10):
            pdf.drawString(50, size[1] - 90 - line * 12, f"Line {line} of page {number}, some words to draw.")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def image_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` pixels but is a few dozen bytes long: a pixel bomb.

    Its one IDAT chunk holds a single compressed row, so any decoder that trusted the header and
    allocated the image would need width × height × 3 bytes.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))
