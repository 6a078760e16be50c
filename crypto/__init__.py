"""Encryption for vault: streaming file encryption and the keys behind it.

Files are encrypted with :mod:`crypto.stream` (Tink's AES256_GCM_HKDF streaming
format) under a per-version data key; data keys are wrapped by the master keys
of :mod:`crypto.keyring`. Every decryption failure is one
:class:`DecryptionError`.
"""

from crypto.errors import CryptoError, DecryptionError, KeyringChanged, KeyringError
from crypto.keyring import Keyring, new_data_key
from crypto.stream import (
    SEGMENT_SIZE,
    DecryptingReader,
    EncryptingReader,
    associated_data,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
)

__all__ = [
    "SEGMENT_SIZE",
    "CryptoError",
    "DecryptingReader",
    "DecryptionError",
    "EncryptingReader",
    "Keyring",
    "KeyringChanged",
    "KeyringError",
    "associated_data",
    "ciphertext_size",
    "decrypt_stream",
    "encrypt_stream",
    "new_data_key",
]
