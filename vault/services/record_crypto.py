"""Sealing the sensitive parts of a customer record: AES-GCM under the customer's own data key.

Each customer has one 32-byte data key, made at its record's creation and stored only wrapped by the
keyring's active master key (context: the customer id), like the data keys of files, so `vault keys
rotate` re-wraps it without touching the sealed fields. Every sealed value is nonce ‖ ciphertext ‖ tag of
a JSON document; its associated data names the customer and the field group ("contacts", "terms",
"notes", "version:3", "log:17"), so a value copied to another customer or another field fails to open
instead of showing up in the wrong place.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto import CryptoError, new_data_key
from vault.core.errors import ServiceError
from vault.models import CustomerRecord
from vault.runtime import Runtime

NONCE = 12


class RecordDamaged(ServiceError):
    """A sealed value or a wrapped key does not authenticate: damage to restore from a backup, told as a
    conflict with the stored state (the request itself was fine, and nothing is half-shown)."""

    status = 409


def key_context(customer_id: int) -> bytes:
    """What a customer's wrapped data key is bound to."""
    return f"vault:customer-record:{customer_id}".encode()


def field_context(customer_id: int, group: str) -> bytes:
    return f"vault:customer-record:{customer_id}:{group}".encode()


def new_record_key(rt: Runtime, customer_id: int) -> tuple[str, bytes, bytes]:
    """A fresh data key for a customer: (master key id, wrapped key, the key itself)."""
    dek = new_data_key()
    key_id, wrapped = rt.keyring.wrap(dek, key_context(customer_id))
    return key_id, wrapped, dek


def record_key(rt: Runtime, record: CustomerRecord) -> bytes:
    """The customer's data key, unwrapped.

    Raises:
        ServiceError: the wrapped key does not open (damage, or a dropped master key).
    """
    try:
        return rt.keyring.unwrap(record.key_id, record.wrapped_key, key_context(record.customer_id))
    except CryptoError:
        raise RecordDamaged("record_damaged", f"The record of customer {record.customer_id} cannot be opened; "
                            "restore it from a backup.") from None


def seal(key: bytes, customer_id: int, group: str, value: Any) -> bytes:
    """Encrypt `value` (anything JSON can hold) for one customer's field group."""
    nonce = secrets.token_bytes(NONCE)
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return nonce + AESGCM(key).encrypt(nonce, plain, field_context(customer_id, group))


def open_sealed(key: bytes, customer_id: int, group: str, sealed: bytes | None, default: Any = None) -> Any:
    """Decrypt a value made by `seal`; `default` when there is none.

    Raises:
        ServiceError: the value was altered or belongs to another customer or group.
    """
    if sealed is None:
        return default
    try:
        plain = AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], field_context(customer_id, group))
    except (InvalidTag, ValueError):
        raise RecordDamaged("record_damaged", f"A sealed field ({group}) of customer {customer_id} does not "
                            "authenticate.") from None
    return json.loads(plain.decode("utf-8"))
