"""Stamped PDF copies: the visible stamp, the invisible mark and a verifiable view id on every page.

A stamped copy carries its view id three ways, from the easiest to strip to the hardest:

* the document information dictionary: ``/VaultViewId`` (12 lowercase hex digits) and
  ``/VaultViewMac`` (see :func:`view_mac`); gone with any "print to PDF" or metadata scrub;
* an invisible text line (text render mode 3) on every page: ``VAULT-VIEW <id hex> <mac hex>``; it
  survives page extraction and most re-saves, and is found by text search;
* the forensic luma mark (:mod:`vault.marking.forensic`) drawn over every page as a darkening image
  exactly NOMINAL_WIDTH pixels across, so a render or a photo of the page still carries the id.

The MAC makes the first two trustworthy: anyone can write ``/VaultViewId`` into a PDF to blame
someone else, but without the marking secret they cannot write a matching MAC.

The visible stamp (watermark and footer) is drawn as an image rather than as PDF text: it shows every
script the page stamp can draw (reportlab cannot embed the CFF-outline CJK fonts), and it does not
pollute the document's own text when copied or searched.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image
from pypdf import PdfReader, PdfWriter, Transformation
from pypdf.errors import PyPdfError
from reportlab.pdfgen import canvas

from vault.marking import forensic
from vault.marking.errors import MarkingError
from vault.marking.pdf_overlay import overlay_pdf
from vault.marking.stamp import StampText, stamp_page

META_ID = "/VaultViewId"
META_MAC = "/VaultViewMac"
TEXT_TAG = "VAULT-VIEW"
TEXT_PATTERN = re.compile(r"VAULT-VIEW ([0-9a-f]{12}) ([0-9a-f]{32})")
MAC_LABEL = b"vault/marking/pdf/v1"
IMAGE_DPI = 150
"""Resolution at which page images become PDF pages: 1240 pixels across is A4 width."""


def view_mac(secret: bytes, view_id: int) -> str:
    """32 hex digits: HMAC-SHA256(HMAC-SHA256(secret, MAC_LABEL), id as 6 bytes), truncated to 128 bits."""
    key = hmac.new(bytes(secret), MAC_LABEL, hashlib.sha256).digest()
    return hmac.new(key, view_id.to_bytes(6, "big"), hashlib.sha256).hexdigest()[:32]


def mac_matches(secret: bytes, view_id: int, mac: str) -> bool:
    return hmac.compare_digest(view_mac(secret, view_id), mac)


def _draw_id_text(pdf: canvas.Canvas, view_id: int, secret: bytes) -> None:
    line = pdf.beginText(4, 4)
    line.setTextRenderMode(3)  # neither filled nor stroked: invisible, but extractable and searchable
    line.setFont("Helvetica", 4)
    line.textLine(f"{TEXT_TAG} {view_id:012x} {view_mac(secret, view_id)}")
    pdf.drawText(line)


def _overlay(text: StampText, secret: bytes, width_pt: float, height_pt: float) -> bytes:
    """A one-page PDF of the given size holding the mark, the stamp and the invisible id line."""
    line = f"{TEXT_TAG} {text.view_id:012x} {view_mac(secret, text.view_id)}"
    return overlay_pdf(text, secret, line, width_pt, height_pt)


def _finish(writer: PdfWriter, text: StampText, secret: bytes) -> bytes:
    writer.add_metadata({META_ID: f"{text.view_id:012x}", META_MAC: view_mac(secret, text.view_id)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def stamp_pdf(source: bytes | BinaryIO, text: StampText, secret: bytes) -> bytes:
    """A copy of the PDF ``source`` with the stamp, the mark and the view id of ``text`` on every page.

    Raises:
        MarkingError: ``source`` is not a PDF pypdf can read, is encrypted, or has no pages.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    try:
        reader = PdfReader(stream)
        if reader.is_encrypted:
            raise MarkingError("the PDF is encrypted; it cannot be stamped")
        writer = PdfWriter(clone_from=reader)
        if len(writer.pages) == 0:
            raise MarkingError("the PDF has no pages")
        overlays: dict[tuple[float, float], object] = {}
        for page in writer.pages:
            # Stamp what the reader sees: a /Rotate page is turned into its displayed orientation first.
            if page.rotation:
                page.transfer_rotation_to_content()
            box = page.mediabox
            size = (round(float(box.width), 2), round(float(box.height), 2))
            if size not in overlays:
                overlays[size] = PdfReader(io.BytesIO(_overlay(text, secret, *size))).pages[0]
            page.merge_transformed_page(overlays[size], Transformation().translate(float(box.left), float(box.bottom)))
        return _finish(writer, text, secret)
    except MarkingError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise MarkingError("the file is not a readable PDF") from exc


def _id_text_overlay(view_id: int, secret: bytes, width_pt: float, height_pt: float) -> bytes:
    """A one-page PDF holding only the invisible id line."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(width_pt, height_pt))
    _draw_id_text(pdf, view_id, secret)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def images_to_stamped_pdf(pages: Sequence[Image.Image], text: StampText, secret: bytes) -> bytes:
    """A PDF with one page per image, each stamped and marked, plus the id text line and metadata.

    This is the stamped rendition of documents that are not PDFs: their pages, rendered to images
    NOMINAL_WIDTH pixels across, become pages at IMAGE_DPI. Pillow writes the images as JPEG q90
    streams (DCTDecode), which keeps the mark (it survives q75) at about half of PNG's size, and,
    unlike reportlab, without re-encoding them as ASCII85 text in pure Python (about a second a page).
    """
    if not pages:
        raise MarkingError("there are no pages to put in the PDF")
    marked = [forensic.embed(stamp_page(page, text), text.view_id, secret) for page in pages]
    buffer = io.BytesIO()
    marked[0].save(buffer, "PDF", save_all=True, append_images=marked[1:], resolution=IMAGE_DPI, quality=90)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    overlays: dict[tuple[float, float], object] = {}
    for page in writer.pages:
        size = (round(float(page.mediabox.width), 2), round(float(page.mediabox.height), 2))
        if size not in overlays:
            overlays[size] = PdfReader(io.BytesIO(_id_text_overlay(text.view_id, secret, *size))).pages[0]
        page.merge_page(overlays[size])
    return _finish(writer, text, secret)


@dataclass(frozen=True)
class PdfClaim:
    """A view id a PDF claims to carry, where the claim was found, and whether its MAC checked out."""

    view_id: int
    where: str  # "metadata" or "text"
    verified: bool


def metadata_claim(reader: PdfReader, secret: bytes) -> PdfClaim | None:
    """The id claimed by the document information dictionary, if any."""
    try:
        info = reader.metadata or {}
        raw_id, raw_mac = str(info.get(META_ID, "")), str(info.get(META_MAC, ""))
    except PyPdfError:
        return None
    if not re.fullmatch(r"[0-9a-f]{12}", raw_id):
        return None
    view_id = int(raw_id, 16)
    return PdfClaim(view_id, "metadata", bool(re.fullmatch(r"[0-9a-f]{32}", raw_mac)) and
                    mac_matches(secret, view_id, raw_mac))


def text_claims(page_texts: Sequence[str], secret: bytes) -> list[PdfClaim]:
    """Every id line found in the pages' text, in page order."""
    claims = []
    for page_text in page_texts:
        for match in TEXT_PATTERN.finditer(page_text):
            view_id = int(match.group(1), 16)
            claims.append(PdfClaim(view_id, "text", mac_matches(secret, view_id, match.group(2))))
    return claims


