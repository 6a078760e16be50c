"""``render()``: one file version in, a :class:`Rendition` of page images out.

This is the whole interface the upload uses::

    with render(plaintext, media_type, filename, limits) as rendition:
        if not rendition.has_preview:
            ...  # keep the file, mark it "no preview" with rendition.reason / rendition.code
        for page in rendition.pages():  # one at a time; memory stays flat
            store(page.number, page.encode(), page.media_type)  # lossless PNG or WebP, width × height

``render`` raises a :class:`RenditionRefused` subclass for a file the viewer will not handle (encrypted
or malformed PDF, decompression bomb, too many pages). Everything else that stops a preview (an unknown
type, a converter crash or timeout, a missing font) is returned as a :class:`NoPreview`. ``pages()`` can
still raise :class:`RenditionFailed` if one page fails to draw; the upload then drops the pages stored so
far and marks the file "no preview".

Work done by ``render`` itself: parsing and every size check, and for office documents, text, Markdown
and CSV the conversion to an intermediate PDF. So ``page_count`` is exact and cheap once ``render``
returns, and refusals come before any page is drawn.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, runtime_checkable

from flask_babel import lazy_gettext as _l

from vault.rendering import kinds
from vault.rendering.csv_layout import csv_to_pdf
from vault.rendering.errors import MalformedDocument, RenditionFailed
from vault.rendering.images import ImagePages
from vault.rendering.layout import decode_text, looks_binary
from vault.rendering.limits import Limits
from vault.rendering.markdown_layout import markdown_to_pdf
from vault.rendering.office import FILTERS, convert_to_pdf
from vault.rendering.page import Page
from vault.rendering.pdf import PdfPages
from vault.rendering.text_layout import text_to_pdf

log = logging.getLogger(__name__)

Source = str | os.PathLike[str] | BinaryIO
DEFAULT_LIMITS = Limits()

# ZIP local-file-header magic: every OOXML and ODF document starts with it.
_ZIP_MAGIC = b"PK\x03\x04"


class _PageSource(Protocol):
    page_count: int

    def pages(self) -> Iterator[Page]: ...

    def close(self) -> None: ...


class Rendition:
    """The pages of one file version, drawn on demand. Use as a context manager, or call ``close()``.

    Attributes:
        kind: which renderer handled the file ("pdf", "image", "text", "markdown", "csv", "docx", ...).
        page_count: how many pages ``pages()`` will yield; known without drawing any.
    """

    has_preview = True

    def __init__(self, kind: str, source: _PageSource, cleanup: list[object] | None = None) -> None:
        self.kind = kind
        self._source = source
        self._cleanup = cleanup or []
        self.page_count: int = source.page_count

    def pages(self) -> Iterator[Page]:
        """Yield every page in order, each an RGB image :attr:`Limits.page_width` pixels wide."""
        return self._source.pages()

    def close(self) -> None:
        """Release the document, temporary files and folders; safe to call twice."""
        self._source.close()
        for item in reversed(self._cleanup):
            if isinstance(item, Path):
                shutil.rmtree(item, ignore_errors=True)
            elif hasattr(item, "close"):
                item.close()
        self._cleanup.clear()

    def __enter__(self) -> Rendition:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class NoPreview(Rendition):
    """The outcome for a file that is kept but cannot be shown: no pages, a stable code and a reason.

    Attributes:
        code: stable identifier ("unsupported_type", "conversion_timeout", "rendition_failed", ...).
        reason: a sentence for the person who uploaded the file.
    """

    has_preview = False

    def __init__(self, kind: str | None, code: str, reason: str) -> None:
        self.kind = kind or "unknown"
        self.code = code
        self.reason = reason
        self.page_count = 0

    def pages(self) -> Iterator[Page]:
        return iter(())

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"NoPreview(kind={self.kind!r}, code={self.code!r}, reason={self.reason!r})"


def render(source: Source, media_type: str, filename: str, limits: Limits = DEFAULT_LIMITS) -> Rendition:
    """Prepare the pages of one file version.

    Args:
        source: a path, or a seekable binary file. A file must stay open until the rendition is closed
            (PDF and image pages are read from it lazily); it is read from its start.
        media_type: the declared media type; a generic one (``application/octet-stream``) defers to
            ``filename``'s extension.
        filename: the name the file was uploaded with; only its extension is used.
        limits: the bounds to hold the rendition to.

    Returns:
        A :class:`Rendition`, or a :class:`NoPreview` (``has_preview`` is False) for a type the viewer
        cannot show or a file whose conversion failed.

    Raises:
        RenditionRefused: a subclass naming why the viewer refuses the file.
    """
    kind = kinds.kind_of(media_type, filename)
    if kind is None:
        return NoPreview(None, "unsupported_type", "There is no preview for this type of file.")
    if not isinstance(source, str | os.PathLike):
        source.seek(0)
    try:
        if kind == kinds.PDF:
            return Rendition(kind, PdfPages(source, limits))
        if kind == kinds.IMAGE:
            return Rendition(kind, ImagePages(source, limits))
        if kind in (kinds.TEXT, kinds.MARKDOWN, kinds.CSV):
            return _render_text(kind, source, filename, limits)
        return _render_office(kind, source, limits)
    except RenditionFailed as exc:
        log.info("no preview for a %s file: %s", kind, exc.message)
        return NoPreview(kind, exc.code, exc.message)


def _read_limited(source: Source, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of the source, or None if it holds more."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            data = handle.read(limit + 1)
    else:
        data = source.read(limit + 1)
    return None if len(data) > limit else data


_LAYOUTS = {kinds.TEXT: text_to_pdf, kinds.MARKDOWN: markdown_to_pdf}


def _render_text(kind: str, source: Source, filename: str, limits: Limits) -> Rendition:
    data = _read_limited(source, limits.max_text_bytes)
    if data is None:
        raise RenditionFailed(
            f"The text file is larger than {_size(limits.max_text_bytes)}, too long to lay out."
        )
    if looks_binary(data):
        raise RenditionFailed("The file is not text.")
    laid_out = tempfile.TemporaryFile(prefix="vault-layout-")  # noqa: SIM115 - the rendition closes it
    try:
        text = decode_text(data)
        if kind == kinds.CSV:
            csv_to_pdf(text, laid_out, _title(filename), max_rows=limits.max_table_rows)
        else:
            _LAYOUTS[kind](text, laid_out, _title(filename))
        return Rendition(kind, PdfPages(laid_out, limits), cleanup=[laid_out])
    except BaseException:
        laid_out.close()
        raise


def _render_office(kind: str, source: Source, limits: Limits) -> Rendition:
    workdir = Path(tempfile.mkdtemp(prefix="vault-office-"))
    try:
        extension, _ = FILTERS[kind]
        document = workdir / f"document{extension}"
        with open(document, "xb") as out:
            if isinstance(source, str | os.PathLike):
                with open(source, "rb") as handle:
                    shutil.copyfileobj(handle, out)
            else:
                shutil.copyfileobj(source, out)
        with open(document, "rb") as handle:
            if handle.read(4) != _ZIP_MAGIC:
                raise MalformedDocument(_l("The file is not a readable office document."))
        pdf_path = convert_to_pdf(document, kind, workdir, limits.convert_timeout, limits.convert_memory)
        return Rendition(kind, PdfPages(pdf_path, limits), cleanup=[workdir])
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _size(count: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def _title(filename: str) -> str:
    """The PDF title of a laid-out file: the upload's base name (it never leaves the process)."""
    return os.path.basename(filename.replace("\\", "/"))[:200]


@runtime_checkable
class Renderer(Protocol):
    """What the upload service depends on: one method, so a deployment's limits are bound once."""

    def render(self, source: Source, media_type: str, filename: str) -> Rendition: ...


class PageRenderer:
    """The renderer of this package, holding the :class:`Limits` from the configuration."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def render(self, source: Source, media_type: str, filename: str) -> Rendition:
        """See :func:`render`."""
        return render(source, media_type, filename, self.limits)
