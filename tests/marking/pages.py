"""Realistic test pages: dense A4 text documents made with reportlab and rendered like the viewer does."""

from __future__ import annotations

import io
import random

import pikepdf
import pypdfium2
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from tests.rendering.inputs import deflated_stream, one_page_pdf

WORDS = [
    "customer", "invoice", "account", "balance", "contract", "renewal", "quarterly", "meeting", "delivery",
    "address", "phone", "payment", "terms", "discount", "order", "reference", "contact", "manager", "region",
    "north", "south", "pending", "approved",
]


def text_pdf(pages: int = 1, seed: int = 0) -> bytes:
    """A PDF of ``pages`` A4 pages, each a heading, 80 lines of 9 pt text and a small box."""
    rng = random.Random(seed)
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    _width, height = A4
    for number in range(pages):
        pdf.setFont("Helvetica-Bold", 16)
        pdf.drawString(56, height - 60, f"Customer file {seed}-{number + 1}")
        pdf.setFont("Helvetica", 9)
        for line in range(80):
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
            pdf.drawString(56, height - 90 - line * 9, words)
        pdf.rect(400, 60, 140, 50)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def render(pdf_bytes: bytes, width: int = 1240) -> list[Image.Image]:
    """Every page at ``width`` pixels wide (A4 at 150 dpi for 1240), RGB."""
    document = pypdfium2.PdfDocument(pdf_bytes)
    try:
        images = []
        for index in range(len(document)):
            page = document[index]
            # PDFium rounds the pixel width up: aim a hair below so 1240 stays 1240, not 1241.
            scale = (width - 0.01) / page.get_size()[0]
            images.append(page.render(scale=scale).to_pil().convert("RGB"))
            page.close()
        return images
    finally:
        document.close()


def text_pages(pages: int = 1, seed: int = 0) -> list[Image.Image]:
    return render(text_pdf(pages, seed))


def several_streams(*contents: bytes, filters: pikepdf.Name = pikepdf.Name.FlateDecode) -> bytes:
    """A one-page A4 PDF drawn by several content streams, each deflated (or hex-encoded with
    ``filters=/ASCIIHexDecode``) and kept as packed."""

    def build(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        streams = []
        for content in contents:
            if filters == pikepdf.Name.FlateDecode:
                streams.append(deflated_stream(pdf, content))
                continue
            stream = pikepdf.Stream(pdf, b"")
            stream.write(content.hex().encode("ascii") + b">", filter=filters)
            streams.append(pdf.make_indirect(stream))
        page.obj.Contents = pikepdf.Array(streams)

    return one_page_pdf(build)
