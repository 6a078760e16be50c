"""What the outbox keeps of a mail once it is sent: enough to know that it went, not where or what it said.

A row waiting to be sent needs its address and text; a sent one (or one bundled into a digest, whose text
the digest carries) needs neither. Kept for ever, they made the outbox a list of every address ever written
to, and a customer's letter kept its single-use answer link readable by anyone with a copy of the database.
A sent row keeps the person (`recipient_user_id`), the address masked to its domain (which mail server took
it), the kind, the subject and its times; failed mail keeps everything, for an operator's repair, except a
password link's (`FORGET_ON_FAILURE`): its text is a key to someone's account. A customer letter withheld
for a reason that may pass keeps everything too (`vault.mail.audience`); a withheld or failed letter keeps
it until it is re-issued, or the maintenance sweep finds that no repair may send it any more or that its
link expired longer ago than `VAULT_LETTER_KEEP_DAYS` (`letters.forget_unsendable`).

De-duplication must still recognise a mail after its address is gone, so its key carries a keyed hash of
the address (`address_key`) rather than the address.
"""

from __future__ import annotations

import hashlib
import hmac

from vault.config.addresses import MASK, masked
from vault.config.settings import Settings
from vault.mail.kinds import Kind
from vault.models.mail import forgotten

__all__ = ["FORGET_ON_FAILURE", "MASK", "address_key", "forgotten", "masked"]

# Mail whose text is a key to an account (a password link): forgotten when it fails for good as well. Failed
# mail is otherwise kept whole for an operator's repair, but this one's repair is a new link, not a resend,
# and its text would leave the link readable in the database until it expired.
# A customer letter is not here: its row keeps only its link's hash, and nothing makes a letter again for
# the same change (nor knows an earlier address), so its kept text is the only way to repair it.
FORGET_ON_FAILURE: frozenset[str] = frozenset({str(Kind.PASSWORD_LINK)})


def address_key(settings: Settings | None, address: str) -> str:
    """A stand-in for an address in de-duplication keys: the same address gives the same key, and the key
    does not give the address back (keyed with the application's secret, so a list of known addresses
    cannot be hashed to find which were written to)."""
    secret = (settings.secret_key if settings else "").encode("utf-8")
    return hmac.new(secret, address.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
