"""Migration 0029 on an outbox holding letters withheld before their reason was kept as a code: each row whose
sentence opens as one of `letters.repair_refusal`'s did gets that reason's code, once; a row it cannot
classify (no sentence, another sentence, or not a letter) stays null; the downgrade drops the column."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from vault.db import schema
from vault.db.engine import Database
from vault.models.base import UTCDateTime

AT = datetime(2026, 1, 5, tzinfo=UTC)
_MAIL = ("INSERT INTO mail_outbox (id, created_at, kind, recipient, subject, body_text, body_html, status, "
         "attempts, next_attempt_at, last_error) VALUES (:id, :at, :kind, 'jana@customer.example', 's', 'text', "
         "'html', :status, 0, :at, :error)")
# As the sender wrote them before 0029 (`audience.withheld`: "letter #N: " and the refusal's sentence).
ROWS: dict[int, tuple[str, str, str | None, str | None]] = {
    1: ("customer_letter", "withheld", "letter #11: the account manager it introduces (tom) is on notice: a letter "
        "must not introduce a leaver; hand the customer to a successor through the departure's handover "
        "(`vault departure reassign tom 3 --to USER`), which writes letters of its own", "owner_on_notice"),
    2: ("customer_letter", "withheld", "letter #12: the account manager it introduces can no longer sign in",
        "manager_inactive"),
    3: ("customer_letter", "withheld", "letter #13: its link expired on 2026-01-04: re-issue it with a fresh link "
        "(`vault letter reissue 13`)", "letter_expired"),
    4: ("customer_letter", "withheld", "letter #14: its link was already answered", "letter_answered"),
    5: ("customer_letter", "withheld", "letter #15: its link was revoked on 2026-01-03 (the new owner's side "
        "chose not to have it answered)", "letter_revoked"),
    6: ("customer_letter", "withheld", "letter #16: the customer has changed owner since: the letter would "
        "introduce someone who no longer looks after it", "letter_stale"),
    7: ("customer_letter", "withheld", "letter #17: a later change of owner wrote letters of its own (#18)",
        "letter_superseded"),
    # Withheld before reasons were kept; a sentence of no known reason: nothing to classify them by.
    8: ("customer_letter", "withheld", None, None),
    9: ("customer_letter", "withheld", "letter #19: held back for a reason nobody wrote down", None),
    # Not withheld, or not a letter: the sentence is a server's reply or a person's mail's, never a code.
    10: ("customer_letter", "failed", "550 its link expired on mailbox", None),
    11: ("loan_requested", "withheld", "letter #20: its link expired on 2026-01-04", None),
}


def _codes(db: Database) -> dict[int, str | None]:
    with db.engine.connect() as connection:
        return dict(connection.execute(sa.text("SELECT id, withheld_code FROM mail_outbox")).all())


def test_old_withheld_letters_get_their_code_from_their_sentence_once(empty_database: Database) -> None:
    db = empty_database
    schema.upgrade(db, "0028")
    with db.engine.begin() as connection:
        for row_id, (kind, status, error, _code) in ROWS.items():
            connection.execute(sa.text(_MAIL).bindparams(sa.bindparam("at", type_=UTCDateTime)),
                               {"id": row_id, "at": AT, "kind": kind, "status": status, "error": error})
    schema.upgrade(db)
    assert _codes(db) == {row_id: code for row_id, (_k, _s, _e, code) in ROWS.items()}
    with db.engine.connect() as connection:  # no refused retry recorded against the new column yet
        assert connection.execute(sa.text("SELECT count(*) FROM mail_outbox WHERE retry_refused_code IS NOT NULL")
                                  ).scalar() == 0
    # One time, in the migration: a row written afterwards is the sender's to code, whatever its sentence.
    with db.engine.begin() as connection:
        connection.execute(sa.text(_MAIL).bindparams(sa.bindparam("at", type_=UTCDateTime)),
                           {"id": 12, "at": AT, "kind": "customer_letter", "status": "withheld",
                            "error": "letter #21: its link expired on 2026-01-04"})
    assert _codes(db)[12] is None
    command.downgrade(schema.alembic_config(db.url), "0028")
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("mail_outbox")}
    assert not columns & {"withheld_code", "retry_refused_code"}
    assert len(_codes_without_column(db)) == 12


def _codes_without_column(db: Database) -> list[int]:
    with db.engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT id FROM mail_outbox")).scalars())
