"""Our ciphertexts are Tink's AES256_GCM_HKDF streaming ciphertexts, both ways.

A Tink keyset is built around the same raw key, so any Tink implementation
holding a data key can read vault's files, and vault can read Tink's.
"""

from __future__ import annotations

import io
import os

import pytest
import tink
from tink import cleartext_keyset_handle, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

from crypto import SEGMENT_SIZE, EncryptingReader, associated_data, ciphertext_size, decrypt_stream
from crypto.stream import TAG_SIZE
from tests.crypto.helpers import first_plaintext_size

TYPE_URL = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"
AD = associated_data(41, 5)


def tink_primitive(raw_key: bytes, segment_size: int) -> streaming_aead.StreamingAead:
    streaming_aead.register()
    key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
        version=0,
        key_value=raw_key,
        params=aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
            ciphertext_segment_size=segment_size,
            derived_key_size=32,
            hkdf_hash_type=common_pb2.SHA256,
        ),
    )
    keyset = tink_pb2.Keyset(
        primary_key_id=1,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url=TYPE_URL,
                    value=key.SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=1,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    return cleartext_keyset_handle.from_keyset(keyset).primitive(streaming_aead.StreamingAead)


class KeepOnClose(io.BytesIO):
    """Tink closes the destination it writes to; keep the bytes when it does."""

    value = b""

    def close(self) -> None:
        if not self.closed:
            self.value = self.getvalue()
        super().close()


def tink_encrypt(primitive: streaming_aead.StreamingAead, plaintext: bytes, data: bytes) -> bytes:
    destination = KeepOnClose()
    with primitive.new_encrypting_stream(destination, data) as stream:
        stream.write(plaintext)
    return destination.value


def tink_decrypt(primitive: streaming_aead.StreamingAead, ciphertext: bytes, data: bytes) -> bytes:
    out = bytearray()
    with primitive.new_decrypting_stream(io.BytesIO(ciphertext), data) as stream:
        while chunk := stream.read(1 << 16):
            out += chunk
    return bytes(out)


def sizes(segment_size: int) -> list[int]:
    first = first_plaintext_size(segment_size)
    later = segment_size - TAG_SIZE
    return [0, 1, first - 1, first, first + 1, first + later, first + 3 * later + later // 2]


CASES = [(segment_size, size) for segment_size in (64, 4096, SEGMENT_SIZE) for size in sizes(segment_size)]


@pytest.mark.parametrize(("segment_size", "size"), CASES)
def test_tink_decrypts_what_we_encrypt(key: bytes, segment_size: int, size: int) -> None:
    plaintext = os.urandom(size)
    ciphertext = EncryptingReader(key, AD, io.BytesIO(plaintext), segment_size).read()
    assert tink_decrypt(tink_primitive(key, segment_size), ciphertext, AD) == plaintext


@pytest.mark.parametrize(("segment_size", "size"), CASES)
def test_we_decrypt_what_tink_encrypts(key: bytes, segment_size: int, size: int) -> None:
    plaintext = os.urandom(size)
    ciphertext = tink_encrypt(tink_primitive(key, segment_size), plaintext, AD)
    assert len(ciphertext) == ciphertext_size(size, segment_size)
    assert b"".join(decrypt_stream(key, AD, io.BytesIO(ciphertext), segment_size)) == plaintext


def test_tink_also_binds_the_associated_data(key: bytes) -> None:
    ciphertext = EncryptingReader(key, AD, io.BytesIO(b"contract"), 4096).read()
    with pytest.raises(tink.TinkError):
        tink_decrypt(tink_primitive(key, 4096), ciphertext, associated_data(41, 6))
