"""Tracing a leaked copy back to the view that produced it.

Given a file found outside the company (a PDF, or a PNG, JPEG or WebP image: a screenshot, a photo
of a screen, a page of a stamped copy), :func:`trace` reports the view id it carries and how it was
found, trying the cheapest trustworthy evidence first:

1. PDF metadata (``/VaultViewId`` with its MAC);
2. the invisible id line in the PDF's text;
3. the forensic mark in the pixels: of the image itself, or of each PDF page rendered at the nominal
   width, stopping at the first page that decodes.

A claim whose MAC does not verify is never reported as the answer; it is kept in
``TraceResult.forged`` so an investigator sees that someone tried to plant an id.

A leaked file is whatever the person who leaked it made it, so the service traces in a fork of the worker
held to a memory cap and a time limit (:func:`trace_apart`, see `vault.core.forked`): PDFium draws an
annotation's look or a form field in one call that no deadline interrupts.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field

import pikepdf
import pypdfium2
from PIL import Image, UnidentifiedImageError

from vault.core.forked import ForkDied, Forked, ForkTimedOut, Send
from vault.core.pdf_streams import MAX_PAGE_DRAWING, first_page_over, write_as_read
from vault.core.pdfium_calls import PDFIUM_LOCK, DrawingAbandoned, DrawingTime, draw_page
from vault.marking import forensic
from vault.marking.errors import MarkingError
from vault.marking.pdf import PdfClaim, metadata_claim, text_claims

MAX_TRACE_PAGES = 50
"""Pages rendered when looking for the image mark in a PDF; a leak of the first pages is enough."""
PAGE_DRAW_SECONDS = 10.0
"""Seconds one page of a suspect PDF may take to draw (see `vault.core.pdfium_calls`)."""
DRAW_SECONDS = 60.0
"""Seconds the drawing of a suspect PDF's pages may take together."""
TRACE_SECONDS = DRAW_SECONDS + 60.0
"""Seconds a trace in a fork (`trace_apart`) may take in all: the drawing's time and some for the rest."""
TRACE_MEMORY = 2 * 1024 * 1024 * 1024
"""Bytes of data (heap) a trace in a fork may allocate (``RLIMIT_DATA``)."""
MAX_IMAGE_PIXELS = 64_000_000
"""Larger images are refused before decoding: a phone photo is 12-50 megapixels, a bomb far more."""
_IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}


@dataclass(frozen=True)
class TraceResult:
    """The view id found, how (``metadata``, ``text``, ``image`` or ``pdf-render``; ``image-v1`` or
    ``pdf-render-v1`` for a version 1 pixel mark, which anyone who held such a copy can forge: a lead, not
    proof) and on which page."""

    view_id: int
    method: str
    page: int | None = None
    forged: tuple[int, ...] = field(default=())


def _method(found_in: str, mark: forensic.Mark) -> str:
    """How the id was found; ``-v1`` marks the forgeable version 1 pixel mark (see `forensic`)."""
    return found_in + "-v1" if mark.legacy else found_in


def _trace_image(data: bytes, secret: bytes) -> TraceResult | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in _IMAGE_FORMATS:
                raise MarkingError(f"unsupported image format {image.format}; expected PNG, JPEG or WebP")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise MarkingError(f"the image is too large to trace ({image.width} x {image.height} pixels)")
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise MarkingError("the file is neither a PDF nor a readable PNG, JPEG or WebP image") from exc
    mark = forensic.read_mark(rgb, secret)
    return None if mark is None else TraceResult(mark.view_id, _method("image", mark))


def _trace_pdf(data: bytes, secret: bytes) -> TraceResult | None:
    claims: list[PdfClaim] = []
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            meta = None if pdf.is_encrypted else metadata_claim(pdf, secret)
            # Encrypted but opened (no user password): PDFium opens it too, so it is measured as well.
            over = first_page_over(pdf, MAX_PAGE_DRAWING)
            if over is None:
                # PDFium reads qpdf's copy, not the file: it could read pages qpdf never measured.
                copy = io.BytesIO()
                write_as_read(pdf, copy)
        if meta is not None:
            claims.append(meta)
    except (pikepdf.PdfError, ValueError, KeyError, TypeError, OSError):
        # PDFium reads some files qpdf cannot, but it would read them unmeasured (an upload refuses them too).
        raise MarkingError("the file is not a PDF qpdf can read, so what its pages draw cannot be measured"
                           ) from None
    except RecursionError:
        raise MarkingError("the PDF's objects are nested too deeply to be read") from None
    if over is not None:
        # PDFium would hold all of it to read the page's text or draw it (see vault.core.pdf_streams).
        if meta is not None and meta.verified:
            return TraceResult(meta.view_id, meta.where)
        raise MarkingError(f"what page {over} of the PDF draws unpacks to more than {MAX_PAGE_DRAWING >> 20} MiB; "
                           "only its metadata was read, and it names no view")
    with PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(copy.getvalue())
        except pypdfium2.PdfiumError as exc:
            raise MarkingError("the file is not a readable PDF") from exc
    try:
        with PDFIUM_LOCK:
            count = len(document)
        texts = []
        for index in range(count):
            with PDFIUM_LOCK:
                page = document[index]
                textpage = page.get_textpage()
                texts.append(textpage.get_text_range())
                textpage.close()
                page.close()
        claims.extend(text_claims(texts, secret))
        forged = tuple(sorted({c.view_id for c in claims if not c.verified}))
        for claim in claims:
            if claim.verified:
                return TraceResult(claim.view_id, claim.where, forged=forged)
        clock = DrawingTime(PAGE_DRAW_SECONDS, DRAW_SECONDS)
        for index in range(min(count, MAX_TRACE_PAGES)):
            deadline = clock.deadline()
            with PDFIUM_LOCK:
                page = document[index]
                try:
                    page_width, page_height = page.get_size()
                    if not 0.2 <= page_height / max(page_width, 1e-6) <= 5:
                        continue  # not page-like: rendering it at the nominal width could need gigapixels
                    # PDFium rounds the pixel width up: aim a hair below so the width is exactly nominal.
                    image = draw_page(page, (forensic.NOMINAL_WIDTH - 0.01) / page_width, deadline)
                except DrawingAbandoned as exc:
                    raise MarkingError(f"page {index + 1} of the PDF {exc}") from None
                finally:
                    page.close()
            mark = forensic.read_mark(image, secret)
            if mark is not None:
                return TraceResult(mark.view_id, _method("pdf-render", mark), page=index, forged=forged)
        return None
    except pypdfium2.PdfiumError as exc:
        raise MarkingError("a page of the PDF cannot be read") from exc
    finally:
        with PDFIUM_LOCK:
            document.close()


def trace(data: bytes, secret: bytes) -> TraceResult | None:
    """The view a leaked file came from, or None when it carries no id readable with ``secret``.

    Raises:
        MarkingError: the file is neither a PDF nor a PNG, JPEG or WebP image that can be read.
    """
    data = bytes(data)
    if data.lstrip()[:5] == b"%PDF-":
        return _trace_pdf(data, secret)
    return _trace_image(data, secret)


def trace_apart(data: bytes, secret: bytes, *, memory: int = TRACE_MEMORY, seconds: float = TRACE_SECONDS
                ) -> TraceResult | None:
    """:func:`trace`, run in a fork of this process held to ``memory`` bytes of data and ``seconds``.

    Raises:
        MarkingError: as `trace`, or the trace took too long, ran out of memory or failed.
    """
    with Forked(functools.partial(_trace_in_fork, bytes(data), secret), memory=memory, seconds=seconds,
                name="vault-trace", allowed=(TraceResult,)) as child:
        try:
            outcome = child.receive()
        except ForkTimedOut:
            raise MarkingError(f"tracing the file took longer than {seconds:g} s") from None
        except ForkDied:
            raise MarkingError("tracing the file ran out of memory or failed") from None
        child.close()  # it has said its last
    if outcome[0] == "refused":
        raise MarkingError(outcome[1])
    return outcome[1]  # type: ignore[no-any-return]


def _trace_in_fork(data: bytes, secret: bytes, send: Send) -> None:
    try:
        send(("found", trace(data, secret)))
    except MarkingError as exc:
        send(("refused", str(exc)))
