"""Migration 0026 on both databases: the index on the person and the action replaces the one on the person
alone, which was its prefix (any search by person alone uses the wider one) and only cost every audit
append; the downgrade gives the old index back. Migration 0028: an invalid index of that name, left by an
operator's failed concurrent build, is built again on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from vault.db import schema
from vault.db.engine import Database


def _indexes(db: Database, table: str) -> dict[str, tuple[str, ...]]:
    """The table's indexes by name, each with its columns in order (an expression is None in SQLAlchemy's
    reflection; it is kept as "?" so that it is a prefix of nothing)."""
    return {index["name"]: tuple(column or "?" for column in index["column_names"])
            for index in sa.inspect(db.engine).get_indexes(table)}


def test_no_index_of_the_audit_log_is_the_prefix_of_another(empty_database: Database) -> None:
    """Every index of the log is written on each append; one whose columns begin another's answers nothing
    that the other does not."""
    schema.upgrade(empty_database)
    indexes = _indexes(empty_database, "audit_events")
    assert indexes["ix_audit_events_actor_action"] == ("actor_id", "action")
    redundant = [(short, wide) for short, columns in indexes.items() for wide, longer in indexes.items()
                 if short != wide and longer[:len(columns)] == columns]
    assert redundant == []


def test_the_downgrade_gives_the_index_on_the_person_back(empty_database: Database) -> None:
    schema.upgrade(empty_database)
    command.downgrade(schema.alembic_config(empty_database.url), "0025")
    indexes = _indexes(empty_database, "audit_events")
    assert indexes["ix_audit_events_actor_id"] == ("actor_id",)
    assert "ix_audit_events_actor_action" not in indexes
    schema.upgrade(empty_database)
    assert "ix_audit_events_actor_id" not in _indexes(empty_database, "audit_events")


_RECORD = ("INSERT INTO audit_events (seq, shard, shard_seq, ts, actor_id, actor_name, action, outcome, detail, mac) "
           "VALUES (:seq, 1, :seq, '2026-01-05 00:00:00', 7, 'cora', 'customer:reveal', 'allowed', '{}', '')")
_STATE = sa.text("SELECT c.oid, i.indisvalid, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                 "WHERE c.relname = 'ix_audit_events_actor_action'")


def _failed_concurrent_build(db: Database) -> None:
    """What an operator's CREATE INDEX CONCURRENTLY (as 0026 suggests, before upgrading) that failed leaves:
    an index of that name, invalid. Made to fail for real: built unique over two records of one person and
    action, PostgreSQL refuses it in its last phase and keeps the index, marked invalid."""
    with db.engine.begin() as connection:
        for seq in (1, 2):
            connection.execute(sa.text(_RECORD), {"seq": seq})
    with (db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
          pytest.raises(IntegrityError)):
        connection.execute(sa.text("CREATE UNIQUE INDEX CONCURRENTLY ix_audit_events_actor_action "
                                   "ON audit_events (actor_id, action)"))


def _state(db: Database) -> tuple[int, bool, bool] | None:
    with db.engine.connect() as connection:
        row = connection.execute(_STATE).first()
    return None if row is None else (row.oid, row.indisvalid, row.indisunique)


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_an_invalid_index_left_by_a_failed_concurrent_build_is_rebuilt(empty_database: Database) -> None:
    """Was: 0026's IF NOT EXISTS took the invalid index for the index, and no query ever used it. Now 0028
    drops it and builds it again, with 0026's definition (not the failed build's unique one)."""
    db = empty_database
    schema.upgrade(db, "0025")
    _failed_concurrent_build(db)
    invalid = _state(db)
    assert invalid is not None and invalid[1:] == (False, True)
    schema.upgrade(db)
    rebuilt = _state(db)
    assert rebuilt is not None and rebuilt[1:] == (True, False) and rebuilt[0] != invalid[0]
    assert _indexes(db, "audit_events")["ix_audit_events_actor_action"] == ("actor_id", "action")
    # The downgrade does nothing: the index stays, valid.
    command.downgrade(schema.alembic_config(db.url), "0027")
    assert _state(db) == rebuilt


def test_a_valid_index_is_left_as_it_is(empty_database: Database) -> None:
    """The control: on PostgreSQL the valid index 0026 built is the same index after 0028 (not rebuilt, no
    table read for nothing); SQLite, which has no invalid indexes, upgrades too."""
    db = empty_database
    schema.upgrade(db, "0027")
    before = _state(db) if db.engine.dialect.name == "postgresql" else None
    schema.upgrade(db)
    assert _indexes(db, "audit_events")["ix_audit_events_actor_action"] == ("actor_id", "action")
    if before is not None:
        assert before[1] is True and _state(db) == before
