"""Drawing an upload's pages in a fork of the worker held to a memory cap and a time limit.

The bounds of drawing in the server's own process are checks we wrote (see `vault.core.forked` for why
they are not enough: PDFium draws form fields in one call that cannot pause). `IsolatedRenderer` runs the
same `render` in a fork whose data segment is capped at `Limits.render_memory` and which is killed after
`Limits.render_seconds`: past either, or on a crash, the file is kept without a preview and the worker is
untouched. The file is inherited as a descriptor of its own that only reads; the pages come back encoded,
one message each, so memory stays flat in the page count. The fork is held in (`vault.core.confine`: no
network, no programs but the office converter, no change to the file system but the converter's), and
what it sends is read with only the classes listed in `_messages`; a drawing that sends anything else ends
as `DrawingMisbehaved`, which the upload turns into an alert on its sender.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import flask_babel
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from vault.core.forked import ForkDied, Forked, ForkMisbehaved, ForkTimedOut, Send
from vault.rendering import kinds
from vault.rendering.engine import DEFAULT_LIMITS, NoPreview, Rendition, Source, render
from vault.rendering.errors import DrawingMisbehaved, RenditionError, RenditionFailed, RenditionRefused
from vault.rendering.limits import Limits

log = logging.getLogger(__name__)


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
    """The renderer the upload uses: `render`, run in a fork held to `Limits.render_memory` and
    `Limits.render_seconds` (see the module text). The same outcomes as drawing in the process: a
    `RenditionRefused` from `render`, a `NoPreview`, or pages, any of which may end in `RenditionFailed`;
    a child that runs out of time or memory, or dies, is a `RenditionFailed` too (no preview, file kept)."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def render(self, source: Source, media_type: str, filename: str) -> Rendition:
        """See `vault.rendering.render`."""
        if kinds.kind_of(media_type, filename) is None:
            return render(source, media_type, filename, self.limits)  # nothing to draw: no child needed
        with contextlib.ExitStack() as owned:
            if isinstance(source, str | os.PathLike):
                # Opened here: the child may open no file by name outside the trees it draws with.
                source = owned.enter_context(open(source, "rb"))
            source.seek(0)
            if not _has_fileno(source):
                copy = owned.enter_context(tempfile.TemporaryFile(prefix="vault-drawing-"))
                shutil.copyfileobj(source, copy)
                source = copy
            source.flush()  # the child reads the descriptor, not this object's buffer
            handed = source.fileno()
            reopened = _read_only(handed)
            if reopened is not None:
                owned.callback(os.close, reopened)
                handed = reopened
            child = Forked(functools.partial(_draw, handed, media_type, filename, self.limits),
                           memory=self.limits.render_memory, seconds=self.limits.render_seconds,
                           name="vault-drawing", allowed=_messages(), max_message=_longest_message(self.limits),
                           # The office converter is a program the child starts (see vault.core.confine).
                           converts=kinds.kind_of(media_type, filename) in kinds.OFFICE_KINDS,
                           keep_open=(handed,))
            try:
                first = _receive(child)
            except RenditionFailed as exc:
                return NoPreview(kinds.kind_of(media_type, filename), exc.code, exc.message)
            except BaseException:
                child.close(stop=True)
                raise
        if first[0] == "pages":
            return _ChildRendition(first[1], first[2], child)
        child.close()
        if first[0] == "refused":
            raise first[1]
        if first[0] == "failed":  # as `render` answers a failure before the first page
            return NoPreview(kinds.kind_of(media_type, filename), first[1].code, first[1].message)
        return NoPreview(first[1], first[2], first[3])


def _messages() -> list[type | Callable[..., Any]]:
    """The classes a drawing's messages hold besides plain values: its errors (whose texts are lazy
    translations, kept so until they are shown) and what those are made of."""
    found: list[type | Callable[..., Any]] = [LazyString, flask_babel.gettext]
    pending: list[type] = [RenditionError]
    while pending:
        error = pending.pop()
        found.append(error)
        pending += error.__subclasses__()
    return found


def _longest_message(limits: Limits) -> int:
    """The longest message a drawing sends: a page of `Limits.max_page_pixels`, in colour, encoded (PNG's
    worst case is a little over three bytes a pixel), and room for its fields."""
    return 4 * limits.max_page_pixels + (1 << 20)


def _read_only(fd: int) -> int | None:
    """A descriptor of the same file open for reading only (reopened through ``/proc/self/fd``), or None
    where there is none. The upload's bytes are drawn from the file they are then encrypted and stored
    from: with the upload's own read-write descriptor, a taken-over drawing could change them after the
    upload's rules had checked them."""
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _has_fileno(source: BinaryIO) -> bool:
    try:
        source.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _receive(child: Forked) -> tuple[object, ...]:
    """The drawing's next message, its time or its death as a `RenditionFailed`."""
    try:
        return child.receive()
    except ForkTimedOut:
        raise RenditionFailed(_l("Drawing the pages took too long; the file is kept without a preview.")) from None
    except ForkMisbehaved:
        # Logged with what was sent by `Forked`; the upload raises an alert on its sender (DrawingMisbehaved).
        raise DrawingMisbehaved(_l("The process drawing the pages sent what it never sends; the file is kept "
                                   "without a preview.")) from None
    except ForkDied:
        raise RenditionFailed(_l("Drawing the pages ran out of memory or failed; the file is kept without a "
                                 "preview.")) from None


class _ChildRendition(Rendition):
    """The pages a drawing process sends, as `Rendition.pages` yields them (each a `DrawnPage`)."""

    def __init__(self, kind: str, page_count: int, child: Forked) -> None:
        self.kind = kind
        self.page_count = page_count
        self._child: Forked | None = child

    def pages(self) -> Iterator[DrawnPage]:  # type: ignore[override]
        child = self._child
        if child is None:
            raise RenditionFailed(_l("The pages were read already."))
        while True:
            message = _receive(child)
            if message[0] == "page":
                yield DrawnPage(*message[1:])  # type: ignore[arg-type]
            elif message[0] == "failed":
                self._end(child)
                raise message[1]  # type: ignore[misc]
            else:  # "end"
                self._end(child)
                return

    def _end(self, child: Forked) -> None:
        self._child = None
        child.close()  # it has said its last: it exits by itself

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.close(stop=True)  # the pages are no longer wanted


def _draw(handed: int, media_type: str, filename: str, limits: Limits, send: Send) -> None:
    """In the child: render the file and send what `IsolatedRenderer` receives."""
    try:
        with contextlib.ExitStack() as owned:
            source: Source = owned.enter_context(os.fdopen(os.dup(handed), "rb"))
            try:
                rendition = owned.enter_context(render(source, media_type, filename, limits))
            except RenditionRefused as exc:
                send(("refused", exc))
                return
            if isinstance(rendition, NoPreview):
                send(("none", rendition.kind, rendition.code, rendition.reason))
                return
            send(("pages", rendition.kind, rendition.page_count))
            try:
                for page in rendition.pages():
                    send(("page", page.number, page.width, page.height, page.media_type, page.encode()))
            except RenditionFailed as exc:
                send(("failed", exc))
                return
            send(("end",))
    except Exception:
        # Anything else is this drawing's failure, not the server's: the parent keeps the file without pages.
        log.exception("drawing %s (%s) failed", filename, media_type)
        with contextlib.suppress(Exception):
            send(("failed", RenditionFailed(_l("The pages could not be drawn; the file is kept without a "
                                               "preview."))))
