"""The encryption format refuses every corruption: bit flips, truncations, extensions, splices of two
ciphertexts, segments dropped, repeated or swapped, and a corrupted or misdirected wrapped key.

Whatever the corruption, decryption ends in `crypto.DecryptionError`, and whatever it handed out
before that is a prefix of the true plaintext made of whole authenticated segments: never a byte of
wrong plaintext. Small segments make every file several segments long, so the cuts and swaps fall
on segment boundaries as well as inside them.
"""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import DecryptingReader, DecryptionError, Keyring, associated_data, decrypt_stream, encrypt_stream
from crypto.stream import HEADER_SIZE, TAG_SIZE

SEGMENT = 96  # ciphertext bytes per segment: the first holds 40 plaintext bytes, the others 80
KEY = bytes(range(32))
AD = associated_data(7, 1)

plaintexts = st.binary(min_size=0, max_size=700)


def encrypt(plaintext: bytes, key: bytes = KEY, ad: bytes = AD) -> bytes:
    return b"".join(encrypt_stream(key, ad, io.BytesIO(plaintext), SEGMENT))


def segments(ciphertext: bytes) -> list[bytes]:
    """The header and the segments of a ciphertext, as stored (the last segment may be shorter)."""
    parts = [ciphertext[:HEADER_SIZE], ciphertext[HEADER_SIZE:SEGMENT]]
    rest = ciphertext[SEGMENT:]
    parts += [rest[i:i + SEGMENT] for i in range(0, len(rest), SEGMENT)]
    return [part for part in parts if part]


def assert_refused(plaintext: bytes, corrupted: bytes, key: bytes = KEY, ad: bytes = AD) -> None:
    """Decrypting `corrupted` fails, having handed out only genuine whole segments of `plaintext`."""
    delivered = []
    try:
        for chunk in decrypt_stream(key, ad, io.BytesIO(corrupted), SEGMENT):
            delivered.append(chunk)
    except DecryptionError:
        pass
    else:
        raise AssertionError(f"a corrupted ciphertext decrypted ({len(corrupted)} bytes)")
    handed_out = b"".join(delivered)
    assert plaintext.startswith(handed_out), "plaintext that is not the file's was handed out"
    for chunk in delivered:
        assert len(chunk) in (SEGMENT - HEADER_SIZE - TAG_SIZE, SEGMENT - TAG_SIZE), "a partial segment"
    # The file-object interface says the same, and keeps saying it.
    reader = DecryptingReader(key, ad, io.BytesIO(corrupted), SEGMENT)
    for _ in range(2):
        try:
            while reader.read(37):
                pass
        except DecryptionError:
            continue
        raise AssertionError("the reader reached the end of a corrupted ciphertext")


@settings(max_examples=300, deadline=None)
@given(plaintext=plaintexts, data=st.data())
def test_any_bit_flip_is_refused(plaintext: bytes, data: st.DataObject) -> None:
    ciphertext = bytearray(encrypt(plaintext))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(ciphertext) - 1), st.integers(0, 7)),
                               min_size=1, max_size=4, unique_by=lambda flip: flip))
    for position, bit in flips:
        ciphertext[position] ^= 1 << bit
    # Each (byte, bit) is flipped once, so the result always differs from the genuine ciphertext.
    assert_refused(plaintext, bytes(ciphertext))


@settings(max_examples=200, deadline=None)
@given(plaintext=plaintexts, data=st.data())
def test_any_truncation_or_extension_is_refused(plaintext: bytes, data: st.DataObject) -> None:
    ciphertext = encrypt(plaintext)
    cut = data.draw(st.integers(0, len(ciphertext) - 1), label="cut")
    assert_refused(plaintext, ciphertext[:cut])
    tail = data.draw(st.binary(min_size=1, max_size=2 * SEGMENT), label="tail")
    assert_refused(plaintext, ciphertext + tail)
    # A whole extra segment, copied from the file itself, is not accepted either.
    assert_refused(plaintext, ciphertext + ciphertext[HEADER_SIZE:SEGMENT])


@settings(max_examples=200, deadline=None)
@given(first=plaintexts, second=plaintexts, data=st.data())
def test_splices_of_two_ciphertexts_are_refused(first: bytes, second: bytes, data: st.DataObject) -> None:
    """Two files under the same data key and binding (the strongest splice an attacker could make)."""
    a, b = encrypt(first), encrypt(second)
    i = data.draw(st.integers(0, len(a)), label="end of the part of the first")
    j = data.draw(st.integers(0, len(b)), label="start of the part of the second")
    spliced = a[:i] + b[j:]
    if spliced in (a, b):
        return  # a whole, genuine ciphertext: nothing was spliced
    assert_refused(first if spliced[:HEADER_SIZE] == a[:HEADER_SIZE] else second, spliced)


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(min_size=SEGMENT, max_size=700), data=st.data())
def test_segments_dropped_repeated_or_swapped_are_refused(plaintext: bytes, data: st.DataObject) -> None:
    parts = segments(encrypt(plaintext))
    header, body = parts[0], parts[1:]
    assert len(body) >= 2
    order = data.draw(st.lists(st.integers(0, len(body) - 1), min_size=1, max_size=len(body) + 1), label="order")
    if order == list(range(len(body))):
        return
    assert_refused(plaintext, header + b"".join(body[k] for k in order))


@settings(max_examples=100, deadline=None)
@given(plaintext=st.binary(max_size=300), document=st.integers(0, 2**31 - 1), version=st.integers(0, 99))
def test_a_ciphertext_moved_to_another_document_or_version_is_refused(plaintext: bytes, document: int,
                                                                      version: int) -> None:
    """Swapping stored objects between documents or versions: the binding refuses it."""
    if (document, version) == (7, 1):
        return
    assert_refused(plaintext, encrypt(plaintext), ad=associated_data(document, version))
    other_key = bytes(reversed(KEY))
    assert_refused(plaintext, encrypt(plaintext), key=other_key)


def test_a_corrupted_or_misdirected_wrapped_key_is_refused(tmp_path) -> None:
    keyring = Keyring.create(tmp_path / "keyring.json")
    context = associated_data(3, 2)
    key_id, wrapped = keyring.wrap(KEY, context)
    assert keyring.unwrap(key_id, wrapped, context) == KEY

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def corrupted(data: st.DataObject) -> None:
        damaged = bytearray(wrapped)
        kind = data.draw(st.sampled_from(["flip", "cut", "extend", "context"]))
        if kind == "flip":
            position = data.draw(st.integers(0, len(damaged) - 1))
            damaged[position] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            damaged = damaged[:data.draw(st.integers(0, len(damaged) - 1))]
        elif kind == "extend":
            damaged += data.draw(st.binary(min_size=1, max_size=16))
        where = context
        if kind == "context":
            where = associated_data(data.draw(st.integers(0, 99)), data.draw(st.integers(0, 99)))
            if where == context:
                return
        try:
            keyring.unwrap(key_id, bytes(damaged), where)
        except DecryptionError:
            return
        raise AssertionError(f"a {kind} wrapped key was unwrapped")

    corrupted()
