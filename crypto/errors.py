"""Exceptions raised by the crypto package.

Decryption has exactly one failure type on purpose: telling a caller (or an
attacker watching error messages) *why* a ciphertext was refused — bad tag,
wrong key, truncated stream, altered header — would turn the decryptor into
an oracle. Keyring problems, on the other hand, are operator mistakes and get
messages that say precisely what to fix.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class for every error raised by the crypto package."""


class DecryptionError(CryptoError):
    """The ciphertext could not be authenticated.

    Raised for every kind of decryption failure without saying which one, so
    that callers cannot leak the reason and need only one ``except`` clause.
    """

    MESSAGE = "ciphertext could not be authenticated"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class KeyringError(CryptoError):
    """The keyring file or a key in it cannot be used as asked."""
