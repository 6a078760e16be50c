"""Round trips and the file-object behaviour of the streaming encryption."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import (
    SEGMENT_SIZE,
    CryptoError,
    DecryptingReader,
    DecryptionError,
    EncryptingReader,
    associated_data,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
)
from crypto.stream import _SMALL_BUFFER, HEADER_SIZE, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, TAG_SIZE
from tests.crypto.helpers import ReadOnlySource, TrickleSource, first_plaintext_size, split_segments

AD = associated_data(7, 1)


def boundary_sizes(segment_size: int) -> list[int]:
    """Plaintext sizes on and around every place where segmentation changes."""
    first = first_plaintext_size(segment_size)
    later = segment_size - TAG_SIZE
    sizes = {0, 1, 2}
    for edge in (first, first + later, first + 2 * later, segment_size, segment_size - HEADER_SIZE):
        sizes.update({edge - 1, edge, edge + 1})
    return sorted(sizes)


def encrypt(key: bytes, plaintext: bytes, segment_size: int = SEGMENT_SIZE, data: bytes = AD) -> bytes:
    return EncryptingReader(key, data, io.BytesIO(plaintext), segment_size).read()


def decrypt(key: bytes, ciphertext: bytes, segment_size: int = SEGMENT_SIZE, data: bytes = AD) -> bytes:
    return b"".join(decrypt_stream(key, data, io.BytesIO(ciphertext), segment_size))


@pytest.mark.parametrize("segment_size", [MIN_SEGMENT_SIZE, 64, 4096])
def test_round_trip_at_every_segmentation_boundary(key: bytes, segment_size: int) -> None:
    for size in boundary_sizes(segment_size):
        plaintext = os.urandom(size)
        ciphertext = encrypt(key, plaintext, segment_size)
        assert len(ciphertext) == ciphertext_size(size, segment_size), size
        assert decrypt(key, ciphertext, segment_size) == plaintext, size


@pytest.mark.parametrize(
    "size",
    [*boundary_sizes(SEGMENT_SIZE)[:8], 3 * SEGMENT_SIZE + 12345, 5 * (SEGMENT_SIZE - TAG_SIZE) + 7],
)
def test_round_trip_with_the_default_segment_size(key: bytes, size: int) -> None:
    plaintext = os.urandom(size)
    ciphertext = encrypt(key, plaintext)
    assert len(ciphertext) == ciphertext_size(size)
    assert decrypt(key, ciphertext) == plaintext


@pytest.mark.parametrize("make_source", [io.BytesIO, TrickleSource])
def test_round_trip_around_the_first_reads_small_buffer(key: bytes, make_source) -> None:
    # Reading starts with a small buffer and grows it to a whole segment only when the first read fills it:
    # every size on and around that edge, in ciphertext and in plaintext, goes through both ways.
    edges = {_SMALL_BUFFER - HEADER_SIZE - 1, _SMALL_BUFFER - HEADER_SIZE, _SMALL_BUFFER - 1, _SMALL_BUFFER}
    for size in sorted({edge + delta for edge in edges for delta in (-TAG_SIZE, -1, 0, 1, TAG_SIZE)}):
        plaintext = os.urandom(size)
        ciphertext = EncryptingReader(key, AD, make_source(plaintext)).read()
        assert len(ciphertext) == ciphertext_size(size), size
        assert b"".join(decrypt_stream(key, AD, make_source(ciphertext))) == plaintext, size


def test_segments_have_the_documented_sizes(key: bytes) -> None:
    segment_size = 64
    first = first_plaintext_size(segment_size)
    ciphertext = encrypt(key, os.urandom(first + 2 * (segment_size - TAG_SIZE) + 5), segment_size)
    header, segments = split_segments(ciphertext, segment_size)
    assert header[0] == HEADER_SIZE == 40
    assert [len(segment) for segment in segments] == [segment_size - HEADER_SIZE, 64, 64, 5 + TAG_SIZE]


def test_empty_plaintext_is_a_header_and_one_tag(key: bytes) -> None:
    ciphertext = encrypt(key, b"")
    assert len(ciphertext) == HEADER_SIZE + TAG_SIZE
    assert decrypt(key, ciphertext) == b""


def test_each_encryption_is_fresh(key: bytes) -> None:
    plaintext = b"same file, same key, same document"
    first, second = encrypt(key, plaintext), encrypt(key, plaintext)
    assert first != second
    assert first[1:33] != second[1:33]  # a new salt, hence a new segment key
    assert decrypt(key, first) == decrypt(key, second) == plaintext


@pytest.mark.parametrize("make_source", [TrickleSource, ReadOnlySource])
def test_short_reads_from_the_source_do_not_end_the_stream(key: bytes, make_source) -> None:
    plaintext = os.urandom(300)
    ciphertext = EncryptingReader(key, AD, make_source(plaintext), 64).read()
    assert len(ciphertext) == ciphertext_size(300, 64)
    assert b"".join(decrypt_stream(key, AD, make_source(ciphertext), 64)) == plaintext


def test_encrypting_reader_counts_and_hashes_the_plaintext(key: bytes) -> None:
    plaintext = os.urandom(1000)
    reader = EncryptingReader(key, AD, io.BytesIO(plaintext), 64)
    first = reader.read(10)
    assert len(first) == 10
    with pytest.raises(CryptoError, match="after the ciphertext is read to the end"):
        _ = reader.sha256
    rest = reader.read()
    assert reader.plaintext_bytes == 1000
    assert reader.ciphertext_bytes == len(first + rest) == ciphertext_size(1000, 64)
    assert reader.sha256 == hashlib.sha256(plaintext).hexdigest()


def test_the_digest_is_ready_once_the_announced_length_is_read(key: bytes) -> None:
    # Object-store clients given a length read exactly that much and never ask for the end of file.
    plaintext = os.urandom(300)
    reader = EncryptingReader(key, AD, io.BytesIO(plaintext), 64)
    expected = ciphertext_size(300, 64)
    received = bytearray()
    while len(received) < expected - 1:
        received += reader.read(min(64, expected - 1 - len(received)))
    with pytest.raises(CryptoError):
        _ = reader.sha256  # one byte of the last segment is still undelivered
    received += reader.read(1)
    assert len(received) == expected
    assert reader.sha256 == hashlib.sha256(plaintext).hexdigest()


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 700),
    segment_size=st.integers(MIN_SEGMENT_SIZE, 200),
    read_sizes=st.lists(st.integers(1, 150), min_size=1, max_size=8),
)
def test_any_read_pattern_gives_the_same_bytes(size: int, segment_size: int, read_sizes: list[int]) -> None:
    key = os.urandom(32)
    plaintext = os.urandom(size)
    reader = EncryptingReader(key, AD, io.BytesIO(plaintext), segment_size)
    parts, turn = [], 0
    while True:
        want = read_sizes[turn % len(read_sizes)]
        turn += 1
        if turn % 2:
            part = reader.read(want)
        else:
            buffer = bytearray(want)
            part = bytes(buffer[: reader.readinto(buffer)])
        if not part:
            break
        assert len(part) <= want
        parts.append(part)
    ciphertext = b"".join(parts)
    assert len(ciphertext) == ciphertext_size(size, segment_size)

    decrypting = DecryptingReader(key, AD, io.BytesIO(ciphertext), segment_size)
    out = bytearray()
    buffer = bytearray(read_sizes[0])
    while count := decrypting.readinto(buffer):
        out += buffer[:count]
    assert bytes(out) == plaintext
    assert decrypting.plaintext_bytes == size


def test_encrypt_stream_yields_header_then_segments(key: bytes) -> None:
    plaintext = os.urandom(8 + 3 * 48 + 12)
    chunks = list(encrypt_stream(key, AD, io.BytesIO(plaintext), 64))
    assert [len(chunk) for chunk in chunks] == [HEADER_SIZE, 24, 64, 64, 64, 12 + TAG_SIZE]
    assert decrypt(key, b"".join(chunks), 64) == plaintext


def test_decrypt_stream_yields_one_segment_at_a_time(key: bytes) -> None:
    plaintext = os.urandom(100)
    chunks = list(decrypt_stream(key, AD, io.BytesIO(encrypt(key, plaintext, 64)), 64))
    assert [len(chunk) for chunk in chunks] == [8, 48, 44]


def test_readers_are_file_objects(key: bytes) -> None:
    plaintext = os.urandom(150)
    source = io.BytesIO(plaintext)
    reader = EncryptingReader(key, AD, source, 64)
    assert reader.readable() and not reader.writable() and not reader.seekable()
    assert reader.read(0) == b""
    ciphertext = reader.read(None)
    assert reader.read(5) == b"" and reader.readinto(bytearray(5)) == 0
    reader.close()
    assert not source.closed  # the caller owns the source
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)

    with DecryptingReader(key, AD, io.BytesIO(ciphertext), 64) as decrypting:
        assert decrypting.read(3) == plaintext[:3]
        assert decrypting.readall() == plaintext[3:]
    with pytest.raises(ValueError, match="closed"):
        decrypting.readinto(bytearray(1))


def test_closing_a_half_read_reader_is_clean(key: bytes) -> None:
    reader = EncryptingReader(key, AD, io.BytesIO(os.urandom(500)), 64)
    reader.read(50)
    reader.close()
    reader.close()
    assert reader.closed


def test_a_failing_source_stops_encryption_for_good(key: bytes) -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            self.calls += 1
            if self.calls > 2:
                raise OSError("disk went away")
            memoryview(buffer)[:1] = b"x"
            return 1

    reader = EncryptingReader(key, AD, Broken(), 64)
    assert len(reader.read(1000)) == HEADER_SIZE
    with pytest.raises(OSError, match="disk went away"):
        reader.read(1000)
    # A retry must not look like a clean end of file with a digest of a partial upload.
    with pytest.raises(CryptoError, match="cannot be continued"):
        reader.read(1000)
    with pytest.raises(CryptoError):
        _ = reader.sha256


def test_segment_size_must_match_between_encryption_and_decryption(key: bytes) -> None:
    ciphertext = encrypt(key, os.urandom(500), 64)
    with pytest.raises(DecryptionError):
        decrypt(key, ciphertext, 128)


def test_associated_data_is_canonical_and_distinct() -> None:
    assert associated_data(12, 3) == b"vault:document:12:version:3"
    assert associated_data(1, 23) != associated_data(12, 3)
    assert associated_data(0, 0) == b"vault:document:0:version:0"


@pytest.mark.parametrize(
    ("document_id", "version", "error"),
    [(-1, 1, ValueError), (1, -1, ValueError), ("1", 1, TypeError), (1, 1.0, TypeError), (True, 1, TypeError)],
)
def test_associated_data_rejects_bad_input(document_id, version, error) -> None:
    with pytest.raises(error):
        associated_data(document_id, version)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"key": b"short"}, CryptoError, "key must be 32 bytes"),
        ({"key": "k" * 32}, TypeError, "key must be bytes"),
        ({"associated_data": None}, TypeError, "associated_data must be bytes"),
        ({"associated_data": "vault:document:1:version:1"}, TypeError, "associated_data must be bytes"),
        ({"segment_size": MIN_SEGMENT_SIZE - 1}, ValueError, "segment_size must be between"),
        ({"segment_size": MAX_SEGMENT_SIZE + 1}, ValueError, "segment_size must be between"),
        ({"segment_size": 4096.0}, TypeError, "segment_size must be an int"),
        ({"segment_size": True}, TypeError, "segment_size must be an int"),
    ],
)
def test_invalid_arguments_are_refused_at_the_call(kwargs, error, message) -> None:
    arguments = {"key": os.urandom(32), "associated_data": AD, "source": io.BytesIO(b""), "segment_size": 64}
    arguments.update(kwargs)
    for function in (EncryptingReader, encrypt_stream, decrypt_stream, DecryptingReader):
        with pytest.raises(error, match=message):
            function(**arguments)


def test_a_reader_whose_arguments_were_refused_closes_quietly() -> None:
    # What the finalizer of a reader finds when its __init__ raised before it had chunks (Python 3.13
    # reports an exception raised there, which failed the test above).
    for reader_class in (EncryptingReader, DecryptingReader):
        reader = reader_class.__new__(reader_class)
        reader.close()
        assert reader.closed


def test_bytes_like_key_and_associated_data_are_accepted(key: bytes) -> None:
    ciphertext = EncryptingReader(bytearray(key), memoryview(AD), io.BytesIO(b"abc")).read()
    assert decrypt(key, ciphertext) == b"abc"


def test_ciphertext_size_matches_the_layout() -> None:
    assert ciphertext_size(0) == HEADER_SIZE + TAG_SIZE
    assert ciphertext_size(SEGMENT_SIZE - HEADER_SIZE - TAG_SIZE) == SEGMENT_SIZE
    assert ciphertext_size(SEGMENT_SIZE - HEADER_SIZE - TAG_SIZE + 1) == SEGMENT_SIZE + 1 + TAG_SIZE
    gib = 1 << 30
    segments = -(-(gib + HEADER_SIZE) // (SEGMENT_SIZE - TAG_SIZE))
    assert ciphertext_size(gib) == HEADER_SIZE + gib + segments * TAG_SIZE
    for bad in (-1, 1.5, None):
        with pytest.raises(ValueError, match="plaintext_size"):
            ciphertext_size(bad)


@pytest.mark.usefixtures("small_segments")
def test_the_segment_index_cannot_overflow(key: bytes) -> None:
    fits = first_plaintext_size(64) + 2 * (64 - TAG_SIZE)  # exactly three segments
    ciphertext = encrypt(key, os.urandom(fits), 64)
    assert decrypt(key, ciphertext, 64) and ciphertext_size(fits, 64) == len(ciphertext)

    with pytest.raises(CryptoError, match="too long"):
        encrypt(key, os.urandom(fits + 1), 64)
    with pytest.raises(CryptoError, match="too long"):
        ciphertext_size(fits + 1, 64)


def test_decryption_refuses_more_segments_than_the_index_allows(key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    ciphertext = encrypt(key, os.urandom(200), 64)
    monkeypatch.setattr("crypto.stream._MAX_SEGMENTS", 3)
    with pytest.raises(DecryptionError):
        decrypt(key, ciphertext, 64)
