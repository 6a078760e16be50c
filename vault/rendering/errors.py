"""What can go wrong when a file version is turned into page images, as exceptions with stable codes.

Two families, because the upload treats them differently:

* :class:`RenditionRefused`: the file is one the viewer will not handle safely (a password-protected or
  malformed PDF, a decompression bomb, too many pages). The message says why in words a person can act
  on, and ``code`` is a stable string for the API and the audit log.
* :class:`RenditionFailed`: the file looked acceptable but could not be turned into pages (the office
  converter crashed or ran out of time, a page failed to draw). The upload keeps the file and marks it
  "no preview"; ``render`` itself already turns such failures into a :class:`~vault.rendering.NoPreview`
  outcome, so this class only reaches a caller from the middle of ``Rendition.pages()``.
"""

from __future__ import annotations


class RenditionError(Exception):
    """Base class of every rendering error; ``code`` is stable, the message is for people."""

    code = "rendition_error"

    def __init__(self, message: object) -> None:
        super().__init__(message)
        self._message = message  # may be a lazy translation, put into words when read

    @property
    def message(self) -> str:
        return str(self._message)

    def __str__(self) -> str:
        return self.message


class RenditionRefused(RenditionError):
    """The viewer will not render this file; the upload should say so to the person who sent it."""

    code = "rendition_refused"


class EncryptedDocument(RenditionRefused):
    """The PDF carries an encryption dictionary: with a user password or only an owner password."""

    code = "encrypted_document"


class MalformedDocument(RenditionRefused):
    """The file claims a format it does not follow (a PDF PDFium cannot parse, an image Pillow cannot)."""

    code = "malformed_document"


class TooManyPages(RenditionRefused):
    """More pages than :attr:`Limits.max_pages`."""

    code = "too_many_pages"


class ImageTooLarge(RenditionRefused):
    """An image or a page would decode to more pixels than the limits allow: a decompression bomb."""

    code = "image_too_large"


class DrawingTooLarge(RenditionRefused):
    """What a page draws would unpack to more than :attr:`Limits.max_page_unpacked`: a decompression bomb
    in the page's content, its forms, images or fonts."""

    code = "drawing_too_large"


class RenditionFailed(RenditionError):
    """The file could not be turned into pages; it is kept, marked as having no preview."""

    code = "rendition_failed"


class DrawingMisbehaved(RenditionFailed):
    """The process drawing the pages sent what a drawing never sends (`vault.core.forked.ForkMisbehaved`):
    a file built to take over the reader is one explanation, so the upload raises an alert on its sender."""

    code = "drawing_misbehaved"


class ConversionTimeout(RenditionFailed):
    """The office converter did not finish within :attr:`Limits.convert_timeout`; it was killed."""

    code = "conversion_timeout"
