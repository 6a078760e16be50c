"""Engine and sessions. One session per request or command; the commit point is `vault.db.unit_of_work`.

On SQLite every transaction starts with BEGIN IMMEDIATE: the quota counter and the audit chain read
and then write, and a deferred transaction would fail to upgrade its lock under concurrency instead of
waiting its turn. PostgreSQL serializes the same spots with row locks instead.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from vault.core.private_files import ensure_private_file
from vault.db.unit_of_work import unit_of_work

# Execution option for a connection that only reads and wants one consistent view of the data.
READ_SNAPSHOT = "vault_read_snapshot"


class Database:
    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.engine: Engine = _make_engine(url, **engine_options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> AbstractContextManager[Session]:
        """A unit of work on a new session (see `vault.db.unit_of_work`)."""
        return unit_of_work(self)

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {})
        options["connect_args"].setdefault("timeout", 60)
        options["connect_args"].setdefault("check_same_thread", False)
        if ":memory:" not in url and url not in {"sqlite://", "sqlite:///"}:
            # Pooled: opening a SQLite connection (the file, its WAL, the pragmas below) costs more than
            # most units of work, and a view runs two of them.
            options.setdefault("pool_size", 10)
            options.setdefault("max_overflow", 40)
            database = make_url(url).database
            if database and not database.startswith("file:"):
                # Created 0600 before SQLite creates it 0644 (its -wal and -shm files copy the mode).
                ensure_private_file(Path(database))
        engine = create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Hand transaction control to the "begin" hook below (pysqlite would otherwise BEGIN lazily).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            # A long read (audit verification or export) asks for a deferred snapshot instead, so it
            # does not hold the write lock and stall every writer for minutes.
            if connection.get_execution_options().get(READ_SNAPSHOT):
                connection.exec_driver_sql("BEGIN DEFERRED")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 40)
    return create_engine(url, **options)
