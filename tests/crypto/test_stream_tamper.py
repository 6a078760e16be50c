"""Every way of altering a ciphertext must end in one DecryptionError, with no unauthenticated byte out."""

from __future__ import annotations

import io
import os

import pytest

from crypto import DecryptingReader, DecryptionError, EncryptingReader, associated_data, decrypt_stream
from crypto.stream import HEADER_SIZE, TAG_SIZE
from tests.crypto.helpers import first_plaintext_size, split_segments

SEGMENT = 64
AD = associated_data(3, 2)
# First segment, two full ones and a partial last one: every kind of segment is present.
PLAINTEXT_SIZE = first_plaintext_size(SEGMENT) + 2 * (SEGMENT - TAG_SIZE) + 10


@pytest.fixture
def plaintext() -> bytes:
    return os.urandom(PLAINTEXT_SIZE)


@pytest.fixture
def ciphertext(key: bytes, plaintext: bytes) -> bytes:
    return EncryptingReader(key, AD, io.BytesIO(plaintext), SEGMENT).read()


def refused(key: bytes, ciphertext: bytes, data: bytes = AD, segment_size: int = SEGMENT) -> bool:
    try:
        for _ in decrypt_stream(key, data, io.BytesIO(ciphertext), segment_size):
            pass
    except DecryptionError as error:
        assert str(error) == "ciphertext could not be authenticated"
        # No chained exception either: a traceback must not tell which check failed.
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
        return True
    return False


def test_the_untouched_ciphertext_decrypts(key: bytes, ciphertext: bytes, plaintext: bytes) -> None:
    assert not refused(key, ciphertext)
    assert b"".join(decrypt_stream(key, AD, io.BytesIO(ciphertext), SEGMENT)) == plaintext


def test_every_single_bit_flip_is_refused(key: bytes, ciphertext: bytes) -> None:
    assert len(ciphertext) == HEADER_SIZE + 24 + 2 * SEGMENT + 10 + TAG_SIZE
    accepted = []
    for position in range(len(ciphertext)):
        for bit in range(8):
            altered = bytearray(ciphertext)
            altered[position] ^= 1 << bit
            if not refused(key, bytes(altered)):
                accepted.append((position, bit))
    assert accepted == []


def test_every_truncation_is_refused(key: bytes, ciphertext: bytes) -> None:
    # Includes the cuts exactly on segment boundaries, where every remaining segment is intact.
    accepted = [length for length in range(len(ciphertext)) if not refused(key, ciphertext[:length])]
    assert accepted == []


def test_a_cut_on_a_segment_boundary_fails_after_the_intact_segments(key: bytes, ciphertext: bytes) -> None:
    header, segments = split_segments(ciphertext, SEGMENT)
    cut = header + segments[0] + segments[1]
    chunks = decrypt_stream(key, AD, io.BytesIO(cut), SEGMENT)
    assert len(next(chunks)) == first_plaintext_size(SEGMENT)
    with pytest.raises(DecryptionError):
        next(chunks)


@pytest.mark.parametrize(
    "rearrange",
    [
        pytest.param(lambda s: [s[0], s[2], s[1], s[3]], id="swap-middle"),
        pytest.param(lambda s: [s[0], s[1], s[1], s[2], s[3]], id="duplicate"),
        pytest.param(lambda s: [s[0], s[2], s[3]], id="drop-middle"),
        pytest.param(lambda s: [s[0], s[1], s[2]], id="drop-last"),
        pytest.param(lambda s: [s[0], s[1], s[2], s[3], s[3]], id="repeat-last"),
        pytest.param(lambda s: [s[0], s[1], s[2], s[3], s[1]], id="append-a-segment"),
    ],
)
def test_rearranged_segments_are_refused(key: bytes, ciphertext: bytes, rearrange) -> None:
    header, segments = split_segments(ciphertext, SEGMENT)
    assert len(segments) == 4
    assert refused(key, header + b"".join(rearrange(segments)))


def test_segments_of_another_ciphertext_are_refused(key: bytes, ciphertext: bytes, plaintext: bytes) -> None:
    other = EncryptingReader(key, AD, io.BytesIO(plaintext), SEGMENT).read()
    header, segments = split_segments(ciphertext, SEGMENT)
    other_header, other_segments = split_segments(other, SEGMENT)
    assert refused(key, other_header + b"".join(segments))
    assert refused(key, header + other_segments[0] + b"".join(segments[1:]))


@pytest.mark.parametrize(
    ("offset", "replacement"),
    [
        pytest.param(0, bytes([HEADER_SIZE - 16]), id="header-length-24"),
        pytest.param(0, b"\x00", id="header-length-0"),
        pytest.param(0, b"\xff", id="header-length-255"),
        pytest.param(1, os.urandom(32), id="salt"),
        pytest.param(33, os.urandom(7), id="nonce-prefix"),
    ],
)
def test_header_changes_are_refused(key: bytes, ciphertext: bytes, offset: int, replacement: bytes) -> None:
    altered = bytearray(ciphertext)
    altered[offset : offset + len(replacement)] = replacement
    assert bytes(altered) != ciphertext
    assert refused(key, bytes(altered))


def test_a_header_from_another_key_is_refused(key: bytes, ciphertext: bytes) -> None:
    other = EncryptingReader(os.urandom(32), AD, io.BytesIO(b"x"), SEGMENT).read()
    assert refused(key, other[:HEADER_SIZE] + ciphertext[HEADER_SIZE:])


def test_wrong_associated_data_is_refused(key: bytes, ciphertext: bytes) -> None:
    assert refused(key, ciphertext, data=associated_data(3, 1))
    assert refused(key, ciphertext, data=associated_data(4, 2))
    assert refused(key, ciphertext, data=b"")


def test_wrong_key_is_refused(key: bytes, ciphertext: bytes) -> None:
    assert refused(os.urandom(32), ciphertext)
    flipped = bytes([key[0] ^ 1]) + key[1:]
    assert refused(flipped, ciphertext)


@pytest.mark.parametrize("extra", [b"\x00", os.urandom(TAG_SIZE), os.urandom(SEGMENT)],
                         ids=["one-byte", "one-tag", "one-segment"])
def test_trailing_data_is_refused(key: bytes, ciphertext: bytes, extra: bytes) -> None:
    assert refused(key, ciphertext + extra)


def test_trailing_data_after_a_full_last_segment_is_refused(key: bytes) -> None:
    exact = first_plaintext_size(SEGMENT) + SEGMENT - TAG_SIZE  # last segment is full
    ciphertext = EncryptingReader(key, AD, io.BytesIO(os.urandom(exact)), SEGMENT).read()
    assert len(ciphertext) == 2 * SEGMENT
    assert not refused(key, ciphertext)
    assert refused(key, ciphertext + b"\x00")


@pytest.mark.parametrize(
    "ciphertext",
    [b"", bytes([HEADER_SIZE]), bytes([HEADER_SIZE]) + os.urandom(HEADER_SIZE - 1), os.urandom(200)],
    ids=["empty", "length-byte-only", "header-only", "random"],
)
def test_inputs_that_were_never_ciphertexts_are_refused(key: bytes, ciphertext: bytes) -> None:
    assert refused(key, ciphertext)


def test_a_bad_first_segment_fails_before_any_byte(key: bytes, ciphertext: bytes) -> None:
    altered = bytearray(ciphertext)
    altered[HEADER_SIZE + 2] ^= 0x80
    chunks = decrypt_stream(key, AD, io.BytesIO(bytes(altered)), SEGMENT)
    with pytest.raises(DecryptionError):
        next(chunks)


def test_a_bad_later_segment_fails_midway(key: bytes, ciphertext: bytes, plaintext: bytes) -> None:
    altered = bytearray(ciphertext)
    altered[-3] ^= 0x01  # inside the last segment's tag
    chunks = decrypt_stream(key, AD, io.BytesIO(bytes(altered)), SEGMENT)
    delivered = next(chunks) + next(chunks) + next(chunks)
    assert delivered == plaintext[: len(delivered)]
    with pytest.raises(DecryptionError):
        next(chunks)


def test_a_decrypting_reader_keeps_failing_after_an_error(key: bytes, ciphertext: bytes) -> None:
    altered = bytearray(ciphertext)
    altered[HEADER_SIZE + 24 + 5] ^= 0x01  # second segment
    reader = DecryptingReader(key, AD, io.BytesIO(bytes(altered)), SEGMENT)
    assert len(reader.read(1000)) == first_plaintext_size(SEGMENT)
    for _ in range(2):
        # An exhausted stream after a failure must never read as a clean, short end of file.
        with pytest.raises(DecryptionError):
            reader.read(1000)
    with pytest.raises(DecryptionError):
        reader.readinto(bytearray(10))
    assert reader.plaintext_bytes == first_plaintext_size(SEGMENT)
