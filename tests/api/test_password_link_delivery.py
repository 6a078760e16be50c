"""A password link for an account in use goes to its owner's mailbox, never to the administrator.

An administrator who is shown a one-time link for someone's account sets that person's password with it and
signs in as them: reads what they may read, borrows under their name. For an account whose owner holds a way
in already (they signed in, or it has an API token), the link is mailed to the address on record and the
administrator sees only that it was sent; the address and the link are two halves, so the administrator who
changed the address since the person last signed in cannot also send the link; and with no mail, or no
address, only the operator on the server (`vault user password-link`) gives one. A brand-new account keeps
its link shown to the administrator who hands it over. Against a real SMTP server and database.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api.conftest import BASE_URL, assert_error, events
from tests.conftest import csrf_from, login
from tests.mail.helpers import outbox, send
from tests.security.helpers import flashes, location, post_form
from tests.test_cli_accounts import run
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.mail.accounts import set_email
from vault.mail.sender import BACKGROUND
from vault.models import AuditEvent, MailStatus, PasswordLink, Role, User, UserStatus
from vault.services import accounts

CHOSEN = "a passphrase the administrator chose"
OWN = "a passphrase of my very own"
_LINK = re.compile(r"/password/set/[A-Za-z0-9_-]{20,}")


@pytest.fixture
def settings_overrides(mailing: dict[str, Any]) -> dict[str, Any]:
    return mailing


def _address(rt: Any, name: str, address: str | None, *, by_themselves: bool = False) -> None:
    """Set `name`'s address as the operator would (`vault user email`), or as they do on their account page."""
    with rt.db.session() as session:
        user = accounts.get_user(session, name)
        set_email(rt, session, user, address, actor=user if by_themselves else None, ctx=AccessContext.cli())


def _links(rt: Any, name: str) -> int:
    with rt.db.session() as session:
        user = accounts.get_user(session, name)
        return session.scalar(select(func.count()).select_from(PasswordLink).where(PasswordLink.user_id == user.id))


def _use(app: Any, text: str, password: str) -> bool:
    """Whoever holds `text` sets a password with the first link in it; whether one was there to use."""
    found = _LINK.search(text)
    if found is None:
        return False
    person = app.test_client()
    form = person.get(found.group(0))
    if form.status_code != 200:
        return False
    done = person.post(found.group(0), data={"csrf_token": csrf_from(form.get_data(as_text=True)), "new": password,
                                             "confirm": password})
    return location(done) == "/login"


def _signs_in(app: Any, name: str, password: str) -> bool:
    client = app.test_client()
    page = client.get("/login")
    answer = client.post("/login", data={"username": name, "password": password,
                                         "csrf_token": csrf_from(page.get_data(as_text=True))})
    return answer.status_code == 302 and not answer.headers["Location"].endswith("/login")


def _delivered(rt: Any) -> None:
    """Let the request's after-commit send finish, then send whatever it left."""
    BACKGROUND.wait(10)
    send(rt)


def test_an_administrator_cannot_take_over_an_account_in_use(app, api, rt, smtp) -> None:
    """Before: the answer carried the link; the admin set bob's password with it and signed in as bob."""
    _address(rt, "bob", "bob@example.com")
    login(app.test_client(), "bob")  # bob's account is in use
    answer = api.post("/api/v1/users/bob/password-link", "adm")
    assert answer.status_code == 200, answer.get_json()
    assert not _use(app, answer.get_data(as_text=True), CHOSEN), "the administrator could set bob's password"
    assert not _signs_in(app, "bob", CHOSEN)
    body = answer.get_json()["password_link"]
    assert body["delivery"] == "mail" and body["sent_to"] == "•••@example.com" and "url" not in body
    # The same on the page: it says where the link went, and shows none.
    admin = app.test_client()
    login(admin, "adm")
    bob_id = api.get("/api/v1/users/bob", "adm").get_json()["id"]
    made = post_form(admin, f"/admin/users/{bob_id}", f"/admin/users/{bob_id}/password-link")
    page = admin.get(location(made))
    assert ("success", "A one-time password link was sent to •••@example.com.") in flashes(page)
    assert not _use(app, page.get_data(as_text=True), CHOSEN)
    assert _LINK.search(page.get_data(as_text=True)) is None
    # Recorded with how it went, twice (API and page), under the administrator's name.
    assert [(e.actor_name, json.loads(e.detail)) for e in events(rt, "account:password_link")] == [
        ("adm", {"hours": 72, "delivery": "mail", "to": "•••@example.com"})] * 2


def test_the_link_reaches_the_owner_by_mail_and_leaves_no_readable_secret(app, api, rt, smtp) -> None:
    _address(rt, "bob", "bob@example.com")
    login(app.test_client(), "bob")
    assert api.post("/api/v1/users/bob/password-link", "adm").status_code == 200
    with rt.db.session() as session:  # waiting to be sent: the only time the link is readable in the outbox
        assert session.scalar(select(func.count()).select_from(PasswordLink)) == 1
    _delivered(rt)
    [mail] = smtp.to("bob@example.com")
    assert mail.recipients == ["bob@example.com"]
    found = _LINK.search(mail.text)
    assert found is not None and f"{BASE_URL}{found.group(0)}" in mail.text and found.group(0) in mail.html
    secret = found.group(0).rsplit("/", 1)[1]
    # Sent: the outbox keeps neither the text nor the address; nothing in the database holds the secret.
    [row] = [row for row in outbox(rt) if row.kind == "password_link"]
    assert (row.status, row.recipient, row.body_text, row.body_html) == (MailStatus.SENT, "•••@example.com", "", "")
    with rt.db.session() as session:
        stored = [str(value) for table in (PasswordLink.__table__, row.__table__, AuditEvent.__table__)
                  for line in session.execute(select(table)).all() for value in line]
    assert not any(secret in value for value in stored)
    # bob (and only the mailbox's holder) sets the password with it.
    assert _use(app, mail.text, OWN) and _signs_in(app, "bob", OWN)


def test_a_link_whose_mail_fails_for_good_is_forgotten_too(app, api, rt, smtp) -> None:
    _address(rt, "bob", "bob@example.com")
    login(app.test_client(), "bob")
    smtp.refuse.add("bob@example.com")
    assert api.post("/api/v1/users/bob/password-link", "adm").status_code == 200
    _delivered(rt)
    [row] = [row for row in outbox(rt) if row.kind == "password_link"]
    assert row.status == MailStatus.FAILED and row.last_error
    assert (row.recipient, row.body_text, row.body_html) == ("•••@example.com", "", "")


def test_whoever_changed_the_address_does_not_also_send_the_link(app, api, rt, users, smtp) -> None:
    """The address and the link are two halves: one administrator pointing the address at a mailbox of theirs
    and mailing the link there would hold the account."""
    users.make("adm2", Role.ADMIN)
    _address(rt, "bob", "bob@example.com")
    login(app.test_client(), "bob")
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "mine@example.org"}).status_code == 200
    refused = assert_error(api.post("/api/v1/users/bob/password-link", "adm"), 403, "separation_of_duties")
    assert "set this person's current e-mail address" in refused["error"]
    assert _links(rt, "bob") == 0 and not [row for row in outbox(rt) if row.kind == "password_link"]
    assert [(e.actor_name, e.reason_code) for e in events(rt, "user:manage", "denied")] == [
        ("adm", "separation_of_duties")]
    # The same on the page.
    admin = app.test_client()
    login(admin, "adm")
    bob_id = api.get("/api/v1/users/bob", "adm").get_json()["id"]
    assert post_form(admin, f"/admin/users/{bob_id}", f"/admin/users/{bob_id}/password-link").status_code == 403
    assert _links(rt, "bob") == 0
    # A second administrator sends it (to the new address), as may the operator.
    sent = api.post("/api/v1/users/bob/password-link", "adm2")
    assert sent.status_code == 200 and sent.get_json()["password_link"]["sent_to"] == "•••@example.org"
    with rt.db.session() as session:
        accounts.create_password_link(rt, session, accounts.get_user(session, "bob"), actor=None)
    # Changes by the person themselves or by the operator bind no administrator.
    _address(rt, "bob", "bob2@example.com")
    login(app.test_client(), "bob")
    _address(rt, "bob", "bob3@example.com", by_themselves=True)
    assert api.post("/api/v1/users/bob/password-link", "adm").status_code == 200
    # Signing in confirms nothing about the address: the administrator who set it still may not mail the link
    # there after the person's next sign-in; once someone else sets the address, they may.
    assert api.post("/api/v1/users/bob/email", "adm", json={"email": "bob4@example.com"}).status_code == 200
    assert_error(api.post("/api/v1/users/bob/password-link", "adm"), 403, "separation_of_duties")
    login(app.test_client(), "bob")
    assert_error(api.post("/api/v1/users/bob/password-link", "adm"), 403, "separation_of_duties")
    assert api.post("/api/v1/users/bob/email", "adm2", json={"email": "bob5@example.com"}).status_code == 200
    assert api.post("/api/v1/users/bob/password-link", "adm").status_code == 200


def test_an_account_in_use_without_an_address_gets_its_link_from_the_operator_only(app, api, rt, smtp) -> None:
    login(app.test_client(), "bob")
    refused = assert_error(api.post("/api/v1/users/bob/password-link", "adm"), 403, "no_email_address")
    assert "vault user password-link" in refused["error"]
    assert _links(rt, "bob") == 0 and not smtp.received
    with rt.db.session() as session:
        assert accounts.create_password_link(rt, session, accounts.get_user(session, "bob"), actor=None).secret


def test_a_service_account_with_a_token_is_in_use_though_nobody_signs_in_to_it(api, rt, users, smtp) -> None:
    users.make("svc", Role.BORROWER)
    users.token("svc")  # the operator's `vault token create`
    assert_error(api.post("/api/v1/users/svc/password-link", "adm"), 403, "no_email_address")
    _address(rt, "svc", "svc@example.com")
    assert api.post("/api/v1/users/svc/password-link", "adm").get_json()["password_link"]["delivery"] == "mail"


@pytest.mark.parametrize("settings_overrides", [{}, {"smtp_url": "smtp://127.0.0.1:1", "mail_from": "v@example.com"}])
def test_without_mail_an_administrator_gives_an_account_in_use_no_link(app, api, rt, settings_overrides) -> None:
    """No SMTP server, or no public address to put before the link: nothing the administrator can send."""
    _address(rt, "bob", "bob@example.com")
    login(app.test_client(), "bob")
    refused = assert_error(api.post("/api/v1/users/bob/password-link", "adm"), 403, "mail_not_configured")
    assert "vault user password-link" in refused["error"]
    assert _links(rt, "bob") == 0 and not outbox(rt)
    assert [(e.actor_name, e.reason_code) for e in events(rt, "user:manage", "denied")] == [
        ("adm", "mail_not_configured")]
    # The page says so before anyone presses a button, and refuses the same.
    admin = app.test_client()
    login(admin, "adm")
    bob_id = api.get("/api/v1/users/bob", "adm").get_json()["id"]
    page = admin.get(f"/admin/users/{bob_id}").get_data(as_text=True)
    assert "vault user password-link bob" in page
    assert post_form(admin, f"/admin/users/{bob_id}", f"/admin/users/{bob_id}/password-link").status_code == 403
    assert _links(rt, "bob") == 0
    # A brand-new account still gets its link from the administrator, shown (nobody's mail is needed).
    created = api.post("/api/v1/users", "adm", json={"username": "newbie"})
    assert created.status_code == 201
    shown = created.get_json()["password_link"]
    assert shown["delivery"] == "shown" and "/password/set/" in shown["url"]
    assert json.loads(events(rt, "account:password_link")[-1].detail) == {"hours": 72, "delivery": "shown"}


def test_a_new_account_keeps_its_link_shown_to_the_administrator(app, api, rt, smtp) -> None:
    created = api.post("/api/v1/users", "adm", json={"username": "newbie", "email": "newbie@example.com"})
    assert created.status_code == 201
    link = created.get_json()["password_link"]
    assert link["delivery"] == "shown" and "sent_to" not in link
    again = api.post("/api/v1/users/newbie/password-link", "adm").get_json()["password_link"]
    assert again["delivery"] == "shown"
    assert not smtp.received and not [row for row in outbox(rt) if row.kind == "password_link"]
    assert _use(app, again["url"], OWN) and _signs_in(app, "newbie", OWN)
    # From then on the account is its owner's: a new link goes by mail.
    mailed = api.post("/api/v1/users/newbie/password-link", "adm").get_json()["password_link"]
    assert mailed == {"delivery": "mail", "sent_to": "•••@example.com", "expires_at": mailed["expires_at"]}


def test_a_disabled_account_in_use_is_sent_no_link(app, api, rt, smtp) -> None:
    _address(rt, "bob", "bob@example.com")
    login(app.test_client(), "bob")
    assert api.post("/api/v1/users/bob/disable", "adm").status_code == 200
    assert_error(api.post("/api/v1/users/bob/password-link", "adm"), 400, "account_disabled")
    assert _links(rt, "bob") == 0 and not outbox(rt)


def test_an_account_the_operator_gave_a_password_is_in_use_before_its_first_sign_in(app, api, rt, smtp) -> None:
    """Before: `vault user add --password-stdin` made an account that counted as brand-new until its owner
    signed in, so any administrator was shown a link for it, set a password of their own and signed in as the
    person, with the password the operator had handed over now dead."""
    added = run(rt, "user", "add", "typed", "--role", "borrower", "--password-stdin", "--email", "typed@example.com",
                input=OWN + "\n")
    assert added.exit_code == 0, added.output
    answer = api.post("/api/v1/users/typed/password-link", "adm")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["password_link"]["delivery"] == "mail" and "url" not in answer.get_json()["password_link"]
    assert not _use(app, answer.get_data(as_text=True), CHOSEN)
    assert not _signs_in(app, "typed", CHOSEN) and _signs_in(app, "typed", OWN)
    # The page says the same before the button is pressed: where the link will go, not that it is shown.
    admin = app.test_client()
    login(admin, "adm")
    typed_id = api.get("/api/v1/users/typed", "adm").get_json()["id"]
    made = post_form(admin, f"/admin/users/{typed_id}", f"/admin/users/{typed_id}/password-link")
    page = admin.get(location(made))
    assert ("success", "A one-time password link was sent to •••@example.com.") in flashes(page)
    assert _LINK.search(page.get_data(as_text=True)) is None
    # The creation record says which kind of password the account started with.
    assert [json.loads(e.detail) for e in events(rt, "user:create") if e.subject_user_id == typed_id] == [
        {"username": "typed", "password": "chosen"}]


def test_an_address_an_administrator_set_before_a_chosen_passwords_first_use_binds_them(app, api, rt, users,
                                                                                          smtp) -> None:
    """The account is in use from its creation: an address set by an administrator before the first sign-in
    is theirs, not the one it started with, so they cannot also mail the link to it."""
    users.make("adm2", Role.ADMIN)
    assert run(rt, "user", "add", "typed", "--password-stdin", input=OWN + "\n").exit_code == 0
    assert api.post("/api/v1/users/typed/email", "adm", json={"email": "mine@example.org"}).status_code == 200
    assert_error(api.post("/api/v1/users/typed/password-link", "adm"), 403, "separation_of_duties")
    assert _links(rt, "typed") == 0
    assert api.post("/api/v1/users/typed/password-link", "adm2").get_json()["password_link"]["delivery"] == "mail"


def test_a_password_its_owner_set_through_a_link_is_theirs_before_they_sign_in(app, api, rt, smtp) -> None:
    """Before: an owner who set their password with the link they were handed, and had not signed in yet,
    could have it replaced by any administrator shown a second link."""
    created = api.post("/api/v1/users", "adm", json={"username": "newbie", "email": "newbie@example.com"})
    assert _use(app, created.get_json()["password_link"]["url"], OWN)
    again = api.post("/api/v1/users/newbie/password-link", "adm").get_json()["password_link"]
    assert again["delivery"] == "mail" and "url" not in again
    assert _signs_in(app, "newbie", OWN)


def test_an_account_nobody_chose_a_password_for_keeps_its_link_shown_to_its_creator(app, api, rt, users,
                                                                                   smtp) -> None:
    """Created by an administrator: shown to them again. Created by the operator with --link: no administrator
    made it, so none is shown its link (tests/api/test_account_holders.py)."""
    assert run(rt, "user", "add", "linked", "--link").exit_code == 0
    assert api.post("/api/v1/users", "adm", json={"username": "newbie"}).status_code == 201
    shown = api.post("/api/v1/users/newbie/password-link", "adm").get_json()["password_link"]
    assert shown["delivery"] == "shown" and "/password/set/" in shown["url"]
    assert_error(api.post("/api/v1/users/linked/password-link", "adm"), 403, "no_email_address")
    assert [json.loads(e.detail)["password"] for e in events(rt, "user:create")
            if json.loads(e.detail)["username"] in ("linked", "newbie")] == ["link", "link"]


@pytest.mark.parametrize(("by_operator", "in_use"), [(True, True), (False, False)])
def test_a_creation_recorded_before_the_record_said_which_password(api, rt, by_operator, in_use) -> None:
    """Older `user:create` records do not say: the operator's might have chosen a password (taken as in use,
    the side that keeps the account from an administrator), an administrator's never did."""
    with rt.db.session() as session:
        adm = accounts.get_user(session, "adm")
        old = User(username="old", display_name="Old", password_hash=rt.passwords.hash(OWN), status=UserStatus.ACTIVE)
        session.add(old)
        session.flush()
        rt.audit.record(session, action=AuditAction.USER_CREATE, actor=None if by_operator else adm,
                        ctx=AccessContext.cli(), subject_user_id=old.id, detail={"username": "old"})
        assert accounts.established(session, old) is in_use
