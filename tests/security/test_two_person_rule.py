"""Power needs two people: duty roles (and any role of a person on notice) are requested by one admin and
given only when a second approves; first passwords are set by their owner through a one-time link."""

from __future__ import annotations

import re
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select, update

from tests.conftest import PASSWORD, csrf_from, login
from tests.security.helpers import events, location, post_form
from vault.core.context import AccessContext
from vault.models import PasswordLink, Role, RoleRequest, utcnow
from vault.services import accounts, departures

_LINK = re.compile(r'<code class="password-link">[^<]*?(/password/set/[A-Za-z0-9_-]+)</code>')
NEW_PASSWORD = "a passphrase of my own choosing"


def _roles(rt, name):
    with rt.db.session() as session:
        return {str(role) for role in accounts.get_user(session, name).role_set}


def _id(rt, name):
    with rt.db.session() as session:
        return accounts.get_user(session, name).id


def _create(client, username, *roles):
    # The admin also types a password, as the form once asked: it is ignored, the owner sets their own.
    return post_form(client, "/admin/users", username=username, display_name=username.title(), roles=list(roles),
                     password=PASSWORD)


def _pending(rt, name):
    with rt.db.session() as session:
        user = accounts.get_user(session, name)
        return [(r.id, r.role) for r in session.scalars(select(RoleRequest).where(
            RoleRequest.user_id == user.id, RoleRequest.status == "pending").order_by(RoleRequest.id))]


def test_one_admin_alone_cannot_build_accounts_that_read_a_grade_3_file(app, users, rt):
    """Finding 7 replayed: one admin creates a borrower, an approver and a custodian. None has a role at
    once: all three are requests (the creator holds each account's first link, so even a borrower's role
    waits), and the admin cannot approve their own."""
    users.make("adm", Role.ADMIN)
    admin = app.test_client()
    login(admin, "adm")
    created = _create(admin, "mallory", "borrower")
    assert created.status_code == 302
    assert _roles(rt, "mallory") == set()
    assert [role for _id_, role in _pending(rt, "mallory")] == ["borrower"]
    assert _create(admin, "mal2", "approver").status_code == 302
    assert _roles(rt, "mal2") == set()  # the first grant of power stops here
    assert [role for _id_, role in _pending(rt, "mal2")] == ["approver"]
    assert _create(admin, "mal3", "custodian").status_code == 302
    assert _roles(rt, "mal3") == set()
    # The admin who asked cannot approve their own requests.
    request_id = _pending(rt, "mal2")[0][0]
    refused = post_form(admin, f"/admin/users/{_id(rt, 'mal2')}", f"/admin/role-requests/{request_id}/approve")
    assert refused.status_code == 403
    assert _roles(rt, "mal2") == set()
    assert [e.reason_code for e in events(rt, "role:approve", "denied")] == ["separation_of_duties"]
    # Nor does the admin know any of their passwords: the accounts have none they could have chosen.
    with rt.db.session() as session:
        for name in ("mallory", "mal2", "mal3"):
            user = accounts.get_user(session, name)
            assert not rt.passwords.verify(user.password_hash, PASSWORD)


def test_a_second_admin_approves_and_only_then_the_role_is_given(app, users, rt):
    users.make("adm", Role.ADMIN)
    users.make("adm2", Role.ADMIN)
    users.make("val", Role.BORROWER)
    first, second = app.test_client(), app.test_client()
    login(first, "adm")
    login(second, "adm2")
    asked = post_form(first, f"/admin/users/{_id(rt, 'val')}", f"/admin/users/{_id(rt, 'val')}/roles/add",
                      role="approver")
    assert location(asked) == f"/admin/users/{_id(rt, 'val')}"
    assert _roles(rt, "val") == {"borrower"}
    page = second.get(f"/admin/users/{_id(rt, 'val')}").get_data(as_text=True)
    assert "Waiting for a second person" in page and "approver" in page
    request_id = _pending(rt, "val")[0][0]
    approved = post_form(second, f"/admin/users/{_id(rt, 'val')}", f"/admin/role-requests/{request_id}/approve")
    assert approved.status_code == 302
    assert _roles(rt, "val") == {"borrower", "approver"}
    assert [(e.actor_name, e.detail) for e in events(rt, "role:request")] == [
        ("adm", f'{{"request_id":{request_id},"role":"approver"}}')]
    assert [e.actor_name for e in events(rt, "role:approve")] == ["adm2"]
    assert [e.actor_name for e in events(rt, "role:assign")][-1] == "adm2"
    # A refused request gives nothing.
    post_form(first, f"/admin/users/{_id(rt, 'val')}", f"/admin/users/{_id(rt, 'val')}/roles/add", role="custodian")
    request_id = _pending(rt, "val")[0][0]
    post_form(second, f"/admin/users/{_id(rt, 'val')}", f"/admin/role-requests/{request_id}/refuse")
    assert _roles(rt, "val") == {"borrower", "approver"}
    assert [e.actor_name for e in events(rt, "role:refuse")] == ["adm2"]


def test_the_auditor_role_is_approved_by_an_auditor(app, users, rt):
    users.make("adm", Role.ADMIN)
    users.make("adm2", Role.ADMIN)
    users.make("aud", Role.AUDITOR)
    users.make("newaud")
    admin, admin2, auditor = app.test_client(), app.test_client(), app.test_client()
    login(admin, "adm")
    login(admin2, "adm2")
    login(auditor, "aud")
    post_form(admin, f"/admin/users/{_id(rt, 'newaud')}", f"/admin/users/{_id(rt, 'newaud')}/roles/add",
              role="auditor")
    request_id = _pending(rt, "newaud")[0][0]
    assert post_form(admin2, "/admin/users", f"/admin/role-requests/{request_id}/approve").status_code == 403
    assert _roles(rt, "newaud") == set()
    page = auditor.get("/admin/role-requests")
    assert page.status_code == 200 and "newaud" in page.get_data(as_text=True)
    assert post_form(auditor, "/admin/role-requests", f"/admin/role-requests/{request_id}/approve").status_code == 302
    assert _roles(rt, "newaud") == {"auditor"}


def test_any_role_for_a_person_on_notice_needs_a_second_admin(app, users, rt):
    users.make("adm", Role.ADMIN)
    users.make("sam", Role.BORROWER)
    with rt.db.session() as session:
        departures.start_departure(rt, session, None, accounts.get_user(session, "sam"),
                                   last_day=utcnow().date() + timedelta(days=20), successor=None,
                                   ctx=AccessContext.cli())
    admin = app.test_client()
    login(admin, "adm")
    post_form(admin, "/admin/users", f"/admin/users/{_id(rt, 'sam')}/roles/add", role="compiler")
    assert _roles(rt, "sam") == {"borrower"}
    assert [role for _id_, role in _pending(rt, "sam")] == ["compiler"]


def test_the_first_password_is_set_by_its_owner_through_a_one_time_link(app, users, rt):
    users.make("adm", Role.ADMIN)
    admin = app.test_client()
    login(admin, "adm")
    users.make("adm2", Role.ADMIN)
    created = _create(admin, "newbie", "borrower")
    users.approve_roles("newbie", by="adm2")
    page = admin.get(location(created)).get_data(as_text=True)
    link = _LINK.search(page)
    assert link, page[:3000]
    # Shown once: the next visit to the page does not show it again.
    assert not _LINK.search(admin.get(location(created)).get_data(as_text=True))
    person = app.test_client()
    form = person.get(link.group(1))
    assert form.status_code == 200
    token = csrf_from(form.get_data(as_text=True))
    weak = person.post(link.group(1), data={"csrf_token": token, "new": "password123", "confirm": "password123"})
    assert weak.status_code == 200
    done = person.post(link.group(1), data={"csrf_token": token, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert location(done) == "/login"
    login(app.test_client(), "newbie", NEW_PASSWORD)
    # Single use: the link is dead now.
    assert person.get(link.group(1)).status_code == 404
    assert [e.actor_name for e in events(rt, "account:password_set")] == ["newbie"]
    assert [e.actor_name for e in events(rt, "account:password_link")] == ["adm"]


def test_an_expired_link_sets_nothing(app, users, rt):
    users.make("adm", Role.ADMIN)
    admin = app.test_client()
    login(admin, "adm")
    link = _LINK.search(admin.get(location(_create(admin, "late", "borrower"))).get_data(as_text=True)).group(1)
    with rt.db.session() as session:
        session.execute(update(PasswordLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert app.test_client().get(link).status_code == 404


def test_a_single_admin_installation_grants_on_the_server_by_operator_name(app, users, rt, monkeypatch):
    """The command line is trusted (whoever runs it holds the server) and records the operator's name."""
    from vault.cli import cli
    users.make("val", Role.BORROWER)
    monkeypatch.setattr("vault.cli.users.open_runtime", lambda: rt)
    result = CliRunner().invoke(cli, ["--operator", "Olga", "user", "role", "val", "--add", "approver"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _roles(rt, "val") == {"borrower", "approver"}
    assert [e.actor_name for e in events(rt, "role:assign")][-1] == "cli:Olga"
