"""The second factor: enrolment with a QR code drawn by the app, sign-in codes, replay, recovery codes."""

from __future__ import annotations

import html
import re
import urllib.parse
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from tests.conftest import csrf_from, login, second_factor_code
from tests.security.helpers import events, flashes, location, password_step, post_form
from vault.core.errors import ServiceError
from vault.models import LoginAttempt, RecoveryCode, Role, TotpSecret
from vault.services import accounts, totp

_SECRET = re.compile(r'<code class="secret">([A-Z2-7]+)</code>')
_CODES = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


def _secret_on(page_html):
    match = _SECRET.search(page_html)
    assert match, "no secret on the enrolment page"
    return match.group(1)


def _code_step(client, code):
    token = csrf_from(client.get("/login/code").get_data(as_text=True))
    return client.post("/login/code", data={"code": code, "csrf_token": token})


def _accept_agreement(client):
    return post_form(client, "/agreement", accept="y")


def test_required_role_must_enrol_before_anything_else(client, users, rt):
    users.make("val", Role.APPROVER, second_factor=False)
    assert location(password_step(client, "val")) == "/"
    # Every page, and every form, sends the person to the enrolment page.
    for path in ["/", "/account", "/agreement", "/admin/users", "/login/code"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert location(response) == "/account/second-factor", path
    token = csrf_from(client.get("/account/second-factor").get_data(as_text=True))
    refused = client.post("/account/logout-everywhere", data={"csrf_token": token})
    assert location(refused) == "/account/second-factor"
    assert events(rt, "auth:logout_everywhere") == []
    # The sign-in itself is audited as such, with the enrolment still owed.
    assert [e.detail for e in events(rt, "auth:login", "allowed")] == ['{"second_factor":"enrolment_required"}']


def test_enrolment_shows_a_qr_code_until_a_valid_code_confirms_it(client, users, rt):
    users.make("val", Role.APPROVER, second_factor=False)
    password_step(client, "val")
    page = client.get("/account/second-factor").get_data(as_text=True)
    secret = _secret_on(page)
    # The QR code is an inline SVG data: URI made by the app (no third party sees the secret).
    qr = re.search(r'<img src="(data:image/svg\+xml[^"]+)"', page)
    assert qr, "no QR code image"
    svg = urllib.parse.unquote(html.unescape(qr.group(1)).partition(",")[2])
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg
    # Reloading shows the same secret: what the app scanned stays valid.
    assert _secret_on(client.get("/account/second-factor").get_data(as_text=True)) == secret

    wrong = post_form(client, "/account/second-factor", code="123456" if pyotp.TOTP(secret).now() != "123456"
                      else "654321")
    assert wrong.status_code == 200
    assert any(kind == "error" for kind, _ in flashes(wrong))
    assert location(client.get("/")) == "/account/second-factor"
    assert [e.reason_code for e in events(rt, "totp:enrol", "denied")] == ["bad_second_factor"]

    done = post_form(client, "/account/second-factor", code=pyotp.TOTP(secret).now())
    assert done.status_code == 200
    codes = _CODES.findall(done.get_data(as_text=True))
    assert len(codes) == totp.RECOVERY_CODE_COUNT == 10
    assert len(set(codes)) == 10
    with rt.db.session() as session:
        stored = list(session.scalars(select(RecoveryCode.code_hash)))
    assert len(stored) == 10 and not set(codes) & set(stored)  # only hashes are kept
    assert [e.actor_name for e in events(rt, "totp:enrol", "allowed")] == ["val"]
    # Next step: the agreement, then the start page.
    assert location(client.get("/")) == "/agreement"
    _accept_agreement(client)
    assert client.get("/").status_code == 200
    # The enrolment page does not show the secret again.
    again = client.get("/account/second-factor")
    assert location(again) == "/account"


def test_sign_in_asks_for_the_code_and_accepts_a_valid_one(client, users, rt):
    users.make("val", Role.APPROVER)
    assert location(password_step(client, "val")) == "/"
    for path in ["/", "/account", "/agreement"]:
        assert location(client.get(path)) == "/login/code", path
    # The password step alone is not a sign-in yet.
    assert events(rt, "auth:login", "allowed") == []
    assert [e.actor_name for e in events(rt, "auth:password")] == ["val"]
    with rt.db.session() as session:
        secret = totp.secret_of(rt, totp.record(session, accounts.get_user(session, "val")))
    response = _code_step(client, pyotp.TOTP(secret).now())  # what a phone app shows
    assert response.status_code == 302
    allowed = events(rt, "auth:login", "allowed")
    assert [(e.actor_name, e.detail) for e in allowed] == [("val", '{"second_factor":"totp"}')]
    _accept_agreement(client)
    assert client.get("/").status_code == 200


def test_wrong_code_is_refused_and_audited(client, users, rt):
    users.make("val", Role.APPROVER)
    password_step(client, "val")
    with rt.db.session() as session:
        secret = totp.secret_of(rt, totp.record(session, accounts.get_user(session, "val")))
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    response = _code_step(client, wrong)
    assert response.status_code == 200
    assert ("error", "The code is not valid.") in flashes(response)
    assert location(client.get("/")) == "/login/code"
    assert [e.reason_code for e in events(rt, "auth:login", "denied")] == ["bad_second_factor"]
    for bad in ["", "12345", "abcdef", "1234567"]:
        _code_step(client, bad)
    assert location(client.get("/")) == "/login/code"


def test_a_code_is_accepted_once(app, users, rt):
    users.make("val", Role.APPROVER)
    first, second = app.test_client(), app.test_client()
    code = second_factor_code(rt, "val")
    password_step(first, "val")
    assert _code_step(first, code).status_code == 302
    password_step(second, "val")
    replay = _code_step(second, code)
    assert replay.status_code == 200
    assert ("error", "This code has already been used; wait for the next one.") in flashes(replay)
    assert location(second.get("/")) == "/login/code"
    assert [e.reason_code for e in events(rt, "auth:login", "denied")] == ["code_reused"]
    # An older code (an earlier step within the drift window) is refused as well.
    with rt.db.session() as session:
        row = totp.record(session, accounts.get_user(session, "val"))
        older = totp.code_at(totp.secret_of(rt, row), row.last_step - 1)
    assert _code_step(second, older).status_code == 200
    assert location(second.get("/")) == "/login/code"


def test_a_recovery_code_works_once(app, users, rt):
    users.make("val", Role.APPROVER)
    code = users.recovery_codes["val"][3]
    first = app.test_client()
    password_step(first, "val")
    assert _code_step(first, code.upper().replace("-", " ")).status_code == 302  # typed loosely
    allowed = events(rt, "auth:login", "allowed")
    assert allowed[-1].detail == '{"recovery_codes_left":9,"second_factor":"recovery_code"}'
    second = app.test_client()
    password_step(second, "val")
    assert _code_step(second, code).status_code == 200
    assert location(second.get("/")) == "/login/code"
    assert events(rt, "auth:login", "denied")[-1].reason_code == "bad_second_factor"
    # Another person's recovery code is not yours.
    users.make("kim", Role.CUSTODIAN)
    assert _code_step(second, users.recovery_codes["kim"][0]).status_code == 200
    assert location(second.get("/")) == "/login/code"


def test_optional_second_factor_can_be_set_up_and_removed(client, users, rt):
    users.make("bob", Role.BORROWER)
    token = login(client, "bob")
    page = client.get("/account").get_data(as_text=True)
    assert "Set up an authenticator app" in page
    secret = _secret_on(client.get("/account/second-factor").get_data(as_text=True))
    done = post_form(client, "/account/second-factor", code=pyotp.TOTP(secret).now())
    assert len(_CODES.findall(done.get_data(as_text=True))) == 10
    assert client.get("/").status_code == 200  # this session has just proved the factor

    # From now on bob's sign-in asks for a code.
    other = client.application.test_client()
    password_step(other, "bob")
    assert location(other.get("/")) == "/login/code"

    # Removing it needs the password.
    wrong = client.post("/account/second-factor/remove", data={"password": "not my password", "csrf_token": token})
    assert location(wrong) == "/account"
    assert events(rt, "totp:remove", "denied")[-1].reason_code == "bad_credentials"
    with rt.db.session() as session:
        assert totp.enrolled(session, accounts.get_user(session, "bob"))
    client.post("/account/second-factor/remove", data={"password": "correct horse battery", "csrf_token": token})
    with rt.db.session() as session:
        assert not totp.enrolled(session, accounts.get_user(session, "bob"))
        assert list(session.scalars(select(RecoveryCode))) == []
    assert [e.actor_name for e in events(rt, "totp:remove", "allowed")] == ["bob"]


def test_a_required_second_factor_cannot_be_removed(client, users, rt):
    users.make("val", Role.APPROVER)
    token = login(client, "val")
    response = client.post("/account/second-factor/remove",
                           data={"password": "correct horse battery", "csrf_token": token})
    assert location(response) == "/account"
    with rt.db.session() as session:
        assert totp.enrolled(session, accounts.get_user(session, "val"))


def test_new_recovery_codes_replace_the_old_ones(client, users, rt):
    users.make("val", Role.APPROVER)
    old = users.recovery_codes["val"]
    token = login(client, "val")
    response = client.post("/account/recovery-codes", data={"password": "correct horse battery", "csrf_token": token})
    new = _CODES.findall(response.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    other = client.application.test_client()
    password_step(other, "val")
    assert _code_step(other, old[0]).status_code == 200  # the old codes are gone
    assert _code_step(other, new[0]).status_code == 302


def test_recovery_codes_can_be_downloaded_and_printed(client, users):
    users.make("val", Role.APPROVER)
    token = login(client, "val")
    page = client.post("/account/recovery-codes", data={"password": "correct horse battery", "csrf_token": token}
                       ).get_data(as_text=True)
    codes = _CODES.findall(page)
    link = re.search(r'id="download-codes" download="([^"]+)"\s+href="data:text/plain;charset=utf-8,([^"]+)"', page)
    assert link and link.group(1) == "vault-recovery-codes-val.txt"
    text = urllib.parse.unquote(html.unescape(link.group(2)))
    assert text.splitlines()[2:] == codes and "Val (val)" in text
    assert "data-print" in page and "/static/js/print.js" in page
    script = client.get("/static/js/print.js")
    assert script.status_code == 200 and b"window.print()" in script.get_data()
    css = client.get("/static/css/vault.css").get_data(as_text=True)
    assert "@media print" in css and ".topbar, .no-print" in css


def test_a_role_that_requires_the_factor_given_mid_session_sends_to_enrolment(client, users, rt):
    users.make("bob", Role.BORROWER)
    login(client, "bob")
    with rt.db.session() as session:
        accounts.assign_role(rt, session, accounts.get_user(session, "bob"), Role.CUSTODIAN, actor=None)
    assert location(client.get("/")) == "/account/second-factor"


def test_secret_is_160_bits_and_codes_follow_rfc_6238(rt, users):
    users.make("val", Role.APPROVER)
    with rt.db.session() as session:
        secret = totp.secret_of(rt, session.scalar(select(TotpSecret)))
    assert len(secret) == 32  # base32: 160 bits
    reference = pyotp.TOTP(secret)
    for moment in (0, 59, 1111111109, 2000000000):
        assert totp.code_at(secret, totp.time_step(moment)) == reference.at(moment)


_TOKEN_SECRET = re.compile(r'<code class="token-secret">(vt_[A-Za-z0-9_-]+)</code>')


def test_people_make_their_own_tokens_and_a_duty_role_gives_a_fresh_code(app, users, rt):
    """Finding 6: a duty role's token needs a fresh second factor and lives at most 12 hours."""
    users.make("val", Role.APPROVER)
    client = app.test_client()
    login(client, "val")
    refused = post_form(client, "/account", "/account/tokens", name="script", scope="read", hours="2")
    assert location(refused) == "/account"
    assert ("error", "Your roles need a fresh code from your authenticator to make a token.") in flashes(
        client.get("/account"))
    too_long = post_form(client, "/account", "/account/tokens", name="script", scope="read", hours="13",
                         code=second_factor_code(rt, "val"))
    assert location(too_long) == "/account"
    made = post_form(client, "/account", "/account/tokens", name="script", scope="read", hours="2",
                     code=second_factor_code(rt, "val"))
    assert made.status_code == 200
    secret = _TOKEN_SECRET.search(made.get_data(as_text=True)).group(1)
    # Shown once: the account page lists the token by its first characters only.
    page = client.get("/account").get_data(as_text=True)
    assert secret not in page and secret[:10] in page
    assert [e.outcome for e in events(rt, "token:create")] == ["allowed"]
    with rt.db.session() as session:
        token, _agreed = accounts.api_caller(session, secret, rt.settings)
        assert token.scope == "read" and token.expires_at - token.created_at <= timedelta(hours=2, minutes=1)


def test_a_borrower_makes_a_token_without_a_code(app, users, rt):
    users.make("bob", Role.BORROWER)
    client = app.test_client()
    login(client, "bob")
    made = post_form(client, "/account", "/account/tokens", name="sync", scope="write")
    assert made.status_code == 200
    secret = _TOKEN_SECRET.search(made.get_data(as_text=True)).group(1)
    with rt.db.session() as session:
        token, _agreed = accounts.api_caller(session, secret, rt.settings)
        assert token.scope == "write" and token.expires_at - token.created_at == timedelta(days=30)


def test_secrets_are_encrypted_at_rest_and_old_plain_ones_sealed_on_use(client, rt, users):
    """Finding 14: the TOTP secrets were stored in plain text: a database reader computed every code."""
    users.make("val", Role.APPROVER)
    with rt.db.session() as session:
        row = session.scalar(select(TotpSecret))
        stored, secret = row.secret, totp.secret_of(rt, row)
    assert secret not in stored and len(stored) == 64
    # Bound to its owner: the same ciphertext on another person's row does not open.
    other = TotpSecret(user_id=row.user_id + 1, secret=stored)
    with pytest.raises(ServiceError):
        totp.secret_of(rt, other)
    # A secret stored in plain text by an older version still works, and is sealed by its next use.
    with rt.db.session() as session:
        session.execute(update(TotpSecret).values(secret=secret))
    password_step(client, "val")
    assert _code_step(client, pyotp.TOTP(secret).now()).status_code == 302
    with rt.db.session() as session:
        resealed = session.scalar(select(TotpSecret.secret))
    assert resealed != secret and len(resealed) == 64


@pytest.mark.parametrize("code", ["²²²²²²", "١٢٣٤٥٦", "１２３４５６"])
def test_digits_of_other_scripts_are_a_wrong_code_counted_and_recorded(client, users, rt, code):
    """`str.isdigit` takes them, and comparing them with a code in constant time raised: the sign-in
    answered 500, and the try was neither counted towards the lockout nor recorded."""
    users.make("val", Role.APPROVER)
    password_step(client, "val")
    response = _code_step(client, code)
    assert response.status_code == 200
    assert ("error", "The code is not valid.") in flashes(response)
    assert [e.reason_code for e in events(rt, "auth:login", "denied")] == ["bad_second_factor"]
    with rt.db.session() as session:
        assert session.get(LoginAttempt, "user:val").failures == 1
