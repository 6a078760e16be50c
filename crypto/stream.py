"""Streaming authenticated encryption in Tink's AES256_GCM_HKDF wire format.

Files are encrypted as a sequence of independently authenticated segments, so
a file of any size can be encrypted on its way into object storage and
decrypted on its way out with memory bounded by about two segments, and no
byte is ever released before the segment holding it has been authenticated.
The format is exactly the one of Tink's streaming AEAD (key type
``AesGcmHkdfStreamingKey``, HKDF-SHA256, 32-byte derived key, no ciphertext
offset), so any Tink implementation given the data key and the associated data
can decrypt our files: the company is never locked into this code base to
read its own documents.

Wire format (sizes in bytes, integers big-endian)::

    ciphertext   = header || segment_0 || segment_1 || ... || segment_(n-1)
    header       = header_length (1 byte, always 40)
                   || salt (32 random bytes)
                   || nonce_prefix (7 random bytes)
    segment_key  = HKDF-SHA256(ikm=key, salt=salt, info=associated_data, length=32)
    segment_i    = AES-256-GCM(segment_key, nonce_i, plaintext_i, no associated data)
                   (the GCM ciphertext followed by its 16-byte tag)
    nonce_i      = nonce_prefix || i (4 bytes) || last (1 byte: 1 for segment n-1, else 0)

With a ciphertext segment size S (1 MiB by default):

* segment_0 is ``S - 40`` bytes so that header and first segment fill exactly
  one S-byte block; it carries ``S - 56`` plaintext bytes;
* segments 1 .. n-2 are S bytes each (``S - 16`` plaintext bytes);
* segment_(n-1) is 16 .. S bytes and is the only one encrypted with last = 1.
  Plaintext ending exactly on a segment boundary ends with a full last
  segment, never with an extra empty one; empty plaintext is the header and a
  single 16-byte segment;
* n is at most 2**32, the range of the segment index.

Why each part is there: the random salt gives every file its own segment key,
so nonces (prefix, index, flag) can never repeat under one key even though the
data key is reused by Tink-style callers. The index in the nonce pins each
segment to its position, so segments cannot be reordered, duplicated or
dropped. The last flag makes truncation detectable: a stream cut after any
segment, even exactly on a segment boundary, ends with a segment that was not
encrypted as the last one, and it fails authentication. The associated data
is bound through the key derivation, so a ciphertext copied to another
document or version (see :func:`associated_data`) does not authenticate
there.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
from collections.abc import Callable, Generator, Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import CryptoError, DecryptionError

SEGMENT_SIZE = 1 << 20
"""Default ciphertext segment size: 1 MiB, as Tink's AES256_GCM_HKDF_1MB template."""

KEY_SIZE = 32
TAG_SIZE = 16
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
HEADER_SIZE = 1 + SALT_SIZE + NONCE_PREFIX_SIZE
MIN_SEGMENT_SIZE = HEADER_SIZE + TAG_SIZE + 1
"""Smallest segment size Tink accepts: the first segment must hold one plaintext byte."""
MAX_SEGMENT_SIZE = 2**31 - 1

# The segment index is a 4-byte field of the nonce; beyond it nonces would repeat.
_MAX_SEGMENTS = 2**32
_INDEX = struct.Struct(">I")
_NOT_LAST = b"\x00"
_LAST = b"\x01"
_TOO_LONG = "plaintext too long: it would need more than 2**32 segments; use a larger segment size"

_Bytes = bytes | bytearray | memoryview


def associated_data(document_id: int, version: int) -> bytes:
    """Return the associated data that binds a ciphertext to one document version.

    Storage paths can be copied or swapped by whoever controls the object
    store; binding the document id and version into every ciphertext means a
    swapped object fails authentication instead of showing another file.

    Args:
        document_id: Primary key of the document.
        version: Version number of the file within the document.

    Returns:
        Canonical bytes, e.g. ``b"vault:document:12:version:3"``.

    Raises:
        TypeError: If either argument is not an int.
        ValueError: If either argument is negative.
    """
    for name, value in (("document_id", document_id), ("version", version)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    return b"vault:document:%d:version:%d" % (document_id, version)


def ciphertext_size(plaintext_size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """Return the exact ciphertext length for a plaintext length.

    Object stores want the length of an upload up front; this lets a caller
    that knows the plaintext size announce the ciphertext size before
    encrypting anything.

    Args:
        plaintext_size: Length of the plaintext in bytes.
        segment_size: Ciphertext segment size used to encrypt.

    Returns:
        Length of the ciphertext in bytes.

    Raises:
        ValueError: If ``plaintext_size`` is negative or ``segment_size`` invalid.
        CryptoError: If the plaintext needs more than 2**32 segments.
    """
    segment_size = _check_segment_size(segment_size)
    if not isinstance(plaintext_size, int) or plaintext_size < 0:
        raise ValueError(f"plaintext_size must be a non-negative int, got {plaintext_size!r}")
    first = segment_size - HEADER_SIZE - TAG_SIZE
    if plaintext_size <= first:
        return HEADER_SIZE + plaintext_size + TAG_SIZE
    rest = plaintext_size - first
    later_segments = -(-rest // (segment_size - TAG_SIZE))
    if 1 + later_segments > _MAX_SEGMENTS:
        raise CryptoError(_TOO_LONG)
    return segment_size + rest + later_segments * TAG_SIZE


def _check_key(key: _Bytes) -> bytes:
    if not isinstance(key, _Bytes):
        raise TypeError(f"key must be bytes, not {type(key).__name__}")
    key = bytes(key)
    if len(key) != KEY_SIZE:
        raise CryptoError(f"key must be {KEY_SIZE} bytes, got {len(key)}")
    return key


def _check_associated_data(data: _Bytes) -> bytes:
    # Refusing None and str here (rather than defaulting to b"") is the point:
    # a ciphertext without its binding could be moved anywhere unnoticed.
    if not isinstance(data, _Bytes):
        raise TypeError(f"associated_data must be bytes, not {type(data).__name__}")
    return bytes(data)


def _check_segment_size(segment_size: int) -> int:
    if not isinstance(segment_size, int) or isinstance(segment_size, bool):
        raise TypeError(f"segment_size must be an int, not {type(segment_size).__name__}")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment_size must be between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE}, got {segment_size}")
    return segment_size


def _segment_cipher(key: bytes, salt: bytes, data: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=data)
    return AESGCM(hkdf.derive(key))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + _INDEX.pack(index) + (_LAST if last else _NOT_LAST)


def _fill(source: BinaryIO, view: memoryview) -> int:
    """Read into ``view`` until it is full or ``source`` is exhausted.

    ``read(n)`` may legally return fewer than n bytes before the end (pipes,
    sockets, HTTP bodies); a short read must not be mistaken for the end of
    the stream, or the last-segment flag would be set in the wrong place.
    """
    readinto = getattr(source, "readinto", None)
    filled = 0
    while filled < len(view):
        if readinto is not None:
            count = readinto(view[filled:])
        else:
            chunk = source.read(len(view) - filled)
            count = len(chunk) if chunk else 0
            view[filled : filled + count] = chunk or b""
        if not count:
            break
        filled += count
    return filled


_SMALL_BUFFER = 64 * 1024
"""The first read's buffer: most files are far smaller than one segment (1 MiB by default)."""


def _segments(source: BinaryIO, segment_size: int, first_size: int) -> Iterator[tuple[int, memoryview, bool]]:
    """Cut ``source`` into segments of ``first_size`` then ``segment_size`` bytes.

    Yields (index, view, last). One byte beyond each segment is read ahead to
    know whether it is the last one; that byte is carried over to the next
    segment, so the buffer is one segment plus one byte and nothing is copied.
    The view is only valid until the next iteration.

    The buffer starts at ``_SMALL_BUFFER`` and grows to its full size only
    when the first read fills it: a whole segment's buffer, zeroed and
    page-faulted for a 4 KiB file, was a tenth of the CPU a small view cost a
    server, and a megabyte of its memory per view in flight.
    """
    full = max(first_size, segment_size) + 1
    buffer = bytearray(min(full, _SMALL_BUFFER))
    view = memoryview(buffer)
    want, held, index = first_size, 0, 0
    while True:
        got = held + _fill(source, view[held : want + 1])
        if got == len(buffer) < full:
            # More than the small buffer holds: grow once (nothing was yielded yet) and read on.
            grown = bytearray(full)
            grown[:got] = view
            view.release()
            buffer, view = grown, memoryview(grown)
            got += _fill(source, view[got : want + 1])
        last = got <= want
        size = min(got, want)
        yield index, view[:size], last
        if last:
            return
        buffer[0] = buffer[size]
        want, held, index = segment_size, 1, index + 1


class _ChunkReader(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks.

    A failure while producing chunks is sticky: once the iterator has raised,
    every later read raises again. Without that, the exhausted generator would
    look like a clean end of file and a caller retrying a read would take a
    truncated stream for a complete one.
    """

    def __init__(self, chunks: Generator[bytes, None, None], failure: Callable[[], Exception]) -> None:
        super().__init__()
        self._chunks = chunks
        self._failure = failure
        self._pending = b""
        self._offset = 0
        self._done = False
        self._failed = False
        self._delivered = 0

    def readable(self) -> bool:
        return True

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _ready(self) -> bool:
        """Make sure undelivered bytes are pending; return False at the end."""
        self._check_open()
        while self._offset >= len(self._pending):
            if self._failed:
                raise self._failure()
            if self._done:
                return False
            self._pending = b""  # let the spent chunk go before the next one is made
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                self._done = True
                self._pending = b""
                return False
            except BaseException:
                self._failed = True
                self._pending = b""
                raise
            self._offset = 0
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            return self.readall()
        if size == 0 or not self._ready():
            return b""
        if self._offset == 0 and size >= len(self._pending):
            # Hand the whole chunk over as it is: no copy on the common path.
            data = self._pending
        else:
            data = self._pending[self._offset : self._offset + size]
        self._offset += len(data)
        self._delivered += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        target = memoryview(buffer).cast("B")
        if not len(target) or not self._ready():
            return 0
        count = min(len(target), len(self._pending) - self._offset)
        target[:count] = memoryview(self._pending)[self._offset : self._offset + count]
        self._offset += count
        self._delivered += count
        return count

    def readall(self) -> bytes:
        parts = []
        while self._ready():
            parts.append(self.read(len(self._pending) - self._offset))
        return b"".join(parts)

    def close(self) -> None:
        """Stop producing chunks; the underlying source is left open for its owner.

        Also called by the finalizer of a reader whose arguments were refused before it had chunks
        (Python 3.13 reports an error raised there)."""
        chunks = getattr(self, "_chunks", None)
        if not self.closed and chunks is not None:
            chunks.close()
            self._pending = b""
        super().close()


def _encryption_failed() -> CryptoError:
    return CryptoError("encryption failed earlier; this stream cannot be continued")


class EncryptingReader(_ChunkReader):
    """A readable file object whose bytes are the ciphertext of ``source``.

    It pulls plaintext from ``source`` only as ciphertext is read from it, so it
    can be handed straight to an object store's ``put()``: memory stays at
    about two segments whatever the file size. While reading it also measures
    the plaintext (size and SHA-256), which the caller records so that a later
    decryption can be checked against what was uploaded.

    ``source`` must be a blocking binary stream; it is not closed by this
    object.
    """

    def __init__(
        self,
        key: bytes,
        associated_data: bytes,
        source: BinaryIO,
        segment_size: int = SEGMENT_SIZE,
    ) -> None:
        """Prepare to encrypt ``source``; nothing is read until the first read.

        Args:
            key: The 32-byte data key.
            associated_data: Bytes the ciphertext is bound to; required, see
                :func:`associated_data`.
            source: Binary stream of plaintext.
            segment_size: Ciphertext segment size.

        Raises:
            TypeError: If key or associated data are not bytes.
            CryptoError: If the key is not 32 bytes.
            ValueError: If the segment size is out of range.
        """
        key = _check_key(key)
        data = _check_associated_data(associated_data)
        segment_size = _check_segment_size(segment_size)
        self.plaintext_bytes = 0
        self._digest = hashlib.sha256()
        self._plaintext_complete = False
        super().__init__(self._encrypt(key, data, source, segment_size), _encryption_failed)

    def _encrypt(self, key: bytes, data: bytes, source: BinaryIO, segment_size: int) -> Generator[bytes, None, None]:
        salt = os.urandom(SALT_SIZE)
        prefix = os.urandom(NONCE_PREFIX_SIZE)
        cipher = _segment_cipher(key, salt, data)
        yield bytes([HEADER_SIZE]) + salt + prefix
        plain_size = segment_size - TAG_SIZE
        for index, plaintext, last in _segments(source, plain_size, plain_size - HEADER_SIZE):
            if index >= _MAX_SEGMENTS:
                raise CryptoError(_TOO_LONG)
            self._digest.update(plaintext)
            self.plaintext_bytes += len(plaintext)
            # Known before the last segment is handed out: a consumer that stops after exactly the
            # announced length (S3 clients do) never asks for the end of file.
            self._plaintext_complete = last
            yield cipher.encrypt(_nonce(prefix, index, last), plaintext, None)

    @property
    def ciphertext_bytes(self) -> int:
        """Number of ciphertext bytes handed out so far."""
        return self._delivered

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the whole plaintext.

        Raises:
            CryptoError: If the ciphertext has not been read to the end, since
                a digest of part of the file would be silently wrong.
        """
        delivered_all = self._plaintext_complete and self._offset >= len(self._pending)
        if self._failed or not delivered_all:
            raise CryptoError("the plaintext SHA-256 is known only after the ciphertext is read to the end")
        return self._digest.hexdigest()


def encrypt_stream(
    key: bytes,
    associated_data: bytes,
    source: BinaryIO,
    segment_size: int = SEGMENT_SIZE,
) -> Iterator[bytes]:
    """Encrypt ``source`` lazily, yielding the header and then one segment at a time.

    For callers that write chunks themselves; use :class:`EncryptingReader`
    when a file object is wanted or the plaintext size and digest are needed.

    Args:
        key: The 32-byte data key.
        associated_data: Bytes the ciphertext is bound to; required.
        source: Binary stream of plaintext, read incrementally.
        segment_size: Ciphertext segment size.

    Returns:
        An iterator of ciphertext chunks whose concatenation is the ciphertext.
    """
    reader = EncryptingReader(key, associated_data, source, segment_size)
    return iter(functools.partial(reader.read, segment_size), b"")


def decrypt_stream(
    key: bytes,
    associated_data: bytes,
    source: BinaryIO,
    segment_size: int = SEGMENT_SIZE,
) -> Iterator[bytes]:
    """Decrypt ``source``, yielding plaintext one authenticated segment at a time.

    Nothing is yielded before the header and the first segment have been
    authenticated, so if the first ``next()`` raises, no plaintext was
    delivered; a later failure means the earlier chunks were genuine but the
    stream did not continue as written (cut, altered or extended). Bytes of a
    segment are never yielded before that segment's tag has been checked.

    Arguments are validated at the call; the ciphertext is read from the first
    ``next()`` on. ``source`` is not closed.

    Args:
        key: The 32-byte data key.
        associated_data: The bytes given when encrypting.
        source: Binary stream of ciphertext.
        segment_size: Ciphertext segment size used when encrypting.

    Returns:
        An iterator of plaintext chunks.

    Raises:
        DecryptionError: From iteration, for every kind of failure: altered,
            truncated, reordered or extended ciphertext, wrong key, wrong
            associated data, bad header, empty input.
        TypeError, CryptoError, ValueError: At the call, for invalid arguments.
    """
    key = _check_key(key)
    data = _check_associated_data(associated_data)
    segment_size = _check_segment_size(segment_size)
    return _decrypt(key, data, source, segment_size)


def _decrypt(key: bytes, data: bytes, source: BinaryIO, segment_size: int) -> Generator[bytes, None, None]:
    header = bytearray(HEADER_SIZE)
    if _fill(source, memoryview(header)) != HEADER_SIZE or header[0] != HEADER_SIZE:
        raise DecryptionError()
    salt = bytes(header[1 : 1 + SALT_SIZE])
    prefix = bytes(header[1 + SALT_SIZE :])
    cipher = _segment_cipher(key, salt, data)
    for index, ciphertext, last in _segments(source, segment_size, segment_size - HEADER_SIZE):
        if index >= _MAX_SEGMENTS:
            raise DecryptionError()
        try:
            plaintext = cipher.decrypt(_nonce(prefix, index, last), ciphertext, None)
        except InvalidTag:
            # One exception, no cause attached: the reason must not leak.
            raise DecryptionError() from None
        yield plaintext


class DecryptingReader(_ChunkReader):
    """A readable file object over :func:`decrypt_stream`.

    Reads raise :class:`DecryptionError` as soon as a segment fails, and keep
    raising it afterwards, so a failed stream never looks like a short file.
    ``plaintext_bytes`` tells how much genuine plaintext was handed out.
    ``source`` is not closed by this object.
    """

    def __init__(
        self,
        key: bytes,
        associated_data: bytes,
        source: BinaryIO,
        segment_size: int = SEGMENT_SIZE,
    ) -> None:
        """Prepare to decrypt ``source``; nothing is read until the first read.

        Args:
            key: The 32-byte data key.
            associated_data: The bytes given when encrypting.
            source: Binary stream of ciphertext.
            segment_size: Ciphertext segment size used when encrypting.
        """
        key = _check_key(key)
        data = _check_associated_data(associated_data)
        segment_size = _check_segment_size(segment_size)
        super().__init__(_decrypt(key, data, source, segment_size), DecryptionError)

    @property
    def plaintext_bytes(self) -> int:
        """Number of authenticated plaintext bytes handed out so far."""
        return self._delivered
