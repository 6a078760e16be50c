"""Renditions at upload: each version is turned once into page images, stored encrypted beside it.

The upload service draws the pages (`draw`) from the plaintext it received, before anything of the
upload is written, into a private spool; once the version's ciphertext and row are written it encrypts
and stores them (`store_drawing`). Pages are drawn and encoded one at a time into the spool, so memory
stays flat in the page count.

Each page is a derived object under the *version's* data key (no key of its own), so a master key
rotation, which re-wraps data keys, covers pages with nothing more to do, and deleting a version's key
makes its pages unreadable with it. A page's ciphertext is bound (associated data) to the document id,
the version number and the page number: a page object moved to another page's key does not decrypt.

Outcomes:

* pages stored: the version is ``preview = "ready"`` with its ``page_count``, one ``version_pages`` row
  per page (size, pixel size, media type, SHA-256 of the stored encoding);
* the renderer has no preview for the file (unknown type, converter failure or timeout, a page that
  failed to draw): the version is kept, ``preview = "none"`` with the reason; no page is written;
* the file is malformed for its type (a PDF PDFium cannot parse): kept, ``preview = "none"``;
* the renderer refuses the file (encrypted PDF, decompression bomb, too many pages, malformed): a
  :class:`RenditionRefusedError` (400) propagates before anything of the upload is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.orm import Session

from crypto import EncryptingReader, associated_data, decrypt_stream
from vault.core.errors import ServiceError
from vault.models import PREVIEW_NONE, PREVIEW_READY, DocumentVersion, VersionPage
from vault.rendering import (
    DEFAULT_LIMITS,
    IsolatedRenderer,
    MalformedDocument,
    Renderer,
    RenditionFailed,
    RenditionRefused,
)
from vault.runtime import Runtime

log = logging.getLogger(__name__)

PAGES_SUFFIX = "-pages/"
# Pages written to the store at once by one upload.
PAGE_WRITERS = 4

# Uploads are drawn in a child process held to memory and time limits (see vault.rendering.isolated).
_renderer: Renderer = IsolatedRenderer(DEFAULT_LIMITS)


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


@dataclass(frozen=True)
class DrawnPage:
    """One page drawn and encoded, waiting in the spool of its `Drawing` (at `offset`, `size` bytes)."""

    number: int
    media_type: str
    width: int
    height: int
    offset: int
    size: int
    sha256: str


class Drawing:
    """A version's pages, drawn before anything of the upload is written: encoded, in a private spool.

    Drawing is most of an upload's time (a 60-page PDF takes seconds), and the version's row, whose id
    the pages' encryption is bound to, cannot exist before its transaction starts. On SQLite a
    transaction that has written holds the database's one write lock until it ends, so drawing inside
    it made every other writer (every view, every sign-in) wait for the pages. The pages are therefore
    drawn first, into an unlinked temporary file (memory stays flat in the page count), and only
    encrypted and written once the row exists (`store_drawing`).

    Use as a context manager; `close()` drops the spool.
    """

    def __init__(self, *, preview: str, reason: str | None = None, code: str | None = None,
                 pages: list[DrawnPage] | None = None, spool: BinaryIO | None = None) -> None:
        self.preview = preview
        self.reason = reason
        self.code = code  # why there is no preview, as `vault.rendering` codes it
        self.pages = pages or []
        self._spool = spool

    def data(self, page: DrawnPage) -> bytes:
        """The encoded bytes of one page, read back from the spool."""
        assert self._spool is not None
        self._spool.seek(page.offset)
        return self._spool.read(page.size)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def __enter__(self) -> Drawing:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def draw(plaintext: BinaryIO, content_type: str, name: str) -> Drawing:
    """Render ``plaintext`` (a version's bytes, seekable) into a `Drawing`; see the module docstring.

    Raises:
        RenditionRefusedError: the file is refused; nothing was written anywhere.
    """
    try:
        rendition = _renderer.render(plaintext, content_type, name)
    except MalformedDocument as exc:
        # Not dangerous, only unreadable to the viewer: kept, with no preview (as for an unknown type).
        return Drawing(preview=PREVIEW_NONE, reason=exc.message[:300], code=exc.code)
    except RenditionRefused as exc:
        raise RenditionRefusedError(exc.code, exc.message) from None
    with rendition:
        if not rendition.has_preview:
            return Drawing(preview=PREVIEW_NONE, reason=_reason(rendition), code=getattr(rendition, "code", None))
        with contextlib.ExitStack() as owned:
            spool = owned.enter_context(tempfile.TemporaryFile(prefix="vault-pages-"))
            pages: list[DrawnPage] = []
            try:
                for page in rendition.pages():
                    data = page.encode()
                    pages.append(DrawnPage(number=page.number, media_type=page.media_type, width=page.width,
                                           height=page.height, offset=spool.tell(), size=len(data),
                                           sha256=hashlib.sha256(data).hexdigest()))
                    spool.write(data)
            except RenditionFailed as exc:
                log.info("%s: a page failed to draw: %s", name, exc.message)
                return Drawing(preview=PREVIEW_NONE, reason=exc.message[:300], code=exc.code)
            owned.pop_all()  # the spool is the drawing's now; it closes it
    return Drawing(preview=PREVIEW_READY, pages=pages, spool=spool)


def store_drawing(rt: Runtime, session: Session, version: DocumentVersion, drawing: Drawing, dek: bytes,
                  track: Callable[[str], None]) -> None:
    """Encrypt and write the drawn pages of ``version`` (its row flushed), and record the outcome on it.

    ``track`` is called with every object key before it is written, so the caller deletes it if the
    upload is abandoned later.

    Raises:
        storage.StorageError: the store failed; pages written so far are deleted by the caller's clean-up
            (they were tracked).
    """
    if drawing.preview != PREVIEW_READY:
        version.preview, version.preview_reason, version.page_count = PREVIEW_NONE, drawing.reason, 0
        return
    # The store makes every page durable before it answers (a write, a sync, a rename): several pages are
    # written at once, the bytes of at most two per writer waiting in memory. This runs under the version's
    # row, which on SQLite holds the database's write lock.
    with ThreadPoolExecutor(max_workers=PAGE_WRITERS, thread_name_prefix="vault-page-writer") as writers:
        waiting: deque[Future[None]] = deque()
        for page in drawing.pages:
            key = page_key(version.object_key, page.number)
            track(key)
            context = page_context(version.document_id, version.number, page.number)
            waiting.append(writers.submit(_write_page, rt, key, dek, context, drawing.data(page)))
            session.add(VersionPage(
                version_id=version.id, number=page.number, object_key=key, media_type=page.media_type,
                width=page.width, height=page.height, size=page.size, sha256=page.sha256,
            ))
            if len(waiting) >= 2 * PAGE_WRITERS:
                waiting.popleft().result()
        for written in waiting:
            written.result()
    version.preview, version.preview_reason, version.page_count = PREVIEW_READY, None, len(drawing.pages)
    session.flush()


def _write_page(rt: Runtime, key: str, dek: bytes, context: bytes, data: bytes) -> None:
    rt.store.put(key, EncryptingReader(dek, context, io.BytesIO(data)), length=None)


def _reason(rendition: object) -> str:
    return str(getattr(rendition, "reason", "There is no preview for this file."))[:300]


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
