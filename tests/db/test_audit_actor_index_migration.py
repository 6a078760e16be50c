"""Migration 0026 on both databases: the index on the person and the action replaces the one on the person
alone, which was its prefix (any search by person alone uses the wider one) and only cost every audit
append; the downgrade gives the old index back."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

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
