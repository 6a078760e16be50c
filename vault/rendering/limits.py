"""The bounds every rendition stays within, in one dataclass so a deployment can tighten them."""

from __future__ import annotations

from dataclasses import dataclass

from vault.core.pdf_streams import MAX_PAGE_DRAWING


@dataclass(frozen=True)
class Limits:
    """Limits on what one file version may cost to render.

    Attributes:
        max_pages: pages in one rendition; a longer document is refused (:class:`TooManyPages`).
        max_image_pixels: pixels in one source image (width × height) before it is decoded; above it the
            image is refused as a decompression bomb. 100 MP covers a 10,000 × 10,000 scan.
        max_page_pixels: pixels in one rendered page. An A4 page at the page width is 1240 × 1754 =
            2.2 MP; the default leaves room for A3 and long slides but refuses a PDF page sized to
            render as a 1240 × 1,000,000 strip.
        page_width: width in pixels of a rendered page. 1240 px is A4 at 150 dpi, readable on screen and
            small enough to stamp and encode per delivery in tens of milliseconds.
        slice_height: an image taller than this (after scaling to the page width) is cut into slices of
            this height, so a long screenshot becomes several pages rather than one huge one.
        convert_timeout: seconds the office converter may run before its whole process group is killed.
        convert_memory: bytes of data (heap) the office converter and its helpers may each allocate
            (``RLIMIT_DATA``). A converted document needs a few hundred MiB; a .docx of 337 KB whose text
            unpacks to 100 MB grew LibreOffice by about 75 MiB a second, to 3.3 GB before the timeout
            stopped it. Past the limit the conversion fails: no preview, the file kept.
        max_text_bytes: text, Markdown and CSV files larger than this are not laid out (no preview):
            layout is in memory, and 2 MiB of plain text is already some 500 pages.
        max_table_rows: rows of a CSV file laid out; the rest are left out with a note saying so. A
            table row costs about 15 ms of layout and drawing, so 10,000 rows take a few minutes.
        max_page_unpacked: bytes that what one PDF page draws (its content, forms, patterns, fonts,
            annotations' looks, and its images at their declared size) may unpack to; measured before
            PDFium draws it, which holds what it unpacks. Drawing operators count sixteen times their
            size (`vault.core.pdf_streams.CONTENT_WEIGHT`). 256 MiB covers two full-page colour scans at
            600 dpi, or 16 MiB of operators.
        page_draw_seconds: seconds PDFium may spend drawing one PDF page. Size is no measure of time: a
            page of 1 MB of content (2 KB deflated) filling a large rectangle 55,000 times took 44 s,
            holding the lock every PDF drawing in the process waits on. Past it the page is abandoned
            (checked every hundred objects drawn): no preview, the file kept.
        draw_seconds: seconds the drawing of all a PDF's pages may take together (a normal page takes
            about 20 ms, so 2,000 pages fit), so that many slow pages cannot add up to hours.
        render_memory: bytes of data (heap) the process drawing a file may allocate (``RLIMIT_DATA``; see
            `vault.rendering.isolated`). The limits above bound what we foresaw; this bounds the rest.
            Past it the drawing fails: no preview, the file kept.
        render_seconds: seconds the process drawing a file may run in all, conversion, layout and drawing
            included (a CSV of 10,000 rows takes a few minutes); past them it is killed: no preview, the
            file kept. It must leave the office conversion its own time.
    """

    max_pages: int = 2000
    max_image_pixels: int = 100_000_000
    max_page_pixels: int = 12_000_000
    page_width: int = 1240
    slice_height: int = 1754
    convert_timeout: float = 60.0
    convert_memory: int = 2 * 1024 * 1024 * 1024
    max_text_bytes: int = 2 * 1024 * 1024
    max_table_rows: int = 10_000
    max_page_unpacked: int = MAX_PAGE_DRAWING
    page_draw_seconds: float = 10.0
    draw_seconds: float = 120.0
    render_memory: int = 2 * 1024 * 1024 * 1024
    render_seconds: float = 600.0

    def __post_init__(self) -> None:
        for name in ("max_pages", "max_image_pixels", "max_page_pixels", "page_width", "slice_height",
                     "max_text_bytes", "max_table_rows", "max_page_unpacked", "convert_memory", "render_memory"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        for name in ("convert_timeout", "page_draw_seconds", "draw_seconds", "render_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        if self.render_seconds <= self.convert_timeout:
            raise ValueError("Limits.render_seconds must leave the office conversion its convert_timeout")
        if self.page_width * self.slice_height > self.max_page_pixels:
            raise ValueError("Limits.page_width × slice_height must fit within max_page_pixels")
