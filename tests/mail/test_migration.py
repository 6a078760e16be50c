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


def test_upgrade_forgets_mail_sent_before_the_outbox_did(tmp_path: Path) -> None:
    """Upgrade 0022: rows sent or bundled before `vault.mail.retention` keep no address, body or plain-address
    key; mail still waiting, or failed and kept for repair, is untouched."""
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    schema.upgrade(db, "0021")
    rows = [  # status, recipient, dedupe key
        ("sent", "ann@example.com", "loan-requested:7:ann@example.com"),
        ("digested", "bob@example.org", "loan-requested:8:bob@example.org"),
        ("sent", "•••@example.com", "letter:3:" + "f" * 32),  # sent since: already forgotten
        ("queued", "cid@example.com", "loan-requested:9:cid@example.com"),
        ("failed", "dan@example.com", None),
    ]
    with db.engine.begin() as connection:
        for status, recipient, key in rows:
            connection.execute(text(
                "INSERT INTO mail_outbox (created_at, kind, recipient, subject, body_text, body_html, status,"
                " attempts, next_attempt_at, dedupe_key) VALUES ('2026-01-01 00:00:00', 'loan_requested', :r,"
                " 'Subject', :t, :h, :s, 1, '2026-01-01 00:00:00', :k)"),
                {"r": recipient, "t": "" if recipient.startswith("•") else "text", "h": "" if recipient.startswith(
                    "•") else "<p>html</p>", "s": status, "k": key})
    schema.upgrade(db)
    with db.engine.connect() as connection:
        after = connection.execute(text(
            "SELECT status, recipient, body_text, body_html, dedupe_key FROM mail_outbox ORDER BY id")).all()
    assert [tuple(row) for row in after] == [
        ("sent", "•••@example.com", "", "", None),
        ("digested", "•••@example.org", "", "", None),
        ("sent", "•••@example.com", "", "", "letter:3:" + "f" * 32),
        ("queued", "cid@example.com", "text", "<p>html</p>", "loan-requested:9:cid@example.com"),
        ("failed", "dan@example.com", "text", "<p>html</p>", None),
    ]
    db.dispose()
