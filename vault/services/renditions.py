"""Renditions at upload: each version is turned once into page images, stored encrypted beside it.

The upload service calls :func:`store_rendition` right after a version's ciphertext and row are written,
with the plaintext it kept aside while encrypting (a private, already unlinked temporary file). Pages
are rendered, encrypted and written one at a time, so memory stays flat in the page count.

Each page is a derived object under the *version's* data key (no key of its own), so a master key
rotation, which re-wraps data keys, covers pages with nothing more to do, and deleting a version's key
makes its pages unreadable with it. A page's ciphertext is bound (associated data) to the document id,
the version number and the page number: a page object moved to another page's key does not decrypt.

Outcomes:

* pages stored: the version is ``preview = "ready"`` with its ``page_count``, one ``version_pages`` row
  per page (size, pixel size, media type, SHA-256 of the stored encoding);
* the renderer has no preview for the file (unknown type, converter failure or timeout, a page that
  failed to draw): the version is kept, ``preview = "none"`` with the reason; pages already written
  are deleted;
* the file is malformed for its type (a PDF PDFium cannot parse): kept, ``preview = "none"``;
* the renderer refuses the file (encrypted PDF, decompression bomb, too many pages, malformed): a
  :class:`RenditionRefusedError` (400) propagates, and the upload deletes everything it wrote.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from typing import BinaryIO

from sqlalchemy.orm import Session

from crypto import EncryptingReader, associated_data, decrypt_stream
from vault.core.errors import ServiceError
from vault.models import PREVIEW_NONE, PREVIEW_READY, DocumentVersion, VersionPage
from vault.rendering import DEFAULT_LIMITS, MalformedDocument, PageRenderer, Renderer, RenditionFailed, RenditionRefused
from vault.runtime import Runtime
from vault.services.objects import discard_object

log = logging.getLogger(__name__)

PAGES_SUFFIX = "-pages/"

_renderer: Renderer = PageRenderer(DEFAULT_LIMITS)


class RenditionRefusedError(ServiceError):
    """The viewer will not handle the file (see `vault.rendering.errors`); nothing of the upload is kept."""

    status = 400


def set_renderer(renderer: Renderer) -> Renderer:
    """Use another renderer (a deployment's limits); returns the previous one."""
    global _renderer
    previous, _renderer = _renderer, renderer
    return previous


def page_context(document_id: int, version_number: int, page_number: int) -> bytes:
    """The associated data of one page's ciphertext: the version's, plus the page number."""
    return associated_data(document_id, version_number) + b":page:%d" % page_number


def page_key(version_object_key: str, page_number: int) -> str:
    """Where page ``page_number`` of the version stored at ``version_object_key`` lives."""
    return f"{version_object_key}{PAGES_SUFFIX}{page_number}"


def store_rendition(
    rt: Runtime,
    session: Session,
    version: DocumentVersion,
    plaintext: BinaryIO,
    dek: bytes,
    track: Callable[[str], None],
) -> None:
    """Render ``plaintext`` (the version's bytes, seekable) and store its pages; see the module docstring.

    ``track`` is called with every object key before it is written, so the caller deletes it if the
    upload is abandoned later.

    Raises:
        RenditionRefusedError: the file is refused; pages written so far are deleted by the caller's
            clean-up (they were tracked).
        storage.StorageError: the store failed.
    """
    written: list[str] = []
    try:
        rendition = _renderer.render(plaintext, version.content_type, version.original_name)
    except MalformedDocument as exc:
        # Not dangerous, only unreadable to the viewer: kept, with no preview (as for an unknown type).
        version.preview, version.preview_reason, version.page_count = PREVIEW_NONE, exc.message[:300], 0
        return
    except RenditionRefused as exc:
        raise RenditionRefusedError(exc.code, exc.message) from None
    with rendition:
        if not rendition.has_preview:
            version.preview, version.preview_reason, version.page_count = PREVIEW_NONE, _reason(rendition), 0
            return
        try:
            for page in rendition.pages():
                data = page.encode()
                key = page_key(version.object_key, page.number)
                track(key)
                written.append(key)
                context = page_context(version.document_id, version.number, page.number)
                rt.store.put(key, EncryptingReader(dek, context, io.BytesIO(data)), length=None)
                session.add(VersionPage(
                    version_id=version.id, number=page.number, object_key=key, media_type=page.media_type,
                    width=page.width, height=page.height, size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                ))
        except RenditionFailed as exc:
            log.info("version %s: a page failed to draw: %s", version.id, exc.message)
            for item in list(session.new):
                if isinstance(item, VersionPage) and item.version_id == version.id:
                    session.expunge(item)
            _discard(rt, written)
            version.preview, version.preview_reason, version.page_count = PREVIEW_NONE, exc.message[:300], 0
            return
    version.preview, version.preview_reason, version.page_count = PREVIEW_READY, None, len(written)
    session.flush()


def _reason(rendition: object) -> str:
    return str(getattr(rendition, "reason", "There is no preview for this file."))[:300]


def _discard(rt: Runtime, keys: list[str]) -> None:
    for key in keys:
        discard_object(rt.store, key)


def read_page(rt: Runtime, dek: bytes, document_id: int, version_number: int, page: VersionPage | str,
              page_number: int) -> bytes:
    """The stored (lossless) encoding of one page, decrypted and authenticated.

    Raises:
        crypto.DecryptionError: the object does not authenticate (swapped, altered, wrong key).
        storage.ObjectNotFound, storage.StorageError: it cannot be read.
    """
    key = page if isinstance(page, str) else page.object_key
    context = page_context(document_id, version_number, page_number)
    with rt.store.open(key) as source:
        return b"".join(decrypt_stream(dek, context, source))
