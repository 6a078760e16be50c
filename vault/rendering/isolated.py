"""Drawing a file's pages in a child process that the kernel holds to a memory limit and the parent to a time limit.

Why: the bounds of drawing in the server's own process are checks we wrote. The measure before PDFium
draws a page (`vault.core.pdf_streams`) is a walk of what the page names; the deadlines of the progressive
drawing are checked every hundred objects; an interactive form's fields are drawn in one call that cannot
pause; and a decoder may hold more than the measure counts. None of that bounds what a parser does that we
did not foresee. In a child process the bounds hold whatever happens inside it: its data segment is capped
(``RLIMIT_DATA``, `Limits.render_memory`), the parent kills it past `Limits.render_seconds`, and a crash
of its native code, or an allocation past the cap, is a file kept without a preview, not a dead worker.
The worker that serves requests never holds what a drawing allocated.

The child is a fork of the worker: it starts in a few milliseconds with the worker's fonts and code already
loaded, and costs no process of its own between drawings (a fork server holding the rendering code took
168 MiB per worker and about 25 ms more per drawing, every child starting cold). A fork copies one thread,
so it is made while the fork holds the PDFium lock: no other thread is inside PDFium, whose state the child
takes over, and the child releases its copy of the lock. The child only draws, sends and exits: it never
touches what the worker's other threads were using, and collects none of the worker's garbage (whose
finalizers could act on the worker's connections). The file is the worker's open descriptor, inherited;
the pages come back over a pipe, encoded, one message each, so memory stays flat in the page count. A
child that has sent its last message is reaped by a thread of its own rather than waited for.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, BinaryIO

from flask_babel import lazy_gettext as _l

from vault.core.pdfium_calls import PDFIUM_LOCK
from vault.rendering import kinds
from vault.rendering.engine import DEFAULT_LIMITS, NoPreview, Rendition, Source, render
from vault.rendering.errors import RenditionFailed, RenditionRefused
from vault.rendering.limits import Limits

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("fork")
_GRACE_SECONDS = 5.0
"""How long a child that has sent its last message may take to exit before it is killed."""


@dataclass(frozen=True)
class DrawnPage:
    """A page as the drawing process sent it: already encoded (see `vault.rendering.page`)."""

    number: int
    width: int
    height: int
    media_type: str
    data: bytes

    def encode(self) -> bytes:
        return self.data


class IsolatedRenderer:
    """The renderer the upload uses: `render`, run in a child process held to `Limits.render_memory` and
    `Limits.render_seconds` (see the module text). The same outcomes as drawing in the process: a
    `RenditionRefused` from `render`, a `NoPreview`, or pages, any of which may end in `RenditionFailed`;
    a child that runs out of time or memory, or dies, is a `RenditionFailed` too (no preview, file kept)."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def render(self, source: Source, media_type: str, filename: str) -> Rendition:
        """See `vault.rendering.render`."""
        if kinds.kind_of(media_type, filename) is None:
            return render(source, media_type, filename, self.limits)  # nothing to draw: no child needed
        deadline = time.monotonic() + self.limits.render_seconds
        with contextlib.ExitStack() as owned:
            if isinstance(source, str | os.PathLike):
                handed: int | str = os.fspath(source)
            else:
                source.seek(0)
                if not _has_fileno(source):
                    copy = owned.enter_context(tempfile.TemporaryFile(prefix="vault-drawing-"))
                    shutil.copyfileobj(source, copy)
                    source = copy
                source.flush()  # the child reads the descriptor, not this object's buffer
                handed = source.fileno()
            reader, writer = _CONTEXT.Pipe(duplex=False)
            process = _CONTEXT.Process(target=_draw, args=(handed, media_type, filename, self.limits, writer),
                                       name="vault-drawing", daemon=True)
            try:
                with PDFIUM_LOCK:  # no other thread is inside PDFium while it is copied (see the module text)
                    process.start()
            finally:
                writer.close()
            child = _Child(process, reader, deadline)
            try:
                first = child.receive()
            except RenditionFailed as exc:
                return NoPreview(kinds.kind_of(media_type, filename), exc.code, exc.message)
            except BaseException:
                child.close()
                raise
        if first[0] == "pages":
            return _ChildRendition(first[1], first[2], child)
        child.close()
        if first[0] == "refused":
            raise first[1]
        if first[0] == "failed":  # as `render` answers a failure before the first page
            return NoPreview(kinds.kind_of(media_type, filename), first[1].code, first[1].message)
        return NoPreview(first[1], first[2], first[3])


def _has_fileno(source: BinaryIO) -> bool:
    try:
        source.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


class _Child:
    """The parent's end of one drawing process: its messages, each awaited until the deadline at most."""

    def __init__(self, process: Any, reader: Connection, deadline: float) -> None:
        self.process = process
        self.reader = reader
        self.deadline = deadline
        self.closed = False

    def receive(self) -> tuple[Any, ...]:
        """The child's next message; a child past its time is killed, and a child that died is reported.

        Raises:
            RenditionFailed: the child ran out of time, or ended (out of memory, crashed) before saying why.
        """
        left = self.deadline - time.monotonic()
        if left <= 0 or not self.reader.poll(left):
            self.close(stop=True)
            raise RenditionFailed(_l("Drawing the pages took too long; the file is kept without a preview."))
        try:
            message: tuple[Any, ...] = self.reader.recv()
        except (EOFError, OSError):
            self.close()
            log.warning("a drawing process ended without finishing (exit code %s)", self.process.exitcode)
            raise RenditionFailed(_l("Drawing the pages ran out of memory or failed; the file is kept without a "
                                     "preview.")) from None
        return message

    def close(self, *, stop: bool = False) -> None:
        """End the child: it has said its last and is left a moment to exit (waited for in a thread of its
        own: a fork of a large process takes milliseconds to tear down, and the upload need not wait), or
        (``stop``, or past that moment) it is killed. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.reader.close()
        if stop:
            _end(self.process, 0)
        else:
            threading.Thread(target=_end, args=(self.process, _GRACE_SECONDS), name="vault-drawing-reaper",
                             daemon=True).start()


def _end(process: Any, grace: float) -> None:
    """Wait up to ``grace`` seconds for a drawing process to exit, kill it if it has not, and reap it."""
    process.join(grace)
    if process.exitcode is None:
        process.kill()
        process.join()
    process.close()


class _ChildRendition(Rendition):
    """The pages a drawing process sends, as `Rendition.pages` yields them (each a `DrawnPage`)."""

    def __init__(self, kind: str, page_count: int, child: _Child) -> None:
        self.kind = kind
        self.page_count = page_count
        self._child: _Child | None = child
        self._cleanup = []

    def pages(self) -> Iterator[DrawnPage]:  # type: ignore[override]
        child = self._child
        if child is None:
            raise RenditionFailed(_l("The pages were read already."))
        while True:
            message = child.receive()
            if message[0] == "page":
                yield DrawnPage(*message[1:])
            elif message[0] == "failed":
                self._end(child)
                raise message[1]
            else:  # "end"
                self._end(child)
                return

    def _end(self, child: _Child) -> None:
        self._child = None
        child.close()  # it has said its last: it exits by itself

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.close(stop=True)  # the pages were read to their end, or are no longer wanted


# -- in the child ----------------------------------------------------------------------------------------


def _draw(handed: int | str, media_type: str, filename: str, limits: Limits, out: Connection) -> None:
    """The drawing process: capped, it renders the file and sends what `IsolatedRenderer` receives."""
    PDFIUM_LOCK.release()  # the copy the fork took, held by the parent's thread as it forked
    # The worker's objects are left as they are: none of its garbage is collected (and finalized: a database
    # connection closing, say) here, only this drawing's own.
    gc.freeze()
    # Within the worker's own limit, should the deployment have set a lower one: a limit cannot be raised.
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = limits.render_memory if hard == resource.RLIM_INFINITY else min(limits.render_memory, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    try:
        with contextlib.ExitStack() as owned:
            source: Source = (handed if isinstance(handed, str)
                              else owned.enter_context(os.fdopen(os.dup(handed), "rb")))
            try:
                rendition = owned.enter_context(render(source, media_type, filename, limits))
            except RenditionRefused as exc:
                out.send(("refused", exc))
                return
            if isinstance(rendition, NoPreview):
                out.send(("none", rendition.kind, rendition.code, rendition.reason))
                return
            out.send(("pages", rendition.kind, rendition.page_count))
            try:
                for page in rendition.pages():
                    out.send(("page", page.number, page.width, page.height, page.media_type, page.encode()))
            except RenditionFailed as exc:
                out.send(("failed", exc))
                return
            out.send(("end",))
    except Exception:
        # Anything else is this drawing's failure, not the server's: the parent keeps the file without pages.
        log.exception("drawing %s (%s) failed", filename, media_type)
        with contextlib.suppress(Exception):
            out.send(("failed", RenditionFailed(_l("The pages could not be drawn; the file is kept without a "
                                                   "preview."))))
    finally:
        out.close()
