"""Calls into PDFium shared by the pages drawn at upload (`vault.rendering.pdf`) and tracing
(`vault.marking.trace`): its lock and a page drawn against a deadline.

PDFium is not thread-safe: every call into it, from any part of the product, holds `PDFIUM_LOCK`, one lock
per process. Tracing called PDFium without it, so a trace and an upload's drawing in two threads of one
worker could run inside PDFium at once.

Size is no measure of the time a page takes to draw: a page of 1 MB of content (2 KB deflated) filling a
large rectangle 55,000 times took 44 s, holding that lock all along. So pages are drawn progressively,
PDFium asking every hundred objects whether to pause, and abandoned past a deadline (`draw_page`).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

PDFIUM_LOCK = threading.RLock()


class DrawingTime:
    """The deadlines of a document's pages: each page gets ``page_seconds``, and all of them together
    ``total_seconds`` from when the first began, so that many slow pages cannot add up to hours."""

    def __init__(self, page_seconds: float, total_seconds: float) -> None:
        self.page_seconds, self.total_seconds = page_seconds, total_seconds
        self._started: float | None = None

    def deadline(self) -> float:
        """The `time.monotonic()` by which the page about to be drawn must be done."""
        now = time.monotonic()
        if self._started is None:
            self._started = now
        return min(now + self.page_seconds, self._started + self.total_seconds)


class DrawingAbandoned(Exception):
    """PDFium did not finish drawing a page: its deadline passed, or PDFium failed. The message completes
    "Page N of the PDF …"."""


def draw_page(page: pdfium.PdfPage, scale: float, deadline: float) -> Any:  # -> PIL.Image.Image, RGB
    """Draw ``page`` at ``scale`` as `PdfPage.render` does by default (BGR on white, annotations, then
    form fields when the document's forms are initialised), but progressively, and abandon it once
    `time.monotonic()` passes ``deadline``. Call with `PDFIUM_LOCK` held.

    Raises:
        DrawingAbandoned: the deadline passed, or PDFium failed.
    """
    width, height = math.ceil(page.get_width() * scale), math.ceil(page.get_height() * scale)
    bitmap = pdfium.PdfBitmap.new_native(width, height, pdfium_c.FPDFBitmap_BGR)
    try:
        bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
        pause = pdfium_c.IFSDK_PAUSE(version=1)
        # Kept referenced until the drawing is closed: PDFium calls it back.
        ask = type(pause.NeedToPauseNow)(lambda _pause: time.monotonic() > deadline)
        pause.NeedToPauseNow = ask
        arguments = (bitmap, page, 0, 0, width, height, 0, pdfium_c.FPDF_ANNOT)
        status = pdfium_c.FPDF_RenderPageBitmap_Start(*arguments, pause)
        while status == pdfium_c.FPDF_RENDER_TOBECONTINUED and time.monotonic() <= deadline:
            status = pdfium_c.FPDF_RenderPage_Continue(page, pause)
        pdfium_c.FPDF_RenderPage_Close(page)
        if status == pdfium_c.FPDF_RENDER_TOBECONTINUED:
            raise DrawingAbandoned("takes too long to draw")
        if status != pdfium_c.FPDF_RENDER_DONE:
            raise DrawingAbandoned("could not be drawn")
        if page.formenv:
            pdfium_c.FPDF_FFLDraw(page.formenv, *arguments)
        # to_pil() shares the bitmap's buffer; convert() makes an independent RGB copy.
        return bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()
