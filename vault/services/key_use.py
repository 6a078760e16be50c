"""A data key wrapped before its row commits is made safe against `vault keys drop` at the commit.

An upload wraps its data key under the active master key before it streams the file, and its row
commits at the end of the request; meanwhile `vault keys rotate`, the re-wrap and `vault keys drop`
of the old key can all run in other processes. The drop counts committed rows only, so without this
it would delete the key the upload's row is about to name, and that version could never be read.

`settle` runs in the transaction that will commit the row, just before the row is written: it takes
the key lock shared (`vault.db.key_lock`; a drop takes it exclusive before counting, so it waits for
this commit), reloads the keyring file, and if the data key's master key is no longer the active one
(retired, or already dropped) wraps the data key again, still in memory, under the active key. A key
dropped before this point is thus never named, and one retired after it is counted by any later drop.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from vault.db import key_lock
from vault.runtime import Runtime


def settle(rt: Runtime, session: Session, key_id: str, wrapped: bytes, dek: bytes,
           context: bytes) -> tuple[str, bytes]:
    """The (key id, wrapped key) to store for `dek`: as given if its master key is still active, else
    wrapped again under the active key. Holds the key lock until `session`'s transaction ends.

    Raises:
        crypto.KeyringError: the keyring file became unreadable (as at start-up).
    """
    key_lock.hold_shared(session)
    rt.keyring.refresh()
    if key_id == rt.keyring.active_key_id:
        return key_id, wrapped
    return rt.keyring.wrap(dek, context)
