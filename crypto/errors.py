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


class KeyringChanged(KeyringError):
    """Another process changed the keyring so that a rotation would not make the key its caller expected.

    A caller that records a key before it is made (`vault keys rotate`) asks for that key by id; made
    under another id, the record would name a key that does not exist and miss the one that does."""

    def __init__(self, expected: str, next_key_id: str, active_key_id: str) -> None:
        super().__init__(f"the keyring changed meanwhile: the next master key would be {next_key_id}, "
                         f"not {expected} (now active: {active_key_id})")
        self.expected = expected
        self.next_key_id = next_key_id
        self.active_key_id = active_key_id
