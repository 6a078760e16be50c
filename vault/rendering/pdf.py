"""PDF pages to images with PDFium (pypdfium2), one page at a time.

PDFium is not thread-safe, so every call into it holds `PDFIUM_LOCK` (`vault.core.pdfium_calls`), a
process-wide lock shared with tracing. That is
the simpler of the two safe designs: a worker process per render would let two uploads render in
parallel inside one web worker, but the web server already runs several worker processes, an upload
renders once, and a text page takes about 8 ms. The lock is held per page, not per document, so two
uploads in one process interleave page by page instead of one waiting for the other's 500 pages.

Memory stays flat whatever the page count: a page is loaded, drawn into a bitmap, copied out as a
Pillow image and closed before the next one is touched.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

import pikepdf
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from flask_babel import lazy_gettext as _l

from vault.core.pdf_streams import first_page_over, write_as_read
from vault.core.pdfium_calls import PDFIUM_LOCK, DrawingAbandoned, DrawingTime, draw_page
from vault.rendering.errors import (
    DrawingTooLarge,
    EncryptedDocument,
    ImageTooLarge,
    MalformedDocument,
    RenditionFailed,
    TooManyPages,
)
from vault.rendering.limits import Limits
from vault.rendering.page import Page

# FPDF_ERR_PASSWORD: PDFium's code for "this document needs a password".
_ERR_PASSWORD = 4


def _page_pixels(width_pt: float, height_pt: float, limits: Limits) -> tuple[int, int]:
    if not (width_pt > 0 and height_pt > 0 and math.isfinite(width_pt) and math.isfinite(height_pt)):
        raise MalformedDocument(_l("The PDF has a page without a usable size."))
    return limits.page_width, math.ceil(height_pt * limits.page_width / width_pt)


class PdfPages:
    """An open PDF whose pages are drawn on demand.

    Opening checks everything that can be checked without drawing: that PDFium can parse the file, that
    it is not encrypted, what each page draws, the page count, and each page's size at the rendered width.
    So a refusal comes before the first page is stored, not at page 400.

    Encryption: any document with an encryption dictionary is refused, including one that opens without
    a password because it has only an owner password. PDFium ignores the permission bits such a file
    carries (no printing, no copying), and honouring half of a protection scheme is worse than refusing
    it with a message the uploader can act on (save an unprotected copy).

    The pages drawn are those qpdf measured (`measured_copy`), never the file as uploaded.
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, limits: Limits) -> None:
        self._limits = limits
        _refuse_encrypted(source)
        self._copy: BinaryIO | None = measured_copy(source, limits.max_page_unpacked)
        try:
            with PDFIUM_LOCK:
                try:
                    document = pdfium.PdfDocument(self._copy, autoclose=False)
                except pdfium.PdfiumError:
                    raise MalformedDocument(_l("The file is not a readable PDF.")) from None
                try:
                    # Filled-in form fields are part of what the reader sees; PDFium draws them only when
                    # forms are initialised before any page is loaded. This PDFium has no JavaScript engine.
                    document.init_forms()
                    count = len(document)
                    if count == 0:
                        raise MalformedDocument(_l("The PDF has no pages."))
                    if count > limits.max_pages:
                        raise TooManyPages(
                            _l("The file has %(count)s pages; at most %(max_pages)s can be shown.",
                               count=count, max_pages=limits.max_pages)
                        )
                    for index in range(count):
                        width, height = _page_pixels(*document.get_page_size(index), limits)
                        if width * height > limits.max_page_pixels:
                            raise ImageTooLarge(
                                _l("Page %(value)s of the PDF is too long to show (%(width)s × %(height)s pixels).",
                                   value=index + 1, width=width, height=height)
                            )
                except pdfium.PdfiumError:
                    document.close()
                    raise MalformedDocument(_l("The PDF's page tree cannot be read.")) from None
                except BaseException:
                    document.close()
                    raise
        except BaseException:
            self._copy.close()
            raise
        self._document: pdfium.PdfDocument | None = document
        self._time = DrawingTime(limits.page_draw_seconds, limits.draw_seconds)
        self.page_count = count

    def pages(self, first_number: int = 1) -> Iterator[Page]:
        """Draw the pages in order, at :attr:`Limits.page_width`, numbering them from ``first_number``."""
        for index in range(self.page_count):
            yield Page(first_number + index, self.render_page(index))

    def render_page(self, index: int):  # -> PIL.Image.Image, RGB
        """Draw one page (0-based ``index``) as an RGB image, exactly :attr:`Limits.page_width` wide.

        Drawn progressively, so that a page that takes longer than the limits allow is abandoned
        (:attr:`Limits.page_draw_seconds`, :attr:`Limits.draw_seconds` for all pages together).
        """
        document = self._document
        if document is None:
            raise RenditionFailed("The PDF was closed before all its pages were drawn.")
        deadline = self._time.deadline()
        with PDFIUM_LOCK:
            try:
                page = document[index]
            except pdfium.PdfiumError as exc:
                raise RenditionFailed(f"Page {index + 1} of the PDF could not be loaded.") from exc
            try:
                width_pt, height_pt = page.get_size()
                width, height = _page_pixels(width_pt, height_pt, self._limits)
                if width * height > self._limits.max_page_pixels:
                    raise ImageTooLarge(_l("Page %(value)s of the PDF is too long to show.", value=index + 1))
                # scale = width / width_pt, not 150/72: PDFium rounds the pixel size up, and 150/72 gives
                # 1241 px for A4.
                image = draw_page(page, width / width_pt, deadline)
            except DrawingAbandoned as exc:
                raise RenditionFailed(f"Page {index + 1} of the PDF {exc}.") from None
            except pdfium.PdfiumError as exc:
                raise RenditionFailed(f"Page {index + 1} of the PDF could not be drawn.") from exc
            finally:
                page.close()
        return image

    def close(self) -> None:
        if self._document is not None:
            with PDFIUM_LOCK:
                self._document.close()
            self._document = None
        if self._copy is not None:
            self._copy.close()
            self._copy = None


def _refuse_encrypted(source: str | os.PathLike[str] | BinaryIO) -> None:
    """Refuse a PDF that PDFium cannot open, or that has any encryption (see `PdfPages`)."""
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(source, password=None, autoclose=False)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _ERR_PASSWORD:
                raise EncryptedDocument(
                    _l("The PDF is protected with a password. Upload a copy saved without a password.")
                ) from None
            raise MalformedDocument(_l("The file is not a readable PDF.")) from None
        try:
            if pdfium_c.FPDF_GetSecurityHandlerRevision(document) != -1:
                raise EncryptedDocument(
                    _l("The PDF is encrypted (it restricts printing or copying). "
                    "Upload a copy saved without protection.")
                )
        finally:
            document.close()
    if not isinstance(source, str | os.PathLike):
        source.seek(0)


def measured_copy(source: str | os.PathLike[str] | BinaryIO, limit: int) -> BinaryIO:
    """The PDF as qpdf reads it, in a temporary file, once qpdf has measured what each of its pages draws.

    A few kilobytes of deflate unpack to gigabytes, and PDFium holds what it unpacks while it draws: a
    612 KB file whose page is two streams of 200 MB raised a worker's peak memory by 802 MiB. So before any
    page is drawn, qpdf measures what each page draws (`vault.core.pdf_streams.first_page_over`).

    PDFium then draws this copy, not the file (`vault.core.pdf_streams.write_as_read`): it reads a damaged
    page tree otherwise than qpdf, and drew a page qpdf had never measured.

    Raises:
        DrawingTooLarge: a page draws more than ``limit``.
        MalformedDocument: qpdf cannot read the file (so it cannot be measured).
    """
    if not isinstance(source, str | os.PathLike):
        source.seek(0)
    copy = tempfile.TemporaryFile(prefix="vault-measured-")  # noqa: SIM115 - closed by the caller, or below
    try:
        with pikepdf.open(source) as pdf:
            number = first_page_over(pdf, limit)
            if number is None:
                write_as_read(pdf, copy)
    except (pikepdf.PdfError, ValueError, KeyError, TypeError, OSError):
        copy.close()
        raise MalformedDocument(_l("The file is not a readable PDF.")) from None
    except RecursionError:
        copy.close()
        raise MalformedDocument(_l("The PDF's objects are nested too deeply to be read.")) from None
    except BaseException:
        copy.close()
        raise
    finally:
        if not isinstance(source, str | os.PathLike):
            source.seek(0)
    if number is not None:
        copy.close()
        raise DrawingTooLarge(_l("What page %(value)s of the PDF draws unpacks to more than %(limit)s MiB: it is "
                                 "not drawn.", value=number, limit=limit >> 20))
    copy.seek(0)
    return copy
