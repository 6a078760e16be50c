"""Commits made durable on demand, before something outside the database vouches for them.

A deployment may trade durability for speed. PostgreSQL with `synchronous_commit = off` answers a commit
before its WAL reaches the disk, and a crash of the server loses the last ones; SQLite in WAL mode with
`synchronous = NORMAL` (ours) syncs its WAL only at checkpoints, and a power cut loses the last commits.
For the data that is an accepted risk: an act is lost together with its audit record.

It is not acceptable for a signed, write-once audit checkpoint kept outside the database: one that vouches
for a record the database then loses accuses an honest log of tampering for ever. The checkpoint writer
therefore calls `make_commits_durable` after reading the heads and before signing them.
"""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.engine import make_url

from vault.db.engine import Database

# A transactional WAL record any role may write: it makes the commit below wait for the flush, and
# PostgreSQL's WAL is one sequence, so the flush covers every commit that was visible before it.
_FLUSH_PG = text("SELECT pg_logical_emit_message(true, 'vault', 'durable')")


def make_commits_durable(db: Database) -> None:
    """Return once every commit this process could see is on disk.

    PostgreSQL: nothing to do unless `synchronous_commit` is off (then the commits already waited for
    their flush); otherwise one small transaction that commits synchronously. SQLite: the WAL file is
    synced, which holds every commit not yet copied into the database file (SQLite syncs the WAL before
    it copies, so what was copied is on disk already); no lock is taken.
    """
    if db.dialect == "postgresql":
        with db.engine.begin() as connection:
            if connection.exec_driver_sql("SHOW synchronous_commit").scalar() != "off":
                return
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO on")
            connection.execute(_FLUSH_PG)
        return
    database = make_url(db.url).database
    if db.dialect == "sqlite" and database and not database.startswith("file:") and database != ":memory:":
        try:
            handle = os.open(f"{database}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL: every commit is in the database file, synced when it was copied there
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
