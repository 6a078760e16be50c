"""Migration 0025 on a database holding letters marked the old way: a negative position becomes the
`earlier_address` column and a positive position, the uniqueness of one change's letters holds for each
kind, and the downgrade gives the sign back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from vault.db import schema
from vault.db.engine import Database
from vault.models.base import UTCDateTime

AT = datetime(2026, 1, 5, tzinfo=UTC)
_LETTER = ("INSERT INTO customer_letters (id, customer_id, cause, new_owner_id, change_key, contact_index, "
           "contact_label, language, token_hash, created_at, expires_at) VALUES (:id, 1, 'handover', 1, :key, "
           ":index, 'J••• N•••', 'en', :token, :at, :at)")


def _letter(connection: sa.Connection, letter_id: int, key: str, index: int) -> None:
    connection.execute(sa.text(_LETTER).bindparams(sa.bindparam("at", type_=UTCDateTime)),
                       {"id": letter_id, "key": key, "index": index, "token": f"t{letter_id}", "at": AT})


def _letters(db: Database) -> dict[int, tuple[int, bool]]:
    with db.engine.connect() as connection:
        return {row.id: (row.contact_index, bool(row.earlier_address)) for row in connection.execute(
            sa.text("SELECT id, contact_index, earlier_address FROM customer_letters"))}


def test_negative_positions_become_the_column_and_come_back_on_downgrade(empty_database: Database) -> None:
    db = empty_database
    schema.upgrade(db, "0024")
    with db.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO users (id, username, display_name, password_hash, status, disabled, session_epoch, "
            "created_at) VALUES (1, 'sue', 'Sue', 'x', 'active', false, 0, :at)")
            .bindparams(sa.bindparam("at", type_=UTCDateTime)), {"at": AT})
        connection.execute(sa.text(
            "INSERT INTO customers (id, name, name_key, segment, owner_id, created_by_id, created_at, owner_since) "
            "VALUES (1, 'Novak Tools', 'novak tools', 'key', 1, 1, :at, :at)")
            .bindparams(sa.bindparam("at", type_=UTCDateTime)), {"at": AT})
        # One change: contacts at 0 and 1, and two earlier addresses (-1, -2); another change's 0 and -1.
        for letter_id, key, index in ((1, "a", 0), (2, "a", 1), (3, "a", -1), (4, "a", -2), (5, "b", 0),
                                      (6, "b", -1)):
            _letter(connection, letter_id, key, index)
    schema.upgrade(db)
    assert _letters(db) == {1: (0, False), 2: (1, False), 3: (1, True), 4: (2, True), 5: (0, False),
                            6: (1, True)}
    # Still one letter per position and kind for one change.
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO customer_letters (id, customer_id, cause, new_owner_id, change_key, contact_index, "
            "earlier_address, contact_label, language, token_hash, created_at, expires_at) VALUES "
            "(7, 1, 'handover', 1, 'a', 2, true, '', 'en', 't7', :at, :at)")
            .bindparams(sa.bindparam("at", type_=UTCDateTime)), {"at": AT})
    with db.engine.begin() as connection:
        _letter(connection, 8, "c", 0)  # a row written without the column is a current contact's
    assert _letters(db)[8] == (0, False)
    command.downgrade(schema.alembic_config(db.url), "0024")
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("customer_letters")}
    assert "earlier_address" not in columns
    with db.engine.connect() as connection:
        assert dict(connection.execute(sa.text("SELECT id, contact_index FROM customer_letters")).all()) == {
            1: 0, 2: 1, 3: -1, 4: -2, 5: 0, 6: -1, 8: 0}
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        _letter(connection, 9, "a", -1)
