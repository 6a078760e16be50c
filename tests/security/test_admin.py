"""Account administration: the admin manages people and roles, and reads no customer file."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, csrf_from, login
from tests.security.helpers import events, flashes, location, password_step
from vault.core.actions import Action
from vault.models import Role, TotpSecret
from vault.pages import admin as admin_pages
from vault.services import accounts, totp
from vault.web import refusals
from vault.web.guard import coverage

# What an admin must never reach: customers, files, loans, the audit trail.
NOT_FOR_ADMIN = {a for a in Action if a.value.split(":")[0] in {"customer", "document", "loan", "audit", "quota"}}


def _id(rt, name):
    with rt.db.session() as session:
        return accounts.get_user(session, name).id


def _roles(rt, name):
    with rt.db.session() as session:
        return {str(role) for role in accounts.get_user(session, name).role_set}


def test_admin_lists_and_creates_people(client, users, rt):
    users.make("adm", Role.ADMIN)
    users.make("bob", Role.BORROWER)
    token = login(client, "adm")
    page = client.get("/admin/users").get_data(as_text=True)
    assert ">adm</a>" in page and ">bob</a>" in page
    response = client.post("/admin/users", data={
        "csrf_token": token, "username": "newbie", "display_name": "New Person", "roles": ["borrower", "compiler"]})
    assert location(response) == f"/admin/users/{_id(rt, 'newbie')}"
    # Asked, not given: adm holds the account's link, so a second administrator gives it reach.
    assert _roles(rt, "newbie") == set()
    created = events(rt, "user:create")
    assert [(e.actor_name, e.detail) for e in created][-1] == ("adm", '{"password":"link","username":"newbie"}')
    assert [(e.actor_name, json.loads(e.detail)["role"]) for e in events(rt, "role:request")] == [
        ("adm", "borrower"), ("adm", "compiler")]
    page = client.get(location(response)).get_data(as_text=True)
    assert "Waiting for a second person" in page
    users.make("adm2", Role.ADMIN)
    users.approve_roles("newbie", by="adm2")
    assert _roles(rt, "newbie") == {"borrower", "compiler"}
    # The new person sets their first password through the one-time link the admin hands over.
    link = re.search(r'<code class="password-link">[^<]*?(/password/set/[A-Za-z0-9_-]+)</code>', page).group(1)
    person = client.application.test_client()
    form = csrf_from(person.get(link).get_data(as_text=True))
    person.post(link, data={"csrf_token": form, "new": "a fine long passphrase", "confirm": "a fine long passphrase"})
    login(client.application.test_client(), "newbie", "a fine long passphrase")


def test_the_people_list_is_paginated(client, users, monkeypatch):
    users.make("adm", Role.ADMIN)
    for name in ("bob", "cyd", "dan"):
        users.make(name, Role.BORROWER)
    monkeypatch.setattr(admin_pages, "USERS_PAGE", 2)
    login(client, "adm")
    first = client.get("/admin/users").get_data(as_text=True)
    assert ">adm</a>" in first and ">bob</a>" in first and ">cyd</a>" not in first
    assert "Page 1 of 2" in first
    second = client.get("/admin/users?page=2").get_data(as_text=True)
    assert ">cyd</a>" in second and ">dan</a>" in second and ">adm</a>" not in second
    for page in ("0", "-1", "99", "x"):
        assert client.get(f"/admin/users?page={page}").status_code == 200


def test_creating_with_a_bad_name_or_conflicting_roles_creates_nothing(client, users, rt):
    users.make("adm", Role.ADMIN)
    token = login(client, "adm")
    weak = client.post("/admin/users", data={"csrf_token": token, "username": "x 1"})
    assert weak.status_code == 200
    assert ("error", "A user name is 1–64 letters, digits, dots, dashes or underscores.") in flashes(weak)
    clash = client.post("/admin/users", data={"csrf_token": token, "username": "x2", "roles": ["admin", "borrower"]})
    assert clash.status_code == 403
    assert "An administrator holds no other role." in clash.get_data(as_text=True)
    with rt.db.session() as session:
        assert accounts.find_user(session, "x 1") is None
        assert accounts.find_user(session, "x2") is None
    assert [e.reason_code for e in events(rt, "role:assign", "denied")] == ["role_conflict"]


def test_role_conflicts_are_refused_with_their_reason(client, users, rt):
    users.make("adm", Role.ADMIN)
    users.make("val", Role.APPROVER)
    val = _id(rt, "val")
    token = login(client, "adm")
    page = client.get(f"/admin/users/{val}").get_data(as_text=True)
    assert "Give role" in page
    refused = client.post(f"/admin/users/{val}/roles/add", data={"csrf_token": token, "role": "auditor"})
    assert refused.status_code == 403
    body = refused.get_data(as_text=True)
    assert "An auditor cannot also be approver, custodian or compiler." in body
    assert "role_conflict" in body
    assert _roles(rt, "val") == {"approver"}
    denied = events(rt, "role:assign", "denied")
    assert [(e.actor_name, e.subject_user_id, e.reason_code) for e in denied] == [("adm", val, "role_conflict")]
    # An allowed role goes through, and can be taken away again.
    client.post(f"/admin/users/{val}/roles/add", data={"csrf_token": token, "role": "borrower"})
    assert _roles(rt, "val") == {"approver", "borrower"}
    client.post(f"/admin/users/{val}/roles/remove", data={"csrf_token": token, "role": "approver"})
    assert _roles(rt, "val") == {"borrower"}
    assert [e.detail for e in events(rt, "role:remove")] == ['{"role":"approver"}']


def test_admin_cannot_change_or_disable_their_own_account(client, users, rt):
    users.make("adm", Role.ADMIN)
    me = _id(rt, "adm")
    token = login(client, "adm")
    assert client.post(f"/admin/users/{me}/roles/add", data={"csrf_token": token, "role": "borrower"}).status_code \
        == 403
    response = client.post(f"/admin/users/{me}/disable", data={"csrf_token": token, "confirm": "y"})
    assert response.status_code == 403
    assert "Nobody may disable their own account." in response.get_data(as_text=True)
    assert client.post(f"/admin/users/{me}/second-factor/reset", data={"csrf_token": token}).status_code == 403
    assert client.get("/").status_code == 200
    assert _roles(rt, "adm") == {"admin"}


def test_admin_reads_no_file_customer_loan_or_audit_page(app, client, users, rt):
    users.make("adm", Role.ADMIN)
    login(client, "adm")
    table = coverage(app)
    pages = [rule for rule in app.url_map.iter_rules()
             if table.get(rule.endpoint) in NOT_FOR_ADMIN and "GET" in rule.methods
             and not rule.rule.startswith("/api/")]  # the API (tokens) is covered by its own tests
    assert any(table[rule.endpoint] == Action.CUSTOMER_READ for rule in pages)  # the customer list at least
    for rule in pages:
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)
        response = client.get(path)
        assert response.status_code == 403, (path, response.status_code)
    # Every refusal is audited as the admin's.
    assert {e.actor_name for e in events(rt, "customer:read", "denied")} == {"adm"}


def test_people_without_the_admin_role_cannot_open_the_admin_pages(client, users, rt):
    users.make("val", Role.APPROVER)
    users.make("bob", Role.BORROWER)
    token = login(client, "val")
    assert client.get("/admin/users").status_code == 403
    bob = _id(rt, "bob")
    assert client.post(f"/admin/users/{bob}/disable", data={"csrf_token": token, "confirm": "y"}).status_code == 403
    assert client.post(f"/admin/users/{bob}/roles/add", data={"csrf_token": token, "role": "compiler"}).status_code \
        == 403
    assert _roles(rt, "bob") == {"borrower"}
    with rt.db.session() as session:
        assert not accounts.get_user(session, "bob").disabled
    assert "Users" not in client.get("/").get_data(as_text=True).split("<main>")[0]


def test_unknown_user_id_is_404(client, users):
    users.make("adm", Role.ADMIN)
    token = login(client, "adm")
    assert client.get("/admin/users/9999").status_code == 404
    assert client.post("/admin/users/9999/disable", data={"csrf_token": token, "confirm": "y"}).status_code == 404


def test_reset_second_factor_ends_sessions_and_asks_for_a_new_enrolment(app, users, rt):
    users.make("adm", Role.ADMIN)
    users.make("kim", Role.CUSTODIAN)
    kim = app.test_client()
    login(kim, "kim")
    admin = app.test_client()
    token = login(admin, "adm")
    response = admin.post(f"/admin/users/{_id(rt, 'kim')}/second-factor/reset", data={"csrf_token": token})
    assert response.status_code == 302
    with rt.db.session() as session:
        assert session.scalar(select(TotpSecret).where(TotpSecret.user_id == _id(rt, "kim"))) is None
    assert location(kim.get("/")).startswith("/login")
    assert [(e.actor_name, e.subject_user_id) for e in events(rt, "totp:reset")] == [("adm", _id(rt, "kim"))]
    # At the next sign-in the custodian must set up a new authenticator before anything else.
    assert location(password_step(kim, "kim", PASSWORD)) == "/"
    assert location(kim.get("/")) == "/account/second-factor"
    with rt.db.session() as session:
        assert not totp.enrolled(session, accounts.get_user(session, "kim"))


_HINT = re.compile(r'<p class="hint">(.*?)</p>', re.S)
# The refusal page's hint for an account's separation of duties, in each language; never the loans' one.
_ACCOUNT_HINT = {"en": "Accounts and roles take two people", "ru": "Учётные записи и роли требуют двух человек",
                 "zh": "账户和角色需要两个人"}
_LOAN_HINTS = ("No one may approve, release or check", "согласовать, открыть или проверить", "批准、发放或核查")


@pytest.mark.parametrize("language", list(_ACCOUNT_HINT))
def test_an_account_refusal_explains_accounts_not_loans(client, users, rt, language):
    """Before: an administrator refused a password link, a second-factor reset or a change of their own roles was
    told that no one may approve, release or check their own request or file."""
    users.make("adm", Role.ADMIN)
    me = _id(rt, "adm")
    token = login(client, "adm")
    headers = {"Accept-Language": language}
    for path, data in ((f"/admin/users/{me}/password-link", {}), (f"/admin/users/{me}/second-factor/reset", {}),
                       (f"/admin/users/{me}/roles/remove", {"role": "admin"}),
                       (f"/admin/users/{me}/roles/add", {"role": "auditor"})):
        response = client.post(path, data={"csrf_token": token, **data}, headers=headers)
        assert response.status_code == 403, path
        page = response.get_data(as_text=True)
        assert "separation_of_duties" in page, path
        [hint] = _HINT.findall(page)
        assert _ACCOUNT_HINT[language] in hint, (path, hint)
        assert not any(words in hint for words in _LOAN_HINTS), (path, hint)
    assert _roles(rt, "adm") == {"admin"}


def test_the_separation_hint_follows_the_act_refused():
    """Loans and files keep the general hint; a waived departure confirmation gets its own; other codes are as
    before whatever the action."""
    general = refusals.HINTS["separation_of_duties"]
    assert refusals.hint_for("separation_of_duties", Action.LOAN_APPROVE) is general
    assert refusals.hint_for("separation_of_duties", None) is general
    for action in (Action.USER_MANAGE, Action.ROLE_ASSIGN, Action.ROLE_APPROVE, Action.MANAGER_APPROVE):
        assert refusals.hint_for("separation_of_duties", action) is refusals._ACCOUNT_DUTIES
    waive = refusals.ACTION_HINTS["separation_of_duties"]["departure:override"]
    assert refusals.hint_for("separation_of_duties", Action.DEPARTURE_OVERRIDE) is waive is not general
    assert refusals.hint_for("not_permitted", Action.USER_MANAGE) is refusals.HINTS["not_permitted"]
