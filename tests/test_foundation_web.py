"""Sign-in, sign-out, health check and the basic refusals of the web layer, on both databases."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_from, login
from vault.models import AuditEvent, Role


def _events(rt, action):
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_healthz_reports_database_and_storage(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "storage": "ok"}


def test_pages_need_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_sign_in_and_out_are_audited(client, users, rt):
    users.make("ann", Role.BORROWER)
    token = login(client, "ann")
    assert "Welcome, Ann" in client.get("/").get_data(as_text=True)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    logins = _events(rt, "auth:login")
    assert [(e.actor_name, e.outcome) for e in logins] == [("ann", "allowed")]
    assert [e.actor_name for e in _events(rt, "auth:logout")] == ["ann"]


def test_wrong_password_and_unknown_user_get_the_same_answer(client, users, rt):
    users.make("ann", Role.BORROWER)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    wrong = client.post("/login", data={"username": "ann", "password": "nope nope nope", "csrf_token": token})
    unknown = client.post("/login", data={"username": "zed", "password": PASSWORD, "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 200
    assert "Wrong user name or password." in wrong.get_data(as_text=True)
    assert "Wrong user name or password." in unknown.get_data(as_text=True)
    denied = _events(rt, "auth:login")
    assert [(e.actor_name, e.outcome, e.reason_code) for e in denied] == [
        ("ann", "denied", "bad_credentials"), ("zed", "denied", "bad_credentials")]


def test_login_without_csrf_token_is_refused(client, users):
    users.make("ann", Role.BORROWER)
    response = client.post("/login", data={"username": "ann", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_next_redirect_stays_on_site(client, users):
    users.make("ann", Role.BORROWER)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "ann", "password": PASSWORD, "csrf_token": token,
                                           "next": "https://evil.example/steal"})
    assert response.headers["Location"] == "/"


def test_security_headers(client):
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
