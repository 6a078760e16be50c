"""Restoring access to an account takes two people when it would hand the account to one.

A new password link and a second-factor reset are each harmless alone on an account with an
authenticator: the link's holder still lacks the code, the reset leaves a password nobody else knows.
Together, from one administrator, they are the account: that admin sets the password, enrols their own
authenticator and signs in as a second admin (to approve their own role requests), an auditor or an
approver. So the second of the two, before the person has signed in again, must come from someone else.
Accounts in use (signed in to, or given a password by the operator, as these tests' people are) get their link
by mail (tests/api/test_password_link_delivery.py), so this module has a real SMTP server and gives them
addresses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api.conftest import assert_error, events
from tests.conftest import login
from tests.mail.smtpd import SmtpServer
from tests.security.helpers import post_form
from vault.models import PasswordLink, Role, User
from vault.services import accounts, totp


@pytest.fixture
def settings_overrides() -> Iterator[dict[str, Any]]:
    server = SmtpServer().start()
    yield {"smtp_url": server.url(timeout="5"), "mail_from": "vault@example.com",
           "base_url": "https://vault.example.com"}
    server.stop()


def _links(rt, name):
    with rt.db.session() as session:
        user = accounts.get_user(session, name)
        return session.scalar(select(func.count()).select_from(PasswordLink).where(PasswordLink.user_id == user.id))


def _enrolled(rt, name):
    with rt.db.session() as session:
        return totp.enrolled(session, accounts.get_user(session, name))


def test_one_admin_cannot_both_reset_the_second_factor_and_hand_out_a_password_link(app, api, rt, users):
    users.make("adm2", Role.ADMIN)
    users.make("adm3", Role.ADMIN)
    for name in ("adm2", "kim", "aud", "bea"):  # accounts in use (a password the operator chose) get links by mail
        with rt.db.session() as session:
            session.get(User, accounts.get_user(session, name).id).email = f"{name}@example.com"
    for name in ("adm2", "kim"):  # people who have signed in before: only acts since then count
        login(app.test_client(), name)
    # The goal: a role of power for an accomplice, which needs a second admin's approval.
    assert api.post("/api/v1/users/bob/roles", "adm", json={"role": "approver"}).status_code == 202
    # Reset first, then the link: the link is refused, audited, and nothing is made.
    assert api.post("/api/v1/users/adm2/second-factor/reset", "adm").status_code == 200
    assert_error(api.post("/api/v1/users/adm2/password-link", "adm"), 403, "separation_of_duties")
    assert _links(rt, "adm2") == 0
    assert [(e.actor_name, e.reason_code) for e in events(rt, "user:manage", "denied")] == [
        ("adm", "separation_of_duties")]
    # The same on the page.
    admin = app.test_client()
    login(admin, "adm")
    with rt.db.session() as session:
        adm2_id = accounts.get_user(session, "adm2").id
    refused = post_form(admin, f"/admin/users/{adm2_id}", f"/admin/users/{adm2_id}/password-link")
    assert refused.status_code == 403 and _links(rt, "adm2") == 0
    # The link first, then the reset: the reset is refused and the authenticator stays.
    assert api.post("/api/v1/users/aud/password-link", "adm").status_code == 200
    assert_error(api.post("/api/v1/users/aud/second-factor/reset", "adm"), 403, "separation_of_duties")
    assert _enrolled(rt, "aud")
    # A second administrator completes either (two people now stand behind it), as does the operator.
    assert api.post("/api/v1/users/adm2/password-link", "adm3").status_code == 200
    assert api.post("/api/v1/users/aud/second-factor/reset", "adm3").status_code == 200
    assert not _enrolled(rt, "aud")
    with rt.db.session() as session:
        accounts.reset_second_factor(rt, session, accounts.get_user(session, "ann"), None)
        accounts.create_password_link(rt, session, accounts.get_user(session, "ann"), actor=None)
        session.commit()
    # Once the person has signed in again, their account is theirs: earlier acts no longer count.
    assert api.post("/api/v1/users/kim/password-link", "adm").status_code == 200
    assert_error(api.post("/api/v1/users/kim/second-factor/reset", "adm"), 403, "separation_of_duties")
    login(app.test_client(), "kim")
    assert api.post("/api/v1/users/kim/second-factor/reset", "adm").status_code == 200
    # A link for an account without an authenticator, and a reset where nothing is left to remove, stay open.
    assert api.post("/api/v1/users/bea/password-link", "adm").status_code == 200
    assert api.post("/api/v1/users/bea/second-factor/reset", "adm").status_code == 200
    assert api.post("/api/v1/users/bea/password-link", "adm").status_code == 200
