"""Who may call: bearer tokens only, the same role rules as the pages, refusals audited."""

from __future__ import annotations

from sqlalchemy import select

from tests.api.conftest import accept_agreement, assert_error, events
from tests.conftest import login
from vault.models import Role, User
from vault.services import accounts


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
