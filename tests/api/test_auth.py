"""Who may call: bearer tokens only, the same role rules as the pages, refusals audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.api.conftest import accept_agreement, assert_error, events
from tests.conftest import login
from vault.core.errors import ServiceError
from vault.models import ApiToken, Role, User, utcnow
from vault.services import accounts, throttle


def test_me_describes_the_token_owner(api):
    response = api.get("/api/v1/me", "bob")
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "bob"
    assert body["display_name"] == "Bob"
    assert body["roles"] == ["borrower"]
    assert body["status"] == "active"
    assert response.headers["Cache-Control"] == "no-store"


def test_missing_malformed_and_unknown_tokens_are_401(api):
    assert_error(api.get("/api/v1/me"), 401, "not_authenticated")
    assert_error(api.get("/api/v1/me", headers={"Authorization": "Basic Ym9iOnB3"}), 401, "not_authenticated")
    assert_error(api.get("/api/v1/me", headers={"Authorization": "Bearer "}), 401, "not_authenticated")
    assert_error(api.get("/api/v1/me", token="vt_not-a-real-token"), 401, "not_authenticated")
    assert_error(api.get("/api/v1/me", token="no-prefix"), 401, "not_authenticated")


def test_a_revoked_token_is_401(api, rt):
    token = api.token("bob")
    assert api.get("/api/v1/me", token=token).status_code == 200
    with rt.db.session() as session:
        assert accounts.revoke_tokens(rt, session, accounts.get_user(session, "bob")) == 1
    assert_error(api.get("/api/v1/me", token=token), 401, "not_authenticated")
    assert_error(api.get("/api/v1/customers", token=token), 401, "not_authenticated")


def test_a_disabled_account_token_is_401(api, rt):
    token = api.token("bob")
    with rt.db.session() as session:
        session.scalar(select(User).where(User.username == "bob")).disabled = True
    assert_error(api.get("/api/v1/me", token=token), 401, "not_authenticated")


def test_a_session_cookie_alone_does_not_authenticate_the_api(api, client, rt):
    accept_agreement(rt, "bob")
    login(client, "bob")
    assert client.get("/").status_code == 200  # the cookie works for pages...
    assert_error(api.get("/api/v1/me"), 401, "not_authenticated")  # ...and is ignored by the API
    # With the cookie AND a token, the token decides.
    assert api.get("/api/v1/me", "carl").get_json()["username"] == "carl"


def test_wrong_role_is_403_not_permitted_and_audited(api, rt):
    # A borrower may not create customers; an auditor may not read them.
    assert_error(api.post("/api/v1/customers", "bob", json={"name": "X", "segment": "key"}), 403, "not_permitted")
    assert_error(api.get("/api/v1/customers", "aud"), 403, "not_permitted")
    denied = events(rt, "customer:create", "denied")
    assert [(e.actor_name, e.reason_code) for e in denied] == [("bob", "not_permitted")]
    assert [(e.actor_name, e.reason_code) for e in events(rt, "customer:read", "denied")] == [("aud", "not_permitted")]
    assert events(rt, "customer:create", "allowed") == []


def test_an_admin_reaches_nothing_but_their_own_account(api):
    assert api.get("/api/v1/me", "adm").status_code == 200
    for path in ("/api/v1/customers", "/api/v1/loans", "/api/v1/documents/1", "/api/v1/customers/1"):
        assert_error(api.get(path, "adm"), 403, "not_permitted")


def test_unknown_routes_and_methods_answer_json(api):
    assert_error(api.get("/api/v1/nothing-here", "bob"), 404, "not_found")
    assert_error(api.call("DELETE", "/api/v1/me", "bob"), 405, "method_not_allowed")


def test_a_token_works_only_once_the_agreement_is_accepted(api, users, rt):
    users.make("newcomer", Role.BORROWER)
    token = users.token("newcomer")
    assert_error(api.get("/api/v1/me", token=token), 403, "agreement_required")
    accept_agreement(rt, "newcomer")
    assert api.get("/api/v1/me", token=token).status_code == 200


def _token_row(rt, token):
    with rt.db.session() as session:
        return session.scalar(select(ApiToken).where(ApiToken.token_hash == accounts.hash_token(token)))


def test_a_locked_approvers_token_stops_at_once(api, rt):
    """Finding 6: an account lockout used to leave its tokens working."""
    token = api.token("ann")
    assert api.get("/api/v1/me", token=token).status_code == 200
    with rt.db.session() as session:
        for _ in range(rt.settings.login_max_failures):
            throttle.record_failure(session, rt.settings, "ann", "203.0.113.1")
    assert_error(api.get("/api/v1/me", token=token), 401, "not_authenticated")


def test_every_token_expires_and_a_duty_roles_within_12_hours(api, rt):
    bob, ann = api.token("bob"), api.token("ann")
    bob_row, ann_row = _token_row(rt, bob), _token_row(rt, ann)
    assert timedelta(days=29) < bob_row.expires_at - bob_row.created_at <= timedelta(days=30)
    assert ann_row.expires_at - ann_row.created_at <= timedelta(hours=12)
    # An old duty-role token without an expiry (as made before) is refused after 12 hours all the same.
    with rt.db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.id == ann_row.id).values(
            expires_at=None, created_at=utcnow() - timedelta(hours=13)))
        session.execute(update(ApiToken).where(ApiToken.id == bob_row.id).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    assert_error(api.get("/api/v1/me", token=ann), 401, "not_authenticated")
    assert_error(api.get("/api/v1/me", token=bob), 401, "not_authenticated")
    with rt.db.session() as session, pytest.raises(ServiceError) as refused:
        accounts.create_token(rt, session, accounts.get_user(session, "ann"),
                              expires_at=utcnow() + timedelta(hours=13))
    assert refused.value.code == "token_expiry"
    with rt.db.session() as session, pytest.raises(ServiceError) as refused:
        accounts.create_token(rt, session, accounts.get_user(session, "bob"),
                              expires_at=utcnow() + timedelta(days=rt.settings.token_max_days + 1))
    assert refused.value.code == "token_expiry"


def test_a_read_token_cannot_change_anything(api, rt):
    api.token("carl")  # accepts the agreement
    with rt.db.session() as session:
        read = accounts.create_token(rt, session, accounts.get_user(session, "carl"), scope="read").secret
    assert api.get("/api/v1/customers", token=read).status_code == 200
    assert_error(api.post("/api/v1/customers", token=read, json={"name": "Example Ltd"}), 403, "token_scope")
    assert events(rt, "customer:create") == []


def test_no_token_outlives_the_longest_lifetime_whatever_its_stored_expiry(api, rt):
    """A token made before tokens expired has no expiry: a duty role's stopped after 12 hours, anyone
    else's worked for ever. No token lives longer than `token_max_days` ("the longest lifetime of an API
    token"), counted from when it was made, and lowering the setting shortens the tokens already out."""
    import dataclasses

    bob, bea, carl = api.token("bob"), api.token("bea"), api.token("carl")
    limit = timedelta(days=rt.settings.token_max_days)
    bob_id, bea_id, carl_id = (_token_row(rt, token).id for token in (bob, bea, carl))
    with rt.db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.id == bob_id).values(
            expires_at=None, created_at=utcnow() - limit - timedelta(minutes=1)))  # as made before expiries
        session.execute(update(ApiToken).where(ApiToken.id == bea_id).values(
            expires_at=None, created_at=utcnow() - limit + timedelta(hours=1)))  # the same, younger
    assert_error(api.get("/api/v1/me", token=bob), 401, "not_authenticated")
    assert api.get("/api/v1/me", token=bea).status_code == 200
    assert api.get("/api/v1/me", token=carl).status_code == 200
    # The operator shortens the longest lifetime: a token made three days ago under the old one stops.
    with rt.db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.id == carl_id).values(
            created_at=utcnow() - timedelta(days=3)))
    rt.settings = dataclasses.replace(rt.settings, token_max_days=2)
    assert_error(api.get("/api/v1/me", token=carl), 401, "not_authenticated")
