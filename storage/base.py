"""The narrow object-store interface every backend implements, and the errors it raises.

The rest of vault only ever sees :class:`ObjectStore` and the exceptions below: a backend translates its
own failures (``S3Error``, ``OSError``, urllib3 connection errors) into these, so a caller handles "not
found", "cannot reach the storage" and "the storage refused our credentials" the same way whether the
bytes live in a local folder or on an S3 server. Messages name the endpoint, bucket or folder and the
key, never a secret.

Keys are ``/``-separated relative names such as ``documents/12/3-<uuid>``. They are validated here, once,
for every backend, because a key that means "a file outside the store" on one backend must not be
accepted on any of them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol, runtime_checkable

# S3 limits keys to 1024 bytes of UTF-8; holding every backend to it keeps keys portable between them.
MAX_KEY_BYTES = 1024


class StorageError(Exception):
    """Base class of every error an object store raises."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


class StorageUnavailable(StorageError):
    """The storage cannot be reached or used right now: endpoint down, bucket or folder missing."""


class StorageAuthError(StorageError):
    """The storage refused our credentials or our request signature."""


class ObjectLocked(StorageError):
    """The object is under write-once retention and may not be overwritten or deleted yet."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object.

    Attributes:
        key: the object's key.
        size: length in bytes.
        modified: when it was last written (timezone-aware, UTC), if the backend says.
        etag: the backend's version tag (S3 ETag, without quotes), if it has one.
    """

    key: str
    size: int
    modified: datetime | None
    etag: str | None


@dataclass(frozen=True)
class Leftover:
    """A temporary file a write left behind (a crash mid-write); never an object.

    Attributes:
        name: its path under the store's root, with ``/`` between folders.
        size: length in bytes.
        modified: when it was last written to (timezone-aware, UTC).
        in_use: a write still holds it, as the listing saw it: never to be removed.
    """

    name: str
    size: int
    modified: datetime
    in_use: bool


@runtime_checkable
class LeavesTemporaryFiles(Protocol):
    """A store whose writes go through temporary files of its own, which a crash can leave behind.

    Not part of :class:`ObjectStore`: an S3 server keeps no such files; what a killed upload leaves there
    is an unfinished multipart upload (:class:`LeavesUnfinishedUploads`).
    """

    def leftovers(self) -> Iterator[Leftover]:
        """Every temporary file under the store, in name order."""
        ...

    def remove_leftover(self, name: str, modified_before: datetime) -> bool:
        """Remove the temporary file ``name`` if no write holds it and it was last written before
        ``modified_before``; return whether it was removed."""
        ...


@dataclass(frozen=True)
class UnfinishedUpload:
    """A multipart upload begun and never completed nor aborted (a process killed mid-upload).

    Its parts are invisible to object listings and never become an object, yet the server keeps them,
    and the space they take, until the upload is aborted.

    Attributes:
        key: the object key it would have created (the store's key prefix removed).
        upload_id: the server's id of the upload, needed to abort it.
        initiated: when it was begun (timezone-aware, UTC).
        last_activity: the latest of ``initiated`` and the times its parts were uploaded: a slow upload
            still sending parts is recent here however long ago it began.
        size: bytes held by its parts.
    """

    key: str
    upload_id: str
    initiated: datetime
    last_activity: datetime
    size: int


@runtime_checkable
class LeavesUnfinishedUploads(Protocol):
    """A store whose large writes go up as multipart uploads that a killed process leaves unfinished.

    Not part of :class:`ObjectStore`: a folder store has no such thing (its crashes leave temporary
    files, :class:`LeavesTemporaryFiles`).
    """

    def unfinished_uploads(self) -> Iterator[UnfinishedUpload]:
        """Every unfinished multipart upload under the store's key prefix."""
        ...

    def abort_upload(self, upload: UnfinishedUpload, active_before: datetime) -> bool:
        """Abort ``upload`` if it is still there and had no activity since ``active_before``; return
        whether it was aborted."""
        ...


class ObjectStore(Protocol):
    """A flat namespace of immutable-by-convention blobs, read and written as streams.

    Only streams cross this interface so that memory stays flat in the size of a file: a caller never
    needs to hold a whole document to store or serve it.

    Not ``runtime_checkable`` on purpose: on Python 3.11 an ``isinstance`` check reads every member,
    and :attr:`supports_retention` of an S3 store asks the server.
    """

    @property
    def supports_retention(self) -> bool:
        """Whether ``retain_until`` is enforced by this store (for S3: the bucket has Object Lock)."""
        ...

    def put(
        self,
        key: str,
        stream: BinaryIO,
        length: int | None = None,
        content_type: str = "application/octet-stream",
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """Store everything ``stream`` yields under ``key``, replacing any previous object.

        The write is all or nothing: if ``stream`` raises, or yields a different number of bytes than
        ``length`` announced, nothing new is left under ``key`` (a previous object stays intact) and the
        error propagates.

        Args:
            key: where to store the object (see :func:`validate_key`).
            stream: a readable binary file-like object; it is read to its end but not closed.
            length: the number of bytes ``stream`` will yield, or ``None`` when unknown.
            content_type: MIME type recorded with the object where the backend keeps one.
            retain_until: write-once retention: until this (timezone-aware, future) time the object can be
                neither overwritten nor deleted. Enforced when :attr:`supports_retention` is true.

        Returns:
            The stored object's :class:`ObjectInfo`.

        Raises:
            ValueError: invalid key, length or ``retain_until``, or a stream that did not match ``length``.
            ObjectLocked: an object under retention already exists at ``key``.
            StorageUnavailable: the storage cannot be reached.
            StorageAuthError: the storage refused our credentials.
        """
        ...

    def open(self, key: str) -> BinaryIO:
        """Open the object for streaming reads; close the result (or use it as a context manager).

        Raises:
            ObjectNotFound: nothing is stored under ``key``.
        """
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Describe the object under ``key``.

        Raises:
            ObjectNotFound: nothing is stored under ``key``.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object under ``key`` (on a versioned bucket, every version of it).

        Raises:
            ObjectNotFound: nothing is stored under ``key``.
            ObjectLocked: the object is under retention until a future time.
        """
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with ``prefix`` (a plain string prefix), sorted by key."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def ensure_ready(self) -> None:
        """Create the folder or bucket if it is missing, so that the first ``put`` succeeds."""
        ...

    def check(self) -> None:
        """Cheaply prove that the storage is reachable and accepts us (for health checks).

        Raises:
            StorageUnavailable: unreachable, or the folder/bucket is missing.
            StorageAuthError: our credentials are refused.
        """
        ...

    def describe(self) -> str:
        """A one-line human description (kind, place), never containing a secret."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise ``ValueError`` saying what is wrong.

    A key is one or more ``/``-separated non-empty components. Refused: absolute keys, empty components
    (``a//b``, a trailing ``/``), ``.`` and ``..`` components (path traversal on a filesystem backend),
    backslashes (a separator on other systems), and control characters (NUL truncates C strings; others
    hide in logs and audit trails).
    """
    if not isinstance(key, str):
        raise ValueError(f"object key must be a string, not {type(key).__name__}")
    if not key:
        raise ValueError("object key is empty")
    _check_characters(key, "object key")
    if key.startswith("/"):
        raise ValueError(f"object key {key!r} is absolute; keys are relative, like 'documents/12/3-x'")
    for part in key.split("/"):
        if part == "":
            raise ValueError(f"object key {key!r} has an empty path component")
        if part in (".", ".."):
            raise ValueError(f"object key {key!r} has a {part!r} path component")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start a valid key ("" lists everything), else raise ``ValueError``."""
    if not isinstance(prefix, str):
        raise ValueError(f"key prefix must be a string, not {type(prefix).__name__}")
    if not prefix:
        return prefix
    _check_characters(prefix, "key prefix")
    if prefix.startswith("/"):
        raise ValueError(f"key prefix {prefix!r} is absolute; keys are relative")
    # Every component but the last is complete and must be valid; the last one may be a partial name.
    *complete, _partial = prefix.split("/")
    for part in complete:
        if part in ("", ".", ".."):
            raise ValueError(f"key prefix {prefix!r} has an invalid path component {part!r}")
    return prefix


def _check_characters(text: str, what: str) -> None:
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"{what} is longer than {MAX_KEY_BYTES} bytes of UTF-8")
    if "\\" in text:
        raise ValueError(f"{what} {text!r} contains a backslash; use '/' to separate components")
    for char in text:
        # Cc covers NUL, C0 and C1 controls and DEL; Cs (lone surrogates) cannot be encoded at all.
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"{what} {text!r} contains the control character {char!r}")


def validate_length(length: int | None) -> int | None:
    """Return ``length`` if it is ``None`` or a non-negative int, else raise ``ValueError``."""
    if length is None:
        return None
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be None or a non-negative integer, not {length!r}")
    return length


def validate_retain_until(retain_until: datetime | None, now: datetime | None = None) -> datetime | None:
    """Return ``retain_until`` as UTC if it is ``None`` or a timezone-aware future time.

    A naive datetime is refused rather than guessed: a retention date read in the wrong timezone would
    lock a record for hours too long or release it too early.
    """
    if retain_until is None:
        return None
    if not isinstance(retain_until, datetime) or retain_until.utcoffset() is None:
        raise ValueError("retain_until must be a timezone-aware datetime")
    now = now or datetime.now(UTC)
    if retain_until <= now:
        raise ValueError(f"retain_until {retain_until.isoformat()} is not in the future")
    return retain_until.astimezone(UTC)


def check_stream_length(expected: int | None, actual: int) -> None:
    """Raise ``ValueError`` when a stream yielded a different number of bytes than announced."""
    if expected is not None and actual != expected:
        relation = "more" if actual > expected else "fewer"
        raise ValueError(f"stream yielded {relation} bytes than the announced length {expected}")


class MeteredStream:
    """A caller's stream as a backend consumes it: full reads, a byte count, and the length enforced.

    Each ``read(n)`` is filled to ``n`` bytes unless the stream ends, because consumers such as minio
    build a part with ``bytes +=`` on whatever ``read`` returns, which is quadratic for a stream that
    returns small pieces (an encrypting reader returns one segment at a time). Streams with
    ``readinto`` are read into one buffer reused for every call: collecting and joining the pieces
    instead keeps many fresh allocations alive at once and costs twice the CPU time.

    A stream that turns out shorter or longer than ``length`` raises ``ValueError`` from ``read``, before
    the backend commits anything. An exception raised by the stream itself is remembered in
    :attr:`failure`, so that a backend can let it reach the caller unchanged even when its type
    (``OSError``, a urllib3 error, for a stream that is itself a network download) looks like one of the
    backend's own failures.
    """

    def __init__(self, stream: BinaryIO, length: int | None) -> None:
        self._stream = stream
        self._length = length
        self._buffer = bytearray()
        self.total = 0
        self.failure: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        """Return ``size`` bytes (everything left if negative), fewer only at the end of the stream."""
        readinto = getattr(self._stream, "readinto", None)
        if size < 0 or readinto is None:
            return self._read_pieces(size)
        if len(self._buffer) < size:
            self._buffer = bytearray(size)
        view = memoryview(self._buffer)[:size]
        got = 0
        while got < size:
            count = self._call(readinto, view[got:])
            if not count:
                self._at_end(got)
                break
            got = self._count(got, count)
        return self._done(got, bytes(view[:got]))

    def _read_pieces(self, size: int) -> bytes:
        pieces: list[bytes] = []
        wanted = size if size >= 0 else (1 << 62)
        got = 0
        while got < wanted:
            piece = self._call(self._stream.read, wanted - got)
            if not piece:
                self._at_end(got)
                break
            pieces.append(piece)
            got = self._count(got, len(piece))
        return self._done(got, pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def _call(self, method: Callable[[Any], Any], argument: Any) -> Any:
        try:
            return method(argument)
        except BaseException as error:
            self.failure = error
            raise

    def _count(self, got: int, count: int) -> int:
        got += count
        if self._length is not None:
            if self.total + got > self._length:
                check_stream_length(self._length, self.total + got)
            if self.total + got == self._length and self._call(self._stream.read, 1):
                # A consumer told the length stops reading here: one byte more means the caller was wrong.
                check_stream_length(self._length, self.total + got + 1)
        return got

    def _at_end(self, got: int) -> None:
        # Only at the end can a short stream be told from a slow one.
        check_stream_length(self._length, self.total + got)

    def _done(self, got: int, data: bytes) -> bytes:
        self.total += got
        return data
