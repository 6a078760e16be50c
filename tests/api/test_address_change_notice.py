"""A changed or removed mail address is told to the address it replaces.

An administrator's password link for an account in use goes to the address on record, and the administrator
who set that address may not also send it; but two administrators together (one points the address at a
mailbox of theirs, the other, perhaps unwitting, sends the link), or one who waits for a colleague, could still
take the account, and the person would never hear of it. So every change of a person's address, by an
administrator (API), the operator (`vault user email`) or the person themselves (account page), sends a notice
to the previous address: who changed it, when, where mail now goes (masked), and what to do. Against a real
SMTP server and database.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.api.conftest import BASE_URL, events
from tests.conftest import login
from tests.loans.helpers import Browser
from tests.mail.helpers import outbox, send
from vault.cli import cli
from vault.core.context import AccessContext
from vault.mail.accounts import set_email
from vault.mail.kinds import CANNOT_BE_OFF, CHOOSABLE, Kind
from vault.mail.sender import BACKGROUND
from vault.models import MailStatus, User
from vault.services import accounts


@pytest.fixture
def settings_overrides(mailing: dict[str, Any]) -> dict[str, Any]:
    return mailing


def _address(rt: Any, name: str, address: str | None) -> None:
    """Set `name`'s address as the operator does (`vault user email`)."""
    with rt.db.session() as session:
        set_email(rt, session, accounts.get_user(session, name), address, actor=None, ctx=AccessContext.cli())


def _locale(rt: Any, name: str, locale: str) -> None:
    with rt.db.session() as session:
        accounts.get_user(session, name).locale = locale


def _delivered(rt: Any) -> None:
    """Let the request's after-commit send finish, then send whatever it left."""
    BACKGROUND.wait(10)
    send(rt)


def _notices(rt: Any) -> list[Any]:
    return [row for row in outbox(rt) if row.kind == "address_changed"]


def _recorded(rt: Any) -> list[tuple[str | None, dict[str, Any]]]:
    return [(event.actor_name, json.loads(event.detail)) for event in events(rt, "user:email")]


def test_the_previous_address_is_told_when_an_administrator_changes_it(app, api, rt, smtp) -> None:
    """Before: the address moved to the administrator's mailbox and the person's own mailbox heard nothing."""
    _address(rt, "bob", "bob@example.com")
    login(app.test_client(), "bob")
    smtp.received.clear()
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "mine@example.org"}).status_code == 200
    _delivered(rt)
    [notice] = smtp.to("bob@example.com")
    assert notice.recipients == ["bob@example.com"]
    adm = api.get("/api/v1/users/adm", "adm").get_json()["display_name"]
    for body in (notice.text, notice.html):
        assert adm in body and "bob" in body and "•••@example.org" in body
        assert "mine@example.org" not in body  # the new address is masked: the old mailbox may not be the person's
        assert "tell your security team" in body
    assert "e-mail address" in notice.message["Subject"]
    assert not smtp.to("mine@example.org")  # the notice goes to the address replaced, not the new one
    # Sent like other security mail: the outbox keeps neither the text nor the address.
    [row] = _notices(rt)
    assert (row.status, row.recipient, row.body_text) == (MailStatus.SENT, "•••@example.com", "")
    with rt.db.session() as session:
        assert row.recipient_user_id == accounts.get_user(session, "bob").id
    # The change's record says the notice was queued.
    assert _recorded(rt)[-1] == ("adm", {"from": "bob@example.com", "to": "mine@example.org", "notice": "queued"})


def test_a_removed_address_is_told_too(app, api, rt, smtp) -> None:
    _address(rt, "bob", "bob@example.com")
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": None}).status_code == 200
    _delivered(rt)
    [notice] = smtp.to("bob@example.com")
    assert "removed" in notice.text and "removed" in notice.message["Subject"]
    assert _recorded(rt)[-1] == ("adm", {"from": "bob@example.com", "to": None, "notice": "queued"})


def test_no_notice_without_a_previous_address(api, rt, smtp) -> None:
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "bob@example.com"}).status_code == 200
    _delivered(rt)
    assert not _notices(rt) and not smtp.received
    assert _recorded(rt) == [("adm", {"from": None, "to": "bob@example.com", "notice": "no_previous_address"})]
    # Nor for an account created with its address.
    created = api.post("/api/v1/users", "adm", json={"username": "newbie", "email": "newbie@example.com"})
    assert created.status_code == 201
    _delivered(rt)
    assert not _notices(rt) and not smtp.received


def test_no_notice_for_an_unchanged_address(api, rt, smtp) -> None:
    _address(rt, "bob", "bob@example.com")
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "Bob@Example.com"}).status_code == 200
    _delivered(rt)
    assert not _notices(rt) and len(_recorded(rt)) == 1


def test_a_refused_change_sends_no_notice(api, rt, smtp) -> None:
    _address(rt, "bob", "bob@example.com")
    _address(rt, "bea", "bea@example.com")
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "bea@example.com"}).status_code == 409
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "not an address"}).status_code == 400
    _delivered(rt)
    assert not _notices(rt) and not smtp.received


@pytest.mark.parametrize("settings_overrides", [{}])
def test_without_mail_no_notice_is_queued_and_the_record_says_so(api, rt, settings_overrides) -> None:
    _address(rt, "bob", "bob@example.com")
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "mine@example.org"}).status_code == 200
    assert not _notices(rt)
    assert _recorded(rt)[-1] == ("adm", {"from": "bob@example.com", "to": "mine@example.org",
                                         "notice": "mail_not_configured"})


def test_the_operator_s_change_is_told(rt, cast, smtp) -> None:
    """`vault user email` on the server: the notice names the operator, and goes with the next send."""
    _address(rt, "bob", "bob@example.com")
    env = {"VAULT_DATA_DIR": str(rt.settings.data_dir), "VAULT_DATABASE_URL": rt.settings.database_url,
           "VAULT_KEYRING": str(rt.settings.keyring), "VAULT_SECRET_KEY": "test-secret-key",
           "VAULT_SMTP_URL": smtp.url(timeout="5"), "VAULT_MAIL_FROM": "vault@example.com",
           "VAULT_BASE_URL": BASE_URL}
    result = CliRunner().invoke(cli, ["user", "email", "bob", "bob.new@example.net"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # The operator hears whether the old mailbox was told (was: only the new address was printed).
    assert result.output.splitlines() == [
        "bob: bob.new@example.net", "the previous address •••@example.com is told of the change (notice queued)"]
    send(rt)
    [notice] = smtp.to("bob@example.com")
    assert "operator" in notice.text and "•••@example.net" in notice.text and "bob.new" not in notice.text
    operator, detail = _recorded(rt)[-1]
    assert operator != "adm" and detail == {"from": "bob@example.com", "to": "bob.new@example.net", "notice": "queued"}


def test_the_operator_hears_when_the_old_address_is_not_told(rt, cast) -> None:
    """Without mail the old mailbox hears nothing: the operator is told so (and must tell the person some other
    way); a first address has nobody to tell, and an unchanged one changes nothing."""
    _address(rt, "bob", "bob@example.com")
    env = {"VAULT_DATA_DIR": str(rt.settings.data_dir), "VAULT_DATABASE_URL": rt.settings.database_url,
           "VAULT_KEYRING": str(rt.settings.keyring), "VAULT_SECRET_KEY": "test-secret-key",
           "VAULT_SMTP_URL": "", "VAULT_MAIL_FROM": ""}

    def email(*args: str) -> list[str]:
        result = CliRunner().invoke(cli, ["user", "email", *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output.splitlines()

    assert email("bob", "bob.new@example.net") == [
        "bob: bob.new@example.net", "the previous address •••@example.com was NOT told: mail is not configured"]
    assert email("bob", "bob.new@example.net") == ["bob: bob.new@example.net", "address unchanged; nobody was told"]
    assert email("bob", "") == [
        "bob: no e-mail address", "the previous address •••@example.net was NOT told: mail is not configured"]
    assert email("bob", "bob@example.org") == ["bob: bob@example.org", "no previous address to tell"]
    assert [detail["notice"] for _, detail in _recorded(rt)][-3:] == [
        "mail_not_configured", "mail_not_configured", "no_previous_address"]


def test_the_person_s_own_change_is_told_to_the_old_address(app, api, rt, smtp) -> None:
    """Whoever holds a session of the person (a borrowed laptop, a stolen cookie) could move the address; the old
    mailbox is the one place the real person still hears of it."""
    _address(rt, "bob", "bob@example.com")
    browser = Browser(app, "bob")
    form = {"email": "bob.home@example.net", **{f"mode_{kind}": "immediate" for kind in CHOOSABLE}}
    assert browser.post("/account/notifications", form).status_code == 302
    _delivered(rt)
    [notice] = smtp.to("bob@example.com")
    assert "your account page" in notice.text and "•••@example.net" in notice.text
    assert "If you did not change it" in notice.text and "bob.home" not in notice.text
    assert _recorded(rt)[-1] == ("bob", {"from": "bob@example.com", "to": "bob.home@example.net",
                                         "notice": "queued"})


@pytest.mark.parametrize(("locale", "words"), [("ru", "Адрес электронной почты"), ("zh_Hans", "电子邮件地址")])
def test_the_notice_is_in_the_person_s_language(api, rt, smtp, locale: str, words: str) -> None:
    _address(rt, "bob", "bob@example.com")
    _locale(rt, "bob", locale)
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "mine@example.org"}).status_code == 200
    _delivered(rt)
    [notice] = smtp.to("bob@example.com")
    assert words in notice.message["Subject"] and "•••@example.org" in notice.text
    assert "security team" not in notice.text


def test_the_notice_cannot_be_turned_off() -> None:
    assert Kind.ADDRESS_CHANGED in CANNOT_BE_OFF and Kind.ADDRESS_CHANGED not in CHOOSABLE


def test_the_notice_goes_to_a_person_since_disabled(api, rt, smtp) -> None:
    """Disable, redirect, enable, and ask a colleague for the link: the old address hears of the redirect."""
    _address(rt, "bob", "bob@example.com")
    with rt.db.session() as session:
        accounts.get_user(session, "bob").disabled = True
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "mine@example.org"}).status_code == 200
    _delivered(rt)
    assert smtp.to("bob@example.com")
    with rt.db.session() as session:
        assert session.scalar(select(User.email).where(User.username == "bob")) == "mine@example.org"
