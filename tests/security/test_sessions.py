"""Sessions: cookie flags, idle and absolute timeouts, revocation from the server, tampering."""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_from, login
from tests.security.helpers import events, flashes, location, password_step, post_form
from vault.core.context import AccessContext, operator_name
from vault.models import ApiToken, Role, WebSession
from vault.services import accounts, agreement
from vault.web import sessions

COOKIE = "vault_session"


def _user_id(rt, name):
    with rt.db.session() as session:
        return accounts.get_user(session, name).id


def test_idle_timeout_ends_the_session(client, users, rt):
    users.make("ann", Role.BORROWER)
    login(client, "ann")
    idle = rt.settings.session_idle_minutes * 60
    with client.session_transaction() as state:
        state["seen"] -= idle - 90  # active a minute and a half before the limit: still alive
    assert client.get("/").status_code == 200
    with client.session_transaction() as state:
        assert sessions.now() - state["seen"] < 5  # the request counted as activity
        state["seen"] -= idle
    response = client.get("/")
    assert response.status_code == 302 and location(response).startswith("/login")
    assert ("info", "Your session has expired; please sign in again.") in flashes(client.get(location(response)))
    assert client.get("/").status_code == 302  # the session is gone, not just refused once
    assert [(e.actor_name, e.detail) for e in events(rt, "auth:session_expired")] == [("ann", '{"reason":"idle"}')]


def test_absolute_timeout_ends_even_an_active_session(client, users, rt):
    users.make("ann", Role.BORROWER)
    login(client, "ann")
    with client.session_transaction() as state:
        state["iat"] -= rt.settings.session_absolute_hours * 3600
    assert location(client.get("/")).startswith("/login")
    assert [e.detail for e in events(rt, "auth:session_expired")] == ['{"reason":"absolute"}']


def test_a_session_without_timestamps_is_not_accepted(client, users):
    users.make("ann", Role.BORROWER)
    login(client, "ann")
    with client.session_transaction() as state:
        del state["iat"]
    assert location(client.get("/")).startswith("/login")


def test_log_out_everywhere_ends_every_session(app, users, rt):
    users.make("ann", Role.BORROWER)
    phone, laptop = app.test_client(), app.test_client()
    login(phone, "ann")
    token = login(laptop, "ann")
    assert phone.get("/").status_code == 200
    response = laptop.post("/account/logout-everywhere", data={"csrf_token": token})
    assert location(response) == "/login"
    assert location(phone.get("/")).startswith("/login")
    assert location(laptop.get("/")).startswith("/login")
    assert [e.actor_name for e in events(rt, "auth:logout_everywhere")] == ["ann"]
    login(phone, "ann")  # signing in again works


def test_a_copied_cookie_dies_with_log_out_everywhere(app, users):
    users.make("ann", Role.BORROWER)
    original = app.test_client()
    token = login(original, "ann")
    stolen = app.test_client()
    stolen.set_cookie(COOKIE, original.get_cookie(COOKIE).value)
    assert stolen.get("/").status_code == 200
    original.post("/account/logout-everywhere", data={"csrf_token": token})
    assert location(stolen.get("/")).startswith("/login")


def test_plain_sign_out_leaves_other_sessions(app, users):
    users.make("ann", Role.BORROWER)
    phone, laptop = app.test_client(), app.test_client()
    login(phone, "ann")
    token = login(laptop, "ann")
    laptop.post("/logout", data={"csrf_token": token})
    assert phone.get("/").status_code == 200


def test_disabling_ends_sessions_and_tokens_at_once(app, users, rt):
    users.make("adm", Role.ADMIN)
    users.make("bob", Role.BORROWER)
    bob_id = _user_id(rt, "bob")
    bob = app.test_client()
    login(bob, "bob")
    secret = users.token("bob")
    with rt.db.session() as session:
        agreement.accept(rt, session, accounts.get_user(session, "bob"), AccessContext.cli())
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    admin = app.test_client()
    token = login(admin, "adm")
    unmeant = admin.post(f"/admin/users/{bob_id}/disable", data={"csrf_token": token, "reason": "Left"})
    assert unmeant.status_code == 400 and "Tick the box to confirm." in unmeant.get_data(as_text=True)
    assert bob.get("/").status_code == 200  # nothing ended
    response = admin.post(f"/admin/users/{bob_id}/disable",
                          data={"csrf_token": token, "confirm": "y", "reason": "Copied the price lists"})
    assert response.status_code == 302
    assert location(bob.get("/")).startswith("/login")
    api = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 401
    with rt.db.session() as session:
        assert all(t.revoked_at is not None for t in session.scalars(select(ApiToken)))
    assert [(e.actor_name, e.subject_user_id, e.reason_text) for e in events(rt, "user:disable")] == [
        ("adm", bob_id, "Copied the price lists")]
    assert [e.actor_name for e in events(rt, "token:revoke")] == ["adm"]
    # Signing in is refused with the usual words; the audit log says why.
    refused = password_step(app.test_client(), "bob")
    assert refused.status_code == 200
    assert events(rt, "auth:login", "denied")[-1].reason_code == "account_disabled"

    admin.post(f"/admin/users/{bob_id}/enable", data={"csrf_token": token})
    login(app.test_client(), "bob")
    assert [e.actor_name for e in events(rt, "user:enable")] == ["adm"]


def test_disable_user_service_is_immediate_for_the_cli_too(app, users, rt):
    users.make("bob", Role.BORROWER)
    bob = app.test_client()
    login(bob, "bob")
    with rt.db.session() as session:
        accounts.disable_user(rt, session, accounts.get_user(session, "bob"), None)
    assert location(bob.get("/")).startswith("/login")
    assert [(e.actor_name, e.named_place) for e in events(rt, "user:disable")] == [(operator_name(), "command line")]


def test_a_tampered_cookie_is_refused(app, users):
    users.make("ann", Role.BORROWER)
    client = app.test_client()
    login(client, "ann")
    value = client.get_cookie(COOKIE).value
    payload, _, signature = value.rpartition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    forged = app.test_client()
    forged.set_cookie(COOKIE, f"{payload}.{flipped}")
    assert location(forged.get("/")).startswith("/login")
    truncated = app.test_client()
    truncated.set_cookie(COOKIE, value[:-5])
    assert location(truncated.get("/")).startswith("/login")


def test_a_cookie_signed_with_another_key_is_refused(app, users, rt):
    users.make("ann", Role.BORROWER)
    other = Flask("forger")
    other.secret_key = "not-the-secret-key"
    serializer = SecureCookieSessionInterface().get_signing_serializer(other)
    forged = serializer.dumps({"_user_id": str(_user_id(rt, "ann")), "_fresh": True, "epoch": 0,
                               "iat": sessions.now(), "seen": sessions.now(), "mfa": "none", "agreed": "1"})
    client = app.test_client()
    client.set_cookie(COOKIE, forged)
    assert location(client.get("/")).startswith("/login")


def test_the_signing_serializer_is_kept_while_the_keys_stay_the_same(app, users):
    """Made once, not at every request (an API call's too); a changed key is a new serializer at once: a
    cookie signed under the old key then holds only while that key is a fallback."""
    users.make("ann", Role.BORROWER)
    interface = app.session_interface
    first = interface.get_signing_serializer(app)
    client = app.test_client()
    login(client, "ann")
    assert client.get("/").status_code == 200
    assert interface.get_signing_serializer(app) is first
    old = app.secret_key
    app.secret_key = "a-key-rotated-in-its-place"
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    rotated = interface.get_signing_serializer(app)
    assert rotated is not first and rotated.secret_keys == [old.encode(), b"a-key-rotated-in-its-place"]
    assert client.get("/").status_code == 200  # the old key is a fallback: still signed in
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert interface.get_signing_serializer(app).secret_keys == [b"a-key-rotated-in-its-place"]
    assert location(client.get("/")).startswith("/login")  # nor any more


def _session_cookie(response):
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def test_cookie_flags_over_http(client, users):
    users.make("ann", Role.BORROWER)
    cookie = _session_cookie(password_step(client, "ann"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_cookie_is_secure_when_the_request_came_over_tls(client, users):
    users.make("ann", Role.BORROWER)
    site = "https://vault.example"
    token = csrf_from(client.get("/login", base_url=site).get_data(as_text=True))
    # Over HTTPS the CSRF check wants a same-site Referer, which the Referrer-Policy lets browsers send.
    response = client.post("/login", base_url=site, headers={"Referer": site + "/login"},
                           data={"username": "ann", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    cookie = _session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_survives_a_password_change_but_others_end(app, users, rt):
    users.make("ann", Role.BORROWER)
    here, there = app.test_client(), app.test_client()
    login(there, "ann")
    login(here, "ann")
    response = post_form(here, "/account", "/account/password", current=PASSWORD, new="a much better passphrase",
                         confirm="a much better passphrase")
    assert location(response) == "/account"
    assert here.get("/").status_code == 200
    assert location(there.get("/")).startswith("/login")
    login(app.test_client(), "ann", "a much better passphrase")
    assert [e.outcome for e in events(rt, "account:password")] == ["allowed"]


def test_a_cookie_replayed_from_another_browser_is_dropped(app, users):
    users.make("ann", Role.BORROWER)
    original = app.test_client()
    original.environ_base["HTTP_USER_AGENT"] = "Browser/1 (ann's laptop)"
    login(original, "ann")
    thief = app.test_client()
    thief.environ_base["HTTP_USER_AGENT"] = "OtherBrowser/9"
    thief.set_cookie(COOKIE, original.get_cookie(COOKIE).value)
    assert location(thief.get("/")).startswith("/login")


def test_sign_out_ends_the_session_on_the_server_too(app, users, rt):
    """Finding 8: a cookie copied before "sign out" must not keep working afterwards."""
    users.make("ann", Role.BORROWER)
    browser = app.test_client()
    token = login(browser, "ann")
    copied = browser.get_cookie(COOKIE).value
    thief = app.test_client()
    thief.set_cookie(COOKIE, copied)
    assert thief.get("/").status_code == 200  # the copy works while the session lives
    browser.post("/logout", data={"csrf_token": token})
    assert location(thief.get("/")).startswith("/login")
    with rt.db.session() as session:
        rows = list(session.scalars(select(WebSession)))
    assert len(rows) == 1 and rows[0].ended_at is not None
def test_a_forwarded_for_header_does_not_carry_a_cookie_to_another_address(app, users):
    """Finding 9: with no proxy configured (VAULT_PROXY_COUNT=0) the session's address binding used a
    raw X-Forwarded-For, so a thief naming the victim's address in that header kept the session."""
    users.make("ann", Role.BORROWER)
    original = app.test_client()
    original.environ_base.update(REMOTE_ADDR="10.0.0.1", HTTP_USER_AGENT="Browser/1")
    login(original, "ann")
    assert original.get("/").status_code == 200
    thief = app.test_client()
    thief.environ_base.update(REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="Browser/1",
                              HTTP_X_FORWARDED_FOR="10.0.0.1")
    thief.set_cookie(COOKIE, original.get_cookie(COOKIE).value)
    assert location(thief.get("/")).startswith("/login")


def test_the_same_address_keeps_its_session_whatever_it_forwards(app, users):
    users.make("ann", Role.BORROWER)
    browser = app.test_client()
    browser.environ_base.update(REMOTE_ADDR="10.0.0.1", HTTP_USER_AGENT="Browser/1")
    login(browser, "ann")
    browser.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.50"
    assert browser.get("/").status_code == 200
