"""Engine and sessions. One session per request or command; the commit point is `vault.db.unit_of_work`.

On SQLite every transaction starts with BEGIN IMMEDIATE: the quota counter and the audit chain read
and then write, and a deferred transaction would fail to upgrade its lock under concurrency instead of
waiting its turn. PostgreSQL serializes the same spots with row locks instead.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from vault.core.private_files import ensure_private_file
from vault.db.described import describe_on_demand
from vault.db.unit_of_work import unit_of_work

# Execution option for a connection that only reads and wants one consistent view of the data.
READ_SNAPSHOT = "vault_read_snapshot"
# Execution option (seconds) on SQLite: how long this connection's transaction waits at its BEGIN for the
# write lock, in place of the connection's own busy timeout, for that one BEGIN only (`key_lock`).
BEGIN_WAIT = "vault_begin_wait"


_BROKEN_CONNECTION = ("disk is full", "disk I/O error")
# A pooled PostgreSQL connection back in use within this many seconds is not pinged first (see
# `_ping_when_idle`); one that rested longer is.
PING_AFTER_IDLE_SECONDS = 1.0
_RESTED_SINCE = "vault_rested_since"
_TURNS: dict[str, threading.Lock] = {}
_TURNS_GUARD = threading.Lock()


def _turn_of(database: str) -> threading.Lock:
    with _TURNS_GUARD:
        return _TURNS.setdefault(str(Path(database).resolve()), threading.Lock())


class TurnTakingConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take turns with the others of this process.

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps and polls
    (1, 2, 5 … 100 ms), so under a few concurrent requests most of the time went to sleeping after the
    lock was already free. Threads of one process instead queue on a lock handed over at the commit or
    rollback; SQLite's handler is left to arbitrate between processes only.
    """

    turn: threading.Lock | None = None
    turn_timeout = 60.0  # as long as SQLite's own busy timeout (the connection's `timeout`)
    _holding = False

    def take_turn(self, timeout: float | None = None) -> None:
        """Wait for this process's turn to write, `timeout` seconds at most (default: `turn_timeout`)."""
        if self.turn is None or self._holding:
            return
        if not self.turn.acquire(timeout=self.turn_timeout if timeout is None else timeout):
            raise sqlite3.OperationalError("database is locked")
        self._holding = True

    def give_turn(self) -> None:
        if self._holding and self.turn is not None:
            self._holding = False
            self.turn.release()

    # The driver's own methods, passed through: the unit of work still decides when to commit.
    def commit(self) -> None:
        try:
            sqlite3.Connection.commit(self)
        finally:
            self.give_turn()

    def rollback(self) -> None:
        try:
            sqlite3.Connection.rollback(self)
        finally:
            self.give_turn()

    def close(self) -> None:
        try:
            sqlite3.Connection.close(self)
        finally:
            self.give_turn()


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


def _begin_within(dbapi_connection: sqlite3.Connection, wait: float) -> None:
    """BEGIN IMMEDIATE waiting at most `wait` seconds for another process's write lock, the connection's own
    busy timeout put back afterwards whatever happens: the connection goes back to the pool, and the next
    unit of work on it must wait as long as any other."""
    cursor = dbapi_connection.cursor()
    try:
        (usual,) = cursor.execute("PRAGMA busy_timeout").fetchone()
        cursor.execute(f"PRAGMA busy_timeout={max(0, int(wait * 1000))}")
        try:
            cursor.execute("BEGIN IMMEDIATE")
        finally:
            cursor.execute(f"PRAGMA busy_timeout={int(usual)}")
    finally:
        cursor.close()


def _make_engine(url: str, **options: Any) -> Engine:
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {})
        options["connect_args"].setdefault("timeout", 60)
        options["connect_args"].setdefault("check_same_thread", False)
        database = make_url(url).database
        if ":memory:" not in url and url not in {"sqlite://", "sqlite:///"}:
            options["connect_args"].setdefault("factory", TurnTakingConnection)
            # Pooled: opening a SQLite connection (the file, its WAL, the pragmas below) costs more than
            # most units of work, and a view runs two of them.
            options.setdefault("pool_size", 10)
            options.setdefault("max_overflow", 40)
            if database and not database.startswith("file:"):
                # Created 0600 before SQLite creates it 0644 (its -wal and -shm files copy the mode).
                ensure_private_file(Path(database))
        engine = create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Hand transaction control to the "begin" hook below (pysqlite would otherwise BEGIN lazily).
            dbapi_connection.isolation_level = None
            if isinstance(dbapi_connection, TurnTakingConnection) and database:
                dbapi_connection.turn = _turn_of(database)
                dbapi_connection.turn_timeout = float(options["connect_args"]["timeout"])
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "handle_error")
        def _on_error(context: Any) -> None:
            # A pooled connection that met a full disk or an I/O error keeps failing after the disk
            # is freed: it is thrown away (as a lost connection is) and the next unit opens a new one.
            error = context.original_exception
            if isinstance(error, sqlite3.OperationalError) and any(
                    words in str(error) for words in _BROKEN_CONNECTION):
                context.is_disconnect = True

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            # A long read (audit verification or export) asks for a deferred snapshot instead, so it
            # does not hold the write lock and stall every writer for minutes.
            if connection.get_execution_options().get(READ_SNAPSHOT):
                connection.exec_driver_sql("BEGIN DEFERRED")
                return
            dbapi_connection = connection.connection.dbapi_connection
            taking = isinstance(dbapi_connection, TurnTakingConnection)
            wait = connection.get_execution_options().get(BEGIN_WAIT)
            if taking:
                dbapi_connection.take_turn(wait)
            try:
                if wait is None:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    _begin_within(dbapi_connection, wait)
            except BaseException:
                if taking:
                    dbapi_connection.give_turn()
                raise

        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 40)
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _described_on_demand(dbapi_connection: Any, _record: Any) -> None:
        describe_on_demand(dbapi_connection)  # see `vault.db.described`

    if not options.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has rested, instead of before every use.

    A server restart or an idle timeout kills connections while they rest in the pool; one in use a
    moment ago is as alive as a ping would show, and a view checks out a connection three times, so a
    ping each time cost three round trips per view. A connection that dies between uses regardless fails
    its request with "database unavailable" (503), and the pool, told it was a disconnect, drops every
    connection that old.
    """

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RESTED_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _rests(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RESTED_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RESTED_SINCE, 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool throws this connection away and checks out another (a fresh one if need be).
            raise exc.DisconnectionError(f"a pooled connection was found dead: {error}") from error
