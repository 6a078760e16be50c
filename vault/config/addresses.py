"""E-mail addresses: one syntax check and one normal form, shared by settings, the CLI and the account page.

Deliberately strict and simple (one `@`, a dotted domain, no spaces, no display name): an address is
used as an SMTP envelope recipient, where anything cleverer is a way to smuggle a second recipient or
a header into the message.
"""

from __future__ import annotations

import re

MAX_LENGTH = 254
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z")


MASK = "•••"


def masked(address: str) -> str:
    """The address with its mailbox hidden: ``•••@example.com``; what is shown or kept of an address once the
    whole of it is no longer needed (a sent mail, the answer that a password link was sent)."""
    _local, at, domain = address.rpartition("@")
    return f"{MASK}@{domain}" if at else MASK


class InvalidAddress(ValueError):
    """Not an address we send to."""


def normalize(address: str) -> str:
    """The address trimmed and lower-cased (so uniqueness ignores case, as every real mailbox does).

    Raises:
        InvalidAddress: empty, too long, or not `local@domain.tld`.
    """
    value = (address or "").strip().lower()
    if not value or len(value) > MAX_LENGTH or not _ADDRESS.match(value):
        raise InvalidAddress(f"{address!r} is not an e-mail address")
    return value


def is_valid(address: str) -> bool:
    try:
        normalize(address)
    except InvalidAddress:
        return False
    return True
