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

import pikepdf
from pikepdf import Name
from PIL import Image

from vault.marking import forensic
from vault.marking.errors import MarkingError
from vault.marking.pdf_overlay import helvetica, id_line_operators, overlay_form
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


def _id_line(secret: bytes, view_id: int) -> str:
    return f"{TEXT_TAG} {view_id:012x} {view_mac(secret, view_id)}"


def _displayed(page: pikepdf.Page) -> tuple[float, float, str]:
    """The page's size as its reader sees it (its crop box, turned by its /Rotate), and the matrix that
    takes that upright view's coordinates, origin bottom left, into the page's own."""
    left, bottom, right, top = (float(value) for value in page.cropbox)
    left, right = min(left, right), max(left, right)
    bottom, top = min(bottom, top), max(bottom, top)
    width, height = right - left, top - bottom
    # /Rotate turns the page clockwise for display; each matrix maps the upright (u, v) back.
    matrices = {0: (1, 0, 0, 1, left, bottom), 90: (0, 1, -1, 0, right, bottom),
                180: (-1, 0, 0, -1, right, top), 270: (0, -1, 1, 0, left, top)}
    rotation = page.rotation % 360
    if rotation not in matrices:
        raise MarkingError("the PDF has a page turned by other than a right angle")
    if rotation in (90, 270):
        width, height = height, width
    matrix = " ".join(_number(value) for value in matrices[rotation])
    return width, height, matrix


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def _finish(pdf: pikepdf.Pdf, text: StampText, secret: bytes) -> bytes:
    pdf.docinfo[Name(META_ID)] = f"{text.view_id:012x}"
    pdf.docinfo[Name(META_MAC)] = view_mac(secret, text.view_id)
    out = io.BytesIO()
    # The original's streams go out as they came in (not decoded, not compressed again): the copy costs
    # what its new objects cost, not what its pages weigh.
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none,
             object_stream_mode=pikepdf.ObjectStreamMode.preserve, fix_metadata_version=False)
    return out.getvalue()


def stamp_pdf(source: bytes | BinaryIO, text: StampText, secret: bytes) -> bytes:
    """A copy of the PDF ``source`` with the stamp, the mark and the view id of ``text`` on every page.

    Each page's own content is kept as it is, wrapped in a saved graphics state, and the overlay form
    is drawn after it, placed to stand upright over the page as its reader sees it (its crop box, its
    /Rotate).

    Raises:
        MarkingError: ``source`` is not a PDF that can be read, is encrypted, or has no pages.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    try:
        with pikepdf.Pdf.open(stream) as pdf:
            if pdf.is_encrypted:
                raise MarkingError("the PDF is encrypted; it cannot be stamped")
            if len(pdf.pages) == 0:
                raise MarkingError("the PDF has no pages")
            forms: dict[tuple[float, float], pikepdf.Object] = {}
            line = _id_line(secret, text.view_id)
            for page in pdf.pages:
                width, height, matrix = _displayed(page)
                size = (round(width, 2), round(height, 2))
                if size not in forms:
                    forms[size] = overlay_form(pdf, text, secret, line, *size)
                name = page.add_resource(forms[size], Name.XObject, prefix="VaultStamp")
                page.contents_add(pdf.make_stream(b"q\n"), prepend=True)
                page.contents_add(pdf.make_stream(f"Q\nq {matrix} cm {name} Do Q\n".encode()))
            return _finish(pdf, text, secret)
    except pikepdf.PasswordError as exc:
        raise MarkingError("the PDF is encrypted; it cannot be stamped") from exc
    except MarkingError:
        raise
    except (pikepdf.PdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise MarkingError("the file is not a readable PDF") from exc


def images_to_stamped_pdf(pages: Sequence[Image.Image], text: StampText, secret: bytes) -> bytes:
    """A PDF with one page per image, each stamped and marked, plus the id text line and metadata.

    This is the stamped rendition of documents that are not PDFs: their pages, rendered to images
    NOMINAL_WIDTH pixels across, become pages at IMAGE_DPI. Pillow writes the images as JPEG q90
    streams (DCTDecode), which keeps the mark (it survives q75) at about half of PNG's size.
    """
    if not pages:
        raise MarkingError("there are no pages to put in the PDF")
    marked = [forensic.embed(stamp_page(page, text), text.view_id, secret) for page in pages]
    buffer = io.BytesIO()
    marked[0].save(buffer, "PDF", save_all=True, append_images=marked[1:], resolution=IMAGE_DPI, quality=90)
    buffer.seek(0)
    with pikepdf.Pdf.open(buffer) as pdf:
        font = helvetica(pdf)
        line = id_line_operators(_id_line(secret, text.view_id))
        for page in pdf.pages:
            name = page.add_resource(font, Name.Font, prefix="VaultId")
            page.contents_add(pdf.make_stream(line.replace("/F1", str(name), 1).encode("latin-1")))
        return _finish(pdf, text, secret)


@dataclass(frozen=True)
class PdfClaim:
    """A view id a PDF claims to carry, where the claim was found, and whether its MAC checked out."""

    view_id: int
    where: str  # "metadata" or "text"
    verified: bool


def metadata_claim(pdf: pikepdf.Pdf, secret: bytes) -> PdfClaim | None:
    """The id claimed by the document information dictionary, if any."""
    try:
        info = pdf.trailer.get(Name.Info)
        if not isinstance(info, pikepdf.Dictionary):
            return None
        raw_id, raw_mac = str(info.get(Name(META_ID), "")), str(info.get(Name(META_MAC), ""))
    except (pikepdf.PdfError, ValueError, TypeError):
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


