"""Upgrade 0005: existing addresses become lower-case, blanks become none, and two people sharing an
address stop the upgrade with their names instead of one of them losing the address."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from vault.db import schema
from vault.db.engine import Database


def _at_0004(tmp_path: Path, emails: list[str | None]) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    schema.upgrade(db, "0004")
    with db.engine.begin() as connection:
        for number, email in enumerate(emails):
            connection.execute(text(
                "INSERT INTO users (username, display_name, email, password_hash, status, disabled, session_epoch,"
                " created_at) VALUES (:u, :u, :e, 'x', 'active', 0, 0, '2026-01-01 00:00:00')"),
                {"u": f"user{number}", "e": email})
    return db


def test_upgrade_normalizes_addresses(tmp_path: Path) -> None:
    db = _at_0004(tmp_path, [" Ann@Example.COM ", "", None, "bob@example.com"])
    schema.upgrade(db)
    with db.engine.connect() as connection:
        assert [row[0] for row in connection.execute(text("SELECT email FROM users ORDER BY id"))] == [
            "ann@example.com", None, None, "bob@example.com"]
        assert connection.execute(text("SELECT count(*) FROM mail_outbox")).scalar() == 0
    db.dispose()


def test_upgrade_refuses_shared_addresses(tmp_path: Path) -> None:
    db = _at_0004(tmp_path, ["ann@example.com", "ANN@example.com"])
    with pytest.raises(RuntimeError, match=r"user0 and user1 share ann@example\.com"):
        schema.upgrade(db)
    assert schema.current_revision(db) == "0004"  # nothing half-done
    with db.engine.connect() as connection:
        assert [row[0] for row in connection.execute(text("SELECT email FROM users ORDER BY id"))] == [
            "ann@example.com", "ANN@example.com"]
    db.dispose()
