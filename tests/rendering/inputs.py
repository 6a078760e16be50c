"""Small input files for the rendering tests, generated in memory with reportlab and Pillow."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import pikepdf
from docx import Document
from openpyxl import Workbook
from PIL import Image
from pptx import Presentation
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


def docx_bytes() -> bytes:
    document = Document()
    document.add_heading("Quarterly report Отчёт 报告", 0)
    for number in range(60):
        document.add_paragraph(f"Paragraph {number}: the customer asked for a new offer. Клиент. 客户。")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Customer", "Amount"])
    for number in range(20):
        sheet.append([f"Customer {number}", number * 10])
    sheet.append(["Total", "=SUM(B2:B21)"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    deck = Presentation()
    for number in range(3):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {number + 1}"
        slide.placeholders[1].text = "Point one\nPoint two"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def odt_bytes(linked_image: str | None = None) -> bytes:
    """The smallest ODF text document LibreOffice accepts: mimetype, manifest and content.

    With ``linked_image``, the paragraph also holds an image that is not embedded but linked by that URL.
    """
    frame = (
        '<draw:frame draw:name="i" text:anchor-type="as-char" svg:width="2cm" svg:height="2cm">'
        f'<draw:image xlink:href="{linked_image}" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/>'
        "</draw:frame>"
        if linked_image
        else ""
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2">'
        f"<office:body><office:text><text:p>Hello from ODF, Привет, 你好{frame}</text:p></office:text></office:body>"
        "</office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def one_page_pdf(build: Callable[[pikepdf.Pdf, pikepdf.Page], None]) -> bytes:
    """A one-page A4 PDF whose page ``build(pdf, page)`` fills in, saved with its streams as packed."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595.28, 841.89))
    build(pdf, pdf.pages[0])
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


def deflated_stream(pdf: pikepdf.Pdf, data: bytes, **entries: object) -> pikepdf.Stream:
    """An indirect stream of ``data`` deflated, with the dictionary ``entries``."""
    stream = pikepdf.Stream(pdf, b"")
    stream.write(zlib.compress(data, 9), filter=pikepdf.Name.FlateDecode)
    for key, value in entries.items():
        stream[pikepdf.Name("/" + key)] = value
    return pdf.make_indirect(stream)


def image_bomb_pdf() -> bytes:
    """A one-page PDF drawing an image declared 40,000 × 40,000 RGB pixels (4.8 GB) in 1,000 bytes."""

    def build(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        image = deflated_stream(pdf, bytes(1000), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                                Width=40_000, Height=40_000, ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8)
        page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=image))
        page.obj.Contents = pdf.make_stream(b"q 500 0 0 500 0 0 cm /Im1 Do Q")

    return one_page_pdf(build)


def slow_pages(fills: int, pages: int = 1) -> bytes:
    """Pages that each fill a large rectangle ``fills`` times: under a kilobyte deflated, about 0.9 ms of
    drawing a fill (1 MB of such content took 44 s)."""
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(595.28, 841.89))
        pdf.pages[-1].obj.Contents = deflated_stream(pdf, b"10 10 500 700 re f\n" * fills)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def slow_field(fills: int) -> bytes:
    """A page whose one form field looks like a large rectangle filled ``fills`` times (about 0.9 ms a
    fill): PDFium draws form fields in one call (`FPDF_FFLDraw`), which has no deadline to check."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595.28, 841.89))
    page = pdf.pages[0]
    look = deflated_stream(pdf, b"10 10 500 700 re f\n" * fills, Type=pikepdf.Name.XObject,
                           Subtype=pikepdf.Name.Form, BBox=pikepdf.Array([0, 0, 595, 842]))
    field = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Tx, T=pikepdf.String("field"),
        Rect=pikepdf.Array([0, 0, 595, 842]), F=4, AP=pikepdf.Dictionary(N=look), P=page.obj))
    page.obj.Annots = pikepdf.Array([field])
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
