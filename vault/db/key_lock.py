"""The lock that keeps `vault keys drop` from deleting a master key an uncommitted data key still names.

A data key is wrapped before its row commits (an upload wraps before it streams, and commits at the
end), and a drop counts only committed rows. So a transaction that is about to commit a wrapped data
key holds this lock *shared* from its last look at the keyring until its commit, and a drop takes it
*exclusive* before it counts: a drop then either ends before the writer's look (which then sees the
key gone and wraps again) or waits for the writer's commit (and then counts its row).

PostgreSQL: a transaction-level advisory lock, released by the commit or rollback, that writers share
with each other (uploads never wait for uploads). SQLite: every transaction already holds the one write
lock from its first statement (BEGIN IMMEDIATE, see `engine`), so a statement that opens the
transaction is all it takes; the drop's wait is then the BEGIN's, bounded by the same
`EXCLUSIVE_WAIT_SECONDS` as PostgreSQL's lock_timeout (`engine.BEGIN_WAIT`), not by the connection's
60-second busy timeout.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from vault.db.engine import BEGIN_WAIT

# The advisory lock's id: any fixed 64-bit number no other lock of the database uses ("vaultkek").
LOCK_ID = 0x7661756C74_6B656B

# How long a drop waits for writers under way before it gives up. An upload holds the lock shared only
# from its last look at the keyring to its commit (milliseconds), so a longer wait means writers keep
# coming or one is stuck; an operator's command should then say so rather than hang without end. The same
# bound on both databases.
EXCLUSIVE_WAIT_SECONDS = 5.0


class KeyLockBusy(Exception):
    """The key lock stayed held by writers of data keys for longer than the drop would wait."""


def hold_shared(session: Session) -> None:
    """Until this transaction ends, keep every master key drop waiting (writers of data keys share it)."""
    _take(session, "pg_advisory_xact_lock_shared")


def hold_exclusive(session: Session, *, wait_seconds: float = EXCLUSIVE_WAIT_SECONDS) -> None:
    """Until this transaction ends, keep out every writer of data keys, and wait for those under way at
    most `wait_seconds` on either database.

    On SQLite the lock is the transaction's write lock, taken by its BEGIN: called first in a transaction
    it bounds that BEGIN's wait (the connection keeps its usual busy timeout for everything else, and
    goes back to the pool with it); called later, the transaction holds the lock already.

    Raises:
        KeyLockBusy: the lock was not had in time; the transaction is unusable and must be rolled back.
    """
    try:
        if session.get_bind().dialect.name == "postgresql":
            # SET LOCAL: only this transaction waits no longer, and the writers it waits for are not hurried.
            session.execute(text(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'"))
        elif not session.in_transaction():
            session.connection(execution_options={BEGIN_WAIT: wait_seconds})
        _take(session, "pg_advisory_xact_lock")
    except (OperationalError, sqlite3.OperationalError) as exc:
        # SQLite's wait for another thread of this process ends in the driver's own error (`engine`).
        if _lock_not_had(exc):
            raise KeyLockBusy() from exc
        raise


def _lock_not_had(exc: Exception) -> bool:
    """PostgreSQL's lock_not_available (55P03), or SQLite's busy timeout ("database is locked")."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "55P03" or "database is locked" in str(orig)


def _take(session: Session, function: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT {function}(:lock)"), {"lock": LOCK_ID})
    else:
        session.execute(text("SELECT 1"))  # opens the transaction, and with it SQLite's write lock
