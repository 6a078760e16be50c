"""The lock that keeps `vault keys drop` from deleting a master key an uncommitted data key still names.

A data key is wrapped before its row commits (an upload wraps before it streams, and commits at the
end), and a drop counts only committed rows. So a transaction that is about to commit a wrapped data
key holds this lock *shared* from its last look at the keyring until its commit, and a drop takes it
*exclusive* before it counts: a drop then either ends before the writer's look (which then sees the
key gone and wraps again) or waits for the writer's commit (and then counts its row).

PostgreSQL: a transaction-level advisory lock, released by the commit or rollback, that writers share
with each other (uploads never wait for uploads). SQLite: every transaction already holds the one write
lock from its first statement (BEGIN IMMEDIATE, see `engine`), so a statement that opens the
transaction is all it takes.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# The advisory lock's id: any fixed 64-bit number no other lock of the database uses ("vaultkek").
LOCK_ID = 0x7661756C74_6B656B


def hold_shared(session: Session) -> None:
    """Until this transaction ends, keep every master key drop waiting (writers of data keys share it)."""
    _take(session, "pg_advisory_xact_lock_shared")


def hold_exclusive(session: Session) -> None:
    """Until this transaction ends, keep out every writer of data keys (and wait for those under way)."""
    _take(session, "pg_advisory_xact_lock")


def _take(session: Session, function: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT {function}(:lock)"), {"lock": LOCK_ID})
    else:
        session.execute(text("SELECT 1"))  # opens the transaction, and with it SQLite's write lock
