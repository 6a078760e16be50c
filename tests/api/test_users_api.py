"""Accounts through the API, as an HR system uses it: create a person, name their manager and address,
give and take roles (the two-person rule for roles of power), disable, enable, new password links,
second-factor resets; and every refusal the admin pages make, with nothing written by a refused act."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_error, events
from vault.api.serializers import SCHEMAS
from vault.core.errors import NotFound
from vault.models import AuditEvent, Role
from vault.services import accounts, totp

NINA = {"username": "nina", "display_name": "Nina Roe", "roles": ["borrower", "approver"],
        "email": "nina@example.com", "manager": "ann"}


def _secret(body: dict[str, Any]) -> str:
    url = body["password_link"]["url"]
    assert "/password/set/" in url
    return url.rsplit("/", 1)[1]


def _successes(rt: Any) -> int:
    """Success records, less the early warning's (refusals in a row are meant to raise alerts)."""
    with rt.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.outcome == "allowed", AuditEvent.action.not_in(("alert:raise", "alert:escalate"))))


def _roles(rt: Any, username: str) -> set[str]:
    with rt.db.session() as session:
        return {str(role) for role in accounts.get_user(session, username).role_set}


def test_an_hr_system_creates_a_person_and_manages_their_account(api, rt, users):
    users.make("adm2", Role.ADMIN)
    created = api.post("/api/v1/users", "adm", json=NINA)
    assert created.status_code == 201, created.get_json()
    assert created.headers["Cache-Control"] == "no-store"
    body = created.get_json()
    person = body["user"]
    assert (person["username"], person["display_name"], person["email"]) == ("nina", "Nina Roe", "nina@example.com")
    # Both roles wait for a second person: adm, who made the account, is shown its link and could sign in as it.
    assert person["roles"] == [] and person["status"] == "active"
    assert person["manager"] is None  # named, waiting for a second administrator
    [named] = person["pending_manager_requests"]
    assert (named["manager"]["username"], named["requested_by"]["username"]) == ("ann", "adm")
    assert person["second_factor"] == {"enrolled": False, "required": False}
    borrower, waiting = person["pending_role_requests"]
    assert [(r["role"], r["status"], r["requested_by"]["username"]) for r in (borrower, waiting)] == [
        ("borrower", "pending", "adm"), ("approver", "pending", "adm")]
    # The schema (checked on every answer) allows no other field: no password hash, token or secret.
    assert set(person) == set(SCHEMAS["User"]["properties"]) and set(body) == {"user", "password_link"}
    first_link = _secret(body)
    with rt.db.session() as session:
        assert accounts.password_link(session, first_link).user.username == "nina"
    for action in ("user:create", "user:email", "manager:request", "account:password_link"):
        assert [e.actor_name for e in events(rt, action) if e.subject_user_id == person["id"]] == ["adm"], action
    assert [e.actor_name for e in events(rt, "role:request") if e.subject_user_id == person["id"]] == ["adm", "adm"]
    # Read back, one and in the list; the page past the end is the last one.
    assert api.get("/api/v1/users/nina", "adm").get_json() == person
    listed = api.get("/api/v1/users?page=9", "adm").get_json()
    assert (listed["page"], listed["pages"], listed["total"]) == (1, 1, len(listed["users"]))
    assert [u for u in listed["users"] if u["username"] == "nina"] == [person]
    assert [u["username"] for u in listed["users"]] == sorted(u["username"] for u in listed["users"])
    # The second person: the one who asked may not decide, an auditor decides only the auditor role.
    assert [r["id"] for r in api.get("/api/v1/role-requests", "aud").get_json()["role_requests"]] == [
        borrower["id"], waiting["id"]]
    approve = f"/api/v1/role-requests/{waiting['id']}/approve"
    assert_error(api.post(approve, "adm"), 403, "separation_of_duties")
    assert_error(api.post(approve, "aud"), 403, "not_permitted")
    approved = api.post(approve, "adm2").get_json()
    assert (approved["status"], approved["decided_by"]["username"]) == ("approved", "adm2")
    assert api.post(f"/api/v1/role-requests/{borrower['id']}/approve", "adm2").get_json()["status"] == "approved"
    assert _roles(rt, "nina") == {"borrower", "approver"}
    assert [e.actor_name for e in events(rt, "role:approve")] == ["adm2", "adm2"]
    assert_error(api.post(approve, "adm2"), 404, "not_found")  # decided: no longer waiting
    # A plain role from an administrator who never held nina's link is given at once (200); from adm, and a
    # role of power from anyone, it is asked for (202) and can be refused.
    given = api.post("/api/v1/users/nina/roles", "adm2", json={"role": "compiler"})
    assert given.status_code == 200 and "compiler" in given.get_json()["roles"]
    asked = api.post("/api/v1/users/nina/roles", "adm", json={"role": "custodian"})
    assert asked.status_code == 202 and asked.get_json()["status"] == "pending"
    again = api.post("/api/v1/users/nina/roles", "adm", json={"role": "custodian"})
    assert again.status_code == 202 and again.get_json()["id"] == asked.get_json()["id"]
    refused = api.post(f"/api/v1/role-requests/{asked.get_json()['id']}/refuse", "adm2").get_json()
    assert refused["status"] == "refused" and "custodian" not in _roles(rt, "nina")
    removed = api.post("/api/v1/users/nina/roles/remove", "adm", json={"role": "compiler"}).get_json()
    assert removed["roles"] == ["approver", "borrower"] and removed["second_factor"]["required"] is True
    assert [json.loads(e.detail)["role"] for e in events(rt, "role:remove")] == ["compiler"]
    # Manager and address.
    assert api.post(f"/api/v1/manager-requests/{named['id']}/approve", "adm2").get_json()["status"] == "approved"
    assert api.get("/api/v1/users/nina", "adm").get_json()["manager"]["username"] == "ann"
    assert api.post("/api/v1/users/nina/manager", "adm", json={"manager": None}).get_json()["manager"] is None
    asked = api.post("/api/v1/users/nina/manager", "adm", json={"manager": "bob"})
    assert asked.status_code == 202 and asked.get_json()["manager"]["username"] == "bob"
    api.post(f"/api/v1/manager-requests/{asked.get_json()['id']}/approve", "adm2")
    assert_error(api.post("/api/v1/users/bob/manager", "adm", json={"manager": "nina"}), 400, "manager_cycle")
    changed = api.post("/api/v1/users/nina/email", "adm", json={"email": "Nina.Roe@Example.com"}).get_json()
    assert changed["email"] == "nina.roe@example.com"
    assert_error(api.post("/api/v1/users/bob/email", "adm", json={"email": "nina.roe@example.com"}),
                 409, "email_taken")
    assert api.post("/api/v1/users/nina/email", "adm", json={"email": None}).get_json()["email"] is None
    # A new link, while nina's account is still brand-new: shown, and the old one stops working.
    renewed = api.post("/api/v1/users/nina/password-link", "adm")
    assert renewed.status_code == 200 and renewed.headers["Cache-Control"] == "no-store"
    assert renewed.get_json()["password_link"]["delivery"] == "shown"
    with rt.db.session() as session:
        assert accounts.password_link(session, _secret(renewed.get_json())).user.username == "nina"
        with pytest.raises(NotFound):
            accounts.password_link(session, first_link)
    # Once her account is in use (a token), a link is hers alone: it would be mailed, and this vault sends no
    # mail, so only the operator gives one (tests/api/test_password_link_delivery.py: the mail itself).
    nina_token = api.token("nina")
    assert_error(api.post("/api/v1/users/nina/password-link", "adm"), 403, "mail_not_configured")
    # Disabled: the person's token stops at once; enabled again.
    assert api.get("/api/v1/me", token=nina_token).status_code == 200
    assert api.post("/api/v1/users/nina/disable", "adm").get_json()["status"] == "disabled"
    assert_error(api.get("/api/v1/me", token=nina_token), 401, "not_authenticated")
    assert api.post("/api/v1/users/nina/enable", "adm", json={}).get_json()["status"] == "active"
    # A lost phone: ann's authenticator is removed.
    assert api.get("/api/v1/users/ann", "adm").get_json()["second_factor"] == {"enrolled": True, "required": True}
    reset = api.post("/api/v1/users/ann/second-factor/reset", "adm").get_json()
    assert reset["second_factor"] == {"enrolled": False, "required": True}
    with rt.db.session() as session:
        assert not totp.enrolled(session, accounts.get_user(session, "ann"))
    assert [e.actor_name for e in events(rt, "totp:reset")] == ["adm"]
    paths = api.document["paths"]
    assert "202" in paths["/api/v1/users/{username}/roles"]["post"]["responses"]


REFUSALS: tuple[tuple[str, str, str, Any, int, str], ...] = (
    # who may: administrators manage accounts; administrators and auditors decide role requests
    ("GET", "/api/v1/users", "bob", None, 403, "not_permitted"),
    ("GET", "/api/v1/users/ann", "aud", None, 403, "not_permitted"),
    ("POST", "/api/v1/users", "aud", {"username": "zed"}, 403, "not_permitted"),
    ("POST", "/api/v1/users/bob/disable", "ann", None, 403, "not_permitted"),
    ("POST", "/api/v1/users/bob/roles", "aud", {"role": "borrower"}, 403, "not_permitted"),
    ("GET", "/api/v1/role-requests", "bob", None, 403, "not_permitted"),
    # nobody widens (or quietly narrows) their own standing
    ("POST", "/api/v1/users/adm/disable", "adm", None, 403, "self_disable"),
    ("POST", "/api/v1/users/adm/roles", "adm", {"role": "borrower"}, 403, "separation_of_duties"),
    ("POST", "/api/v1/users/adm/roles/remove", "adm", {"role": "admin"}, 403, "separation_of_duties"),
    ("POST", "/api/v1/users/adm/manager", "adm", {"manager": "ann"}, 403, "separation_of_duties"),
    ("POST", "/api/v1/users/adm/second-factor/reset", "adm", {}, 403, "separation_of_duties"),
    ("POST", "/api/v1/users/adm/password-link", "adm", None, 403, "separation_of_duties"),
    # static conflicts, also on creation (then nothing is created)
    ("POST", "/api/v1/users/aud/roles", "adm", {"role": "compiler"}, 403, "role_conflict"),
    ("POST", "/api/v1/users", "adm", {"username": "zed", "roles": ["admin", "borrower"]}, 403, "role_conflict"),
    # bad input
    ("POST", "/api/v1/users", "adm", {"username": "zed", "password": "a fine long passphrase"}, 422,
     "invalid_request"),
    ("POST", "/api/v1/users", "adm", {"username": "zed", "roles": "borrower"}, 422, "invalid_request"),
    ("POST", "/api/v1/users", "adm", {"username": "zed", "roles": ["borrower", "borrower"]}, 422, "invalid_request"),
    ("POST", "/api/v1/users", "adm", {"username": "zed", "roles": ["king"]}, 422, "invalid_request"),
    ("POST", "/api/v1/users", "adm", {"username": "x 1"}, 400, "invalid_username"),
    ("POST", "/api/v1/users", "adm", {"username": "bob"}, 409, "user_exists"),
    ("POST", "/api/v1/users", "adm", {"username": "zed", "manager": "nobody"}, 404, "not_found"),
    ("POST", "/api/v1/users", "adm", {"username": "zed", "manager": "gone"}, 422, "invalid_request"),
    ("POST", "/api/v1/users", "adm", {"username": "zed", "email": "not an address"}, 400, "invalid_email"),
    ("POST", "/api/v1/users", "adm", "zed", 422, "invalid_request"),
    ("POST", "/api/v1/users/bob/roles", "adm", {"role": "king"}, 422, "invalid_request"),
    ("POST", "/api/v1/users/bob/roles", "adm", {}, 422, "invalid_request"),
    ("POST", "/api/v1/users/bob/email", "adm", {}, 422, "invalid_request"),
    ("POST", "/api/v1/users/bob/email", "adm", {"email": ""}, 422, "invalid_request"),
    ("POST", "/api/v1/users/bob/manager", "adm", {"manager": "bob"}, 400, "manager_cycle"),
    ("POST", "/api/v1/users/bob/disable", "adm", {"now": True}, 422, "invalid_request"),
    ("GET", "/api/v1/users?page=0", "adm", None, 422, "invalid_request"),
    ("GET", "/api/v1/users?sort=name", "adm", None, 422, "invalid_request"),
    # unknown people and requests
    ("GET", "/api/v1/users/nobody", "adm", None, 404, "not_found"),
    ("POST", "/api/v1/users/nobody/enable", "adm", None, 404, "not_found"),
    ("POST", "/api/v1/role-requests/999/approve", "adm", None, 404, "not_found"),
    ("POST", "/api/v1/role-requests/999/refuse", "aud", None, 404, "not_found"),
)


def test_every_refusal_of_the_pages_is_made_and_writes_nothing(api, rt, users):
    users.make("gone", Role.BORROWER)
    with rt.db.session() as session:
        accounts.disable_user(rt, session, accounts.get_user(session, "gone"), None)
        session.commit()
    for who in {case[2] for case in REFUSALS}:
        api.token(who)  # tokens are acts of their own, made before the records are counted
    before = _successes(rt)
    for method, path, who, body, status, code in REFUSALS:
        options = {} if body is None else {"json": body}
        response = api.call(method, path, who, **options)
        assert (response.status_code, response.get_json()["code"]) == (status, code), (method, path, who, body)
    assert_error(api.post("/api/v1/users", "adm", data="username=zed"), 415, "json_required")
    assert _successes(rt) == before, "a refused act left a success record"
    with rt.db.session() as session:
        assert accounts.find_user(session, "zed") is None
        assert accounts.find_user(session, "x 1") is None
    assert _roles(rt, "adm") == {"admin"} and _roles(rt, "aud") == {"auditor"}
    # Refusals are recorded as the pages record them: a conflict on creation under role:assign.
    assert {e.reason_code for e in events(rt, "role:assign", "denied")} >= {"role_conflict", "separation_of_duties"}
    assert {e.reason_code for e in events(rt, "user:manage", "denied")} >= {
        "not_permitted", "self_disable", "separation_of_duties", "not_found"}
