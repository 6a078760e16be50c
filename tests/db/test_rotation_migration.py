"""Migration 0015 on a database with customers: each customer's tenure starts at the last change of owner
the audit log records, else at its creation; the downgrade takes the rotation away again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from vault.db import schema
from vault.db.engine import Database
from vault.models.base import UTCDateTime


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _timed(statement: str, *names: str) -> sa.TextClause:
    """Raw SQL whose time parameters are written as the product writes them (not by the driver's default
    datetime adapter, which Python 3.12 deprecates for sqlite3)."""
    return sa.text(statement).bindparams(*(sa.bindparam(name, type_=UTCDateTime) for name in names))


def _naive(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def test_tenure_is_taken_from_the_audit_log_and_the_downgrade_removes_it(empty_database: Database) -> None:
    db = empty_database
    schema.upgrade(db, "0014")
    with db.engine.begin() as connection:
        connection.execute(_timed(
            "INSERT INTO users (id, username, display_name, password_hash, status, disabled, session_epoch, "
            "created_at) VALUES (1, 'bob', 'Bob', 'x', 'active', false, 0, :at)", "at"), {"at": _at("2024-01-01")})
        for customer_id, created in ((1, "2024-02-01"), (2, "2024-03-01")):
            connection.execute(_timed(
                "INSERT INTO customers (id, name, name_key, segment, owner_id, created_by_id, created_at) "
                "VALUES (:id, :name, :name, 'key', 1, 1, :at)", "at"),
                {"id": customer_id, "name": f"customer {customer_id}", "at": _at(created)})
        # Customer 1 changed owner twice (the later counts); a refused assignment does not count.
        for seq, (action, outcome, at) in enumerate((("customer:owner", "allowed", "2024-05-01"),
                                                     ("customer:handover", "allowed", "2024-07-01"),
                                                     ("customer:owner", "denied", "2024-09-01")), start=1):
            connection.execute(_timed(
                "INSERT INTO audit_events (seq, ts, actor_name, action, outcome, customer_id, detail, mac) "
                "VALUES (:seq, :ts, 'cli', :action, :outcome, 1, '{}', 'm')", "ts"),
                {"seq": seq, "ts": _at(at), "action": action, "outcome": outcome})
    schema.upgrade(db)
    with db.engine.connect() as connection:
        since = dict(connection.execute(sa.text("SELECT id, owner_since FROM customers ORDER BY id")).all())
        assert _naive(since[1]) == datetime(2024, 7, 1) and _naive(since[2]) == datetime(2024, 3, 1)
        assert connection.execute(sa.text("SELECT count(*) FROM rotation_proposals")).scalar() == 0
    command.downgrade(schema.alembic_config(db.url), "0014")
    names = sa.inspect(db.engine).get_table_names()
    assert "rotation_proposals" not in names
    assert "owner_since" not in {c["name"] for c in sa.inspect(db.engine).get_columns("customers")}
