"""An administrator who could hold an account's password does not also give it reach.

A brand-new account's password link is shown to the administrator who creates it, to hand over. Until its
owner sets a password nobody else saw, that administrator could set one with the link and sign in as the
account. So, for one person not to widen their own reach through an account they made:

* roles that this administrator gives the account are requests a second administrator decides, as roles of
  power are for everyone;
* a brand-new account's link is shown only to the administrator who created it: from another administrator it
  goes to the owner's mailbox, so a second administrator cannot take over an account waiting for its owner
  (already given roles, perhaps) by asking for a fresh link;
* the hold ends when the owner sets a password through a link that came from the operator or went to a mailbox
  no holder chose (an administrator who set the address a link went to may read it there).

Against a real SMTP server and database.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import assert_error, events
from tests.api.test_password_link_delivery import OWN, _delivered, _signs_in, _use
from tests.conftest import csrf_from, login
from tests.mail.helpers import outbox
from vault.core.context import AccessContext
from vault.mail.accounts import set_email
from vault.models import Role
from vault.services import accounts

SET_BY_ADMIN = "the administrator's own passphrase"


@pytest.fixture
def settings_overrides(mailing: dict[str, Any]) -> dict[str, Any]:
    return mailing


def _roles(rt: Any, username: str) -> set[str]:
    with rt.db.session() as session:
        return {str(role) for role in accounts.get_user(session, username).role_set}


def _create(api: Any, by: str, name: str, **fields: Any) -> dict[str, Any]:
    created = api.post("/api/v1/users", by, json={"username": name, "email": f"{name}@example.com", **fields})
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def test_the_administrator_who_made_an_account_gives_it_no_role_alone(app, api, rt, users, smtp) -> None:
    """Before: adm made pat with the borrower role, set pat's password with the link shown and signed in as pat,
    a borrower whose look-ups and loan requests carry pat's name."""
    users.make("adm2", Role.ADMIN)
    body = _create(api, "adm", "pat", roles=["borrower"])
    assert body["user"]["roles"] == [], "the creator gave the account a role alone"
    [waiting] = body["user"]["pending_role_requests"]
    assert (waiting["role"], waiting["requested_by"]["username"]) == ("borrower", "adm")
    assert _use(app, body["password_link"]["url"], SET_BY_ADMIN)  # what the creator can do with it
    assert _signs_in(app, "pat", SET_BY_ADMIN)
    # Given later by the same administrator: asked (202), not given.
    asked = api.post("/api/v1/users/pat/roles", "adm", json={"role": "compiler"})
    assert asked.status_code == 202 and asked.get_json()["status"] == "pending"
    assert _roles(rt, "pat") == set()
    # The second administrator decides; the one who asked cannot.
    assert_error(api.post(f"/api/v1/role-requests/{waiting['id']}/approve", "adm"), 403, "separation_of_duties")
    assert api.post(f"/api/v1/role-requests/{waiting['id']}/approve", "adm2").get_json()["status"] == "approved"
    assert _roles(rt, "pat") == {"borrower"}
    # Another administrator, who never held the link, gives a plain role at once.
    given = api.post("/api/v1/users/pat/roles", "adm2", json={"role": "compiler"})
    assert given.status_code == 200 and "compiler" in given.get_json()["roles"]
    assert [json.loads(e.detail)["role"] for e in events(rt, "role:request")] == ["borrower", "compiler"]


def test_the_same_on_the_admin_page(app, api, rt, users, smtp) -> None:
    admin = app.test_client()
    login(admin, "adm")
    form = admin.get("/admin/users")
    made = admin.post("/admin/users", data={"csrf_token": csrf_from(form.get_data(as_text=True)), "username": "pia",
                                            "display_name": "Pia", "roles": ["borrower"]})
    assert made.status_code in (200, 302), made.get_data(as_text=True)[:500]
    assert _roles(rt, "pia") == set()
    detail = api.get("/api/v1/users/pia", "adm").get_json()
    waiting = [(r["role"], r["requested_by"]["username"]) for r in detail["pending_role_requests"]]
    assert waiting == [("borrower", "adm")]


def test_only_the_creator_is_shown_a_brand_new_account_s_link(app, api, rt, users, smtp) -> None:
    """Before: adm2 asked for a fresh link of pat (made by adm, already a borrower, not yet signed in), was shown
    it, set pat's password and signed in as pat; pat's own link stopped working."""
    users.make("adm2", Role.ADMIN)
    body = _create(api, "adm", "pat")
    accounts_roles = api.post("/api/v1/users/pat/roles", "adm2", json={"role": "borrower"})
    assert accounts_roles.status_code == 200
    fresh = api.post("/api/v1/users/pat/password-link", "adm2")
    assert fresh.status_code == 200, fresh.get_json()
    link = fresh.get_json()["password_link"]
    assert link["delivery"] == "mail" and "url" not in link, "a second administrator was shown the link"
    assert not _use(app, fresh.get_data(as_text=True), SET_BY_ADMIN)
    _delivered(rt)
    [mail] = smtp.to("pat@example.com")
    assert _use(app, mail.text, OWN) and _signs_in(app, "pat", OWN)
    assert not _use(app, body["password_link"]["url"], SET_BY_ADMIN)  # the creator's link stopped working
    # The creator is shown a fresh link of a brand-new account, as before.
    other = _create(api, "adm", "pam")
    again = api.post("/api/v1/users/pam/password-link", "adm")
    assert again.get_json()["password_link"]["delivery"] == "shown" and other["password_link"]["delivery"] == "shown"
    assert [json.loads(e.detail)["delivery"] for e in events(rt, "account:password_link")
            if e.subject_user_id == body["user"]["id"]] == ["shown", "mail"]


def test_another_administrator_cannot_point_a_brand_new_account_s_address_at_their_own_mailbox(
        app, api, rt, users, smtp) -> None:
    users.make("adm2", Role.ADMIN)
    _create(api, "adm", "pat")
    assert api.post("/api/v1/users/pat/email", "adm2", json={"email": "adm2-private@example.net"}).status_code == 200
    assert_error(api.post("/api/v1/users/pat/password-link", "adm2"), 403, "separation_of_duties")
    assert not [m for m in outbox(rt) if "adm2-private" in m.recipient]


def test_a_brand_new_account_made_by_the_operator_gets_no_link_shown_to_an_administrator(app, api, rt, smtp) -> None:
    with rt.db.session() as session:
        accounts.create_user(rt, session, username="opa", password=None, by_link=True)
    fresh = api.post("/api/v1/users/opa/password-link", "adm")
    assert_error(fresh, 403, "no_email_address")
    assert "created this account" in fresh.get_json()["error"]


def test_the_hold_ends_when_the_owner_sets_a_password_through_a_mailed_link(app, api, rt, users, smtp) -> None:
    users.make("adm2", Role.ADMIN)
    _create(api, "adm", "pat")
    assert api.post("/api/v1/users/pat/roles", "adm", json={"role": "borrower"}).status_code == 202
    # adm chose the address at creation: a link mailed there may be adm's to read, and ends nothing.
    assert api.post("/api/v1/users/pat/password-link", "adm2").get_json()["password_link"]["delivery"] == "mail"
    _delivered(rt)
    [mail] = smtp.to("pat@example.com")
    assert _use(app, mail.text, OWN)
    assert api.post("/api/v1/users/pat/roles", "adm", json={"role": "compiler"}).status_code == 202
    # The operator sets the address (`vault user email`); adm2 mails pat a link there; pat sets a password nobody
    # else saw.
    with rt.db.session() as session:
        set_email(rt, session, accounts.get_user(session, "pat"), "pat@corp.example", actor=None,
                  ctx=AccessContext.cli())
    assert api.post("/api/v1/users/pat/password-link", "adm2").get_json()["password_link"]["delivery"] == "mail"
    _delivered(rt)
    [mail] = smtp.to("pat@corp.example")
    assert _use(app, mail.text, OWN + " now")
    given = api.post("/api/v1/users/pat/roles", "adm", json={"role": "compiler"})
    assert given.status_code == 200 and "compiler" in given.get_json()["roles"]
    # Signing in with the creator's own link again would make them a holder again; they are shown none now.
    link = api.post("/api/v1/users/pat/password-link", "adm").get_json()["password_link"]
    assert link["delivery"] == "mail"


def test_the_operator_still_gives_roles_at_once(rt, users) -> None:
    with rt.db.session() as session:
        made = accounts.create_user(rt, session, username="ops", password=None, by_link=True, roles=(Role.BORROWER,))
        assert made.role_set == {Role.BORROWER}


def test_a_link_mailed_to_an_address_the_creator_chose_does_not_end_their_hold(app, api, rt, users, smtp) -> None:
    """Before: adm made pat with adm's own mailbox as its address, set pat's password with the link shown,
    signed in as pat (now in use), asked for a link (mailed, to adm's mailbox), set a password with it, and the
    hold was over: adm gave pat the borrower role alone, an account adm signs in to."""
    body = _create(api, "adm", "pat", email="adm-private@example.net")
    assert _use(app, body["password_link"]["url"], SET_BY_ADMIN) and _signs_in(app, "pat", SET_BY_ADMIN)
    mailed = api.post("/api/v1/users/pat/password-link", "adm")
    assert mailed.get_json()["password_link"]["delivery"] == "mail"
    _delivered(rt)
    [mail] = smtp.to("adm-private@example.net")
    assert _use(app, mail.text, OWN)  # adm's mailbox, adm's password
    asked = api.post("/api/v1/users/pat/roles", "adm", json={"role": "borrower"})
    assert asked.status_code == 202 and asked.get_json()["status"] == "pending"
    assert _roles(rt, "pat") == set()
    # The person's own change of address while held ends nothing either: the holder may be the one signed in.
    with rt.db.session() as session:
        pat = accounts.get_user(session, "pat")
        set_email(rt, session, pat, "pat-new@example.org", actor=pat, ctx=AccessContext.cli())
    users.make("adm2", Role.ADMIN)
    assert api.post("/api/v1/users/pat/password-link", "adm2").get_json()["password_link"]["delivery"] == "mail"
    _delivered(rt)
    [mail] = smtp.to("pat-new@example.org")
    assert _use(app, mail.text, OWN + " again")
    assert api.post("/api/v1/users/pat/roles", "adm", json={"role": "compiler"}).status_code == 202
    # The operator's link ends it: it reaches nobody but whoever the operator gives it to.
    with rt.db.session() as session:
        issued = accounts.create_password_link(rt, session, accounts.get_user(session, "pat"), actor=None)
    assert _use(app, accounts.password_set_path(issued.secret or ""), OWN + " at last")
    given = api.post("/api/v1/users/pat/roles", "adm", json={"role": "borrower"})
    assert given.status_code == 200 and "borrower" in given.get_json()["roles"]


def test_an_administrator_who_holds_an_account_does_not_approve_its_roles(app, api, rt, users, smtp) -> None:
    """Before: adm made pat and was shown its link; adm2 asked for the approver role for pat and adm, the one
    who could sign in as pat, approved it: one administrator with an approver's account of their own."""
    users.make("adm2", Role.ADMIN)
    _create(api, "adm", "pat")
    asked = api.post("/api/v1/users/pat/roles", "adm2", json={"role": "approver"})
    assert asked.status_code == 202
    request_id = asked.get_json()["id"]
    refused = api.post(f"/api/v1/role-requests/{request_id}/approve", "adm")
    assert_error(refused, 403, "separation_of_duties")
    assert _roles(rt, "pat") == set()
    assert not events(rt, "role:approve")
    users.make("adm3", Role.ADMIN)
    assert api.post(f"/api/v1/role-requests/{request_id}/approve", "adm3").get_json()["status"] == "approved"
    assert _roles(rt, "pat") == {"approver"}


def test_an_administrator_who_holds_an_account_does_not_approve_it_as_someone_s_manager(
        app, api, rt, users, smtp) -> None:
    """Before: adm2 named pat (made by adm) bea's manager and adm approved it: pat, an account adm can sign in
    as, saw bea's customers on adm's word alone."""
    users.make("adm2", Role.ADMIN)
    users.make("adm3", Role.ADMIN)
    _create(api, "adm", "pat")
    named = api.post("/api/v1/users/bea/manager", "adm2", json={"manager": "pat"})
    assert named.status_code == 202, named.get_json()
    request_id = named.get_json()["id"]
    assert_error(api.post(f"/api/v1/manager-requests/{request_id}/approve", "adm"), 403,
                 "separation_of_duties")
    assert not events(rt, "manager:approve")
    decided = api.post(f"/api/v1/manager-requests/{request_id}/approve", "adm3")
    assert decided.get_json()["status"] == "approved"


def test_no_list_offers_a_holder_the_verdict_the_policy_refuses_them(app, api, rt, users, smtp) -> None:
    """Before: the role requests page, the person's page and the start page offered adm approve and refuse on
    requests about pat, whose link adm was shown; the click was then refused."""
    users.make("adm2", Role.ADMIN)
    users.make("adm3", Role.ADMIN)
    pat = _create(api, "adm", "pat")["user"]["id"]
    role = api.post("/api/v1/users/pat/roles", "adm2", json={"role": "approver"}).get_json()["id"]
    manager = api.post("/api/v1/users/bea/manager", "adm2", json={"manager": "pat"}).get_json()["id"]
    bea = api.get("/api/v1/users/bea", "adm").get_json()["id"]
    verdicts = {f"/admin/role-requests/{role}/approve", f"/admin/manager-requests/{manager}/approve"}

    def offered(name: str, *paths: str) -> set[str]:
        client = app.test_client()
        login(client, name)
        pages = "".join(client.get(path).get_data(as_text=True) for path in paths)
        return {verdict for verdict in verdicts if verdict in pages}

    for paths in (("/admin/role-requests",), (f"/admin/users/{pat}", f"/admin/users/{bea}")):
        assert offered("adm", *paths) == set(), paths
        assert offered("adm3", *paths) == verdicts, paths
    # The start page's to-do list names only the requests its reader may decide.
    for name, listed in (("adm", False), ("adm3", True)):
        client = app.test_client()
        login(client, name)
        assert ("Waiting for a second person" in client.get("/").get_data(as_text=True)) is listed, name
