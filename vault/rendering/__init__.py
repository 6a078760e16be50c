"""The rendition engine of the secure viewer: a file version in, page images out, once, at upload.

The public interface is :func:`render` and what it returns (see :mod:`vault.rendering.engine` for the
contract), :class:`IsolatedRenderer`, which runs it in a child process held to memory and time limits
(what the upload uses), the :class:`Limits` they are held to, the stored page encodings
(:data:`PAGE_MEDIA_TYPES`), and the errors. Nothing here touches storage, the database or requests; the
upload service drives it.
"""

from vault.rendering.engine import DEFAULT_LIMITS, NoPreview, PageRenderer, Renderer, Rendition, render
from vault.rendering.errors import (
    ConversionTimeout,
    DrawingTooLarge,
    EncryptedDocument,
    ImageTooLarge,
    MalformedDocument,
    RenditionError,
    RenditionFailed,
    RenditionRefused,
    TooManyPages,
)
from vault.rendering.isolated import IsolatedRenderer
from vault.rendering.limits import Limits
from vault.rendering.page import COLOUR_MEDIA_TYPE, GREY_MEDIA_TYPE, PAGE_MEDIA_TYPES, Page, encode_page

__all__ = [
    "COLOUR_MEDIA_TYPE",
    "DEFAULT_LIMITS",
    "GREY_MEDIA_TYPE",
    "PAGE_MEDIA_TYPES",
    "ConversionTimeout",
    "DrawingTooLarge",
    "EncryptedDocument",
    "ImageTooLarge",
    "IsolatedRenderer",
    "Limits",
    "MalformedDocument",
    "NoPreview",
    "Page",
    "PageRenderer",
    "Renderer",
    "Rendition",
    "RenditionError",
    "RenditionFailed",
    "RenditionRefused",
    "TooManyPages",
    "encode_page",
    "render",
]
