"""`vault mail ...` and `vault user email` end to end, through the command line as an operator runs them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.mail.helpers import make_document, outbox, request
from vault.cli import cli
from vault.models import MailOutbox, MailStatus, User


@pytest.fixture
def run(rt, smtp):
    env = {"VAULT_DATA_DIR": str(rt.settings.data_dir), "VAULT_DATABASE_URL": rt.settings.database_url,
           "VAULT_KEYRING": str(rt.settings.keyring), "VAULT_SECRET_KEY": "test-secret-key",
           "VAULT_SMTP_URL": smtp.url(timeout="5"), "VAULT_MAIL_FROM": "vault@example.com",
           "VAULT_BASE_URL": "https://vault.example.com", "VAULT_ARGON2_TIME_COST": "1",
           "VAULT_ARGON2_MEMORY_KIB": "1024"}

    def invoke(*args: str, input: str | None = None, **extra: str):
        return CliRunner().invoke(cli, list(args), env={**env, **extra}, input=input, catch_exceptions=False)

    return invoke


def _email(rt, username: str) -> str | None:
    with rt.db.session() as session:
        return session.scalar(select(User.email).where(User.username == username))


def test_user_add_and_email(run, rt) -> None:
    result = run("user", "add", "nina", "--role", "borrower", "--email", " Nina@Example.com", "--password-stdin",
                 input="a long enough password 42\n")
    assert result.exit_code == 0, result.output
    assert _email(rt, "nina") == "nina@example.com"
    assert run("user", "add", "olga", "--email", "NINA@example.com", "--password-stdin",
               input="a long enough password 42\n").exit_code == 1  # taken: the whole act is refused
    with rt.db.session() as session:
        assert session.scalar(select(User).where(User.username == "olga")) is None

    assert run("user", "email", "nina", "nina.new@example.com").exit_code == 0
    assert _email(rt, "nina") == "nina.new@example.com"
    bad = run("user", "email", "nina", "nina at example")
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output
    assert _email(rt, "nina") == "nina.new@example.com"
    assert run("user", "email", "nina", "").exit_code == 0
    assert _email(rt, "nina") is None
    assert run("user", "email", "nobody", "x@example.com").exit_code == 1


def test_send_pending_and_status(run, rt, cast, smtp) -> None:
    request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2))
    status = run("mail", "status")
    assert status.exit_code == 0 and "queued     3" in status.output and "oldest unsent" in status.output
    smtp.stop()
    down = run("mail", "send-pending")
    assert down.exit_code == 0 and "sent 0, will retry 3, failed 0" in down.output
    assert "127.0.0.1" in run("mail", "status").output  # the last errors are shown
    smtp.start()
    with rt.db.session() as session:  # due again now, instead of waiting out the back-off
        for row in session.scalars(select(MailOutbox)):
            row.next_attempt_at = row.created_at
    sent = run("mail", "send-pending")
    assert "sent 3, will retry 0, failed 0" in sent.output
    assert len(smtp.received) == 3
    assert {row.status for row in outbox(rt)} == {MailStatus.SENT}


def test_send_pending_with_sending_off_keeps_the_queue(run, rt, cast) -> None:
    request(rt, cast["ann"], make_document(rt, compiler_id=cast["carl"], grade=2))
    result = run("mail", "send-pending", VAULT_SMTP_URL="")
    assert result.exit_code == 0 and "sending is off" in result.output
    assert {row.status for row in outbox(rt)} == {MailStatus.QUEUED}


def test_mail_test(run, smtp) -> None:
    result = run("mail", "test", "ops@example.com")
    assert result.exit_code == 0, result.output
    [received] = smtp.received
    assert received.recipients == ["ops@example.com"] and "Test message" in received.message["Subject"]
    smtp.refuse.add("gone@example.com")
    refused = run("mail", "test", "gone@example.com")
    assert refused.exit_code == 1 and "550" in refused.output
    assert run("mail", "test", "not-an-address").exit_code == 1
    smtp.stop()
    down = run("mail", "test", "ops@example.com")
    assert down.exit_code == 1 and "not sent" in down.output
    assert run("mail", "test", "ops@example.com", VAULT_SMTP_URL="").exit_code == 1
