"""The confidentiality agreement: asked before anything else, again when its version changes, kept with
the time and place of acceptance; the API refuses tokens of people who have not accepted it."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.security.helpers import events, location, password_step
from vault.models import AgreementAcceptance, Role

AGREEMENT = "/agreement"


@pytest.fixture
def settings_overrides():
    return {"trusted_places": "Head office=127.0.0.0/8"}


def test_every_page_leads_to_the_agreement_until_it_is_accepted(client, users, rt):
    users.make("bob", Role.BORROWER)
    assert location(password_step(client, "bob")) == "/"
    for path in ["/", "/account", "/admin/users", "/customers/", "/login/code", "/account/second-factor"]:
        response = client.get(path)
        assert (response.status_code, location(response)) == (302, AGREEMENT), path
    # Forms elsewhere are not carried out either.
    token = csrf_from(client.get(AGREEMENT).get_data(as_text=True))
    response = client.post("/account/logout-everywhere", data={"csrf_token": token})
    assert location(response) == AGREEMENT
    assert events(rt, "auth:logout_everywhere") == []
    # Signing out stays possible.
    assert location(client.post("/logout", data={"csrf_token": token})) == "/login"


def test_acceptance_needs_the_box_ticked_and_is_recorded_with_its_place(client, users, rt):
    users.make("bob", Role.BORROWER)
    client.environ_base["HTTP_USER_AGENT"] = "TestBrowser/1.0"
    password_step(client, "bob")
    page = client.get(AGREEMENT)
    assert "Confidentiality agreement" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    unticked = client.post(AGREEMENT, data={"csrf_token": token})
    assert unticked.status_code == 200
    assert location(client.get("/")) == AGREEMENT
    with rt.db.session() as session:
        assert list(session.scalars(select(AgreementAcceptance))) == []

    accepted = client.post(AGREEMENT, data={"csrf_token": token, "accept": "y"})
    assert location(accepted) == "/"
    assert client.get("/").status_code == 200
    with rt.db.session() as session:
        rows = list(session.scalars(select(AgreementAcceptance)))
    assert len(rows) == 1
    row = rows[0]
    assert (row.version, row.client_addr, row.named_place, row.user_agent) == (
        "1", "127.0.0.1", "Head office", "TestBrowser/1.0")
    assert row.accepted_at is not None
    audited = events(rt, "agreement:accept")
    assert [(e.actor_name, e.named_place, e.outcome) for e in audited] == [("bob", "Head office", "allowed")]
    assert '"version":"1"' in audited[0].detail
    # The page can be read again later, and says it is accepted.
    assert "You have accepted this version." in client.get(AGREEMENT).get_data(as_text=True)


def test_a_new_version_is_asked_again_even_in_a_running_session(client, users, rt):
    users.make("bob", Role.BORROWER)
    login(client, "bob")
    assert client.get("/").status_code == 200
    rt.settings = dataclasses.replace(rt.settings, agreement_version="2025-02")
    assert location(client.get("/")) == AGREEMENT
    token = csrf_from(client.get(AGREEMENT).get_data(as_text=True))
    client.post(AGREEMENT, data={"csrf_token": token, "accept": "y"})
    assert client.get("/").status_code == 200
    with rt.db.session() as session:
        versions = sorted(session.scalars(select(AgreementAcceptance.version)))
    assert versions == ["1", "2025-02"]
    # Signing in again later does not ask again for a version already accepted.
    other = client.application.test_client()
    password_step(other, "bob")
    assert other.get("/").status_code == 200


def test_the_agreement_text_comes_from_the_configured_file_and_is_escaped(client, users, rt, tmp_path):
    text = tmp_path / "agreement.md"
    text.write_text("# Our rules\n\nKeep <script>alert(1)</script> secrets.\n\n- one\n- two\n", encoding="utf-8")
    rt.settings = dataclasses.replace(rt.settings, agreement_path=text)
    users.make("bob", Role.BORROWER)
    password_step(client, "bob")
    page = client.get(AGREEMENT).get_data(as_text=True)
    assert "<h1>Our rules</h1>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "<li>one</li><li>two</li>" in page


def test_api_tokens_need_the_agreement_too(client, users, rt):
    users.make("bob", Role.BORROWER)
    secret = users.token("bob")
    refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "agreement_required"
    denied = events(rt, "account:self", "denied")
    assert [(e.actor_name, e.reason_code) for e in denied] == [("bob", "agreement_required")]
    login(client, "bob")  # accepting through the pages...
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200  # ...opens it


def test_the_page_records_only_the_version_it_showed(client, users, rt):
    """The API refuses to accept a version other than the one the caller was shown; the page accepted
    whatever version was current when the form came back, so a text changed while the page was open was
    recorded as accepted by someone who never saw it."""
    import re

    users.make("bob", Role.BORROWER)
    password_step(client, "bob")
    page = client.get(AGREEMENT).get_data(as_text=True)
    token = csrf_from(page)
    [shown] = re.findall(r'<input[^>]*name="version"[^>]*value="([^"]*)"', page)
    assert shown == "1"
    rt.settings = dataclasses.replace(rt.settings, agreement_version="2027-01")  # changed while it was open
    stale = client.post(AGREEMENT, data={"csrf_token": token, "accept": "y", "version": shown})
    assert stale.status_code == 409
    assert "2027-01" in stale.get_data(as_text=True)  # the page now shows the current text to accept
    with rt.db.session() as session:
        assert list(session.scalars(select(AgreementAcceptance))) == []
    assert events(rt, "agreement:accept") == []
    assert location(client.get("/")) == AGREEMENT
    page = client.get(AGREEMENT).get_data(as_text=True)
    assert re.findall(r'<input[^>]*name="version"[^>]*value="([^"]*)"', page) == ["2027-01"]
    accepted = client.post(AGREEMENT, data={"csrf_token": csrf_from(page), "accept": "y", "version": "2027-01"})
    assert location(accepted) == "/"
    with rt.db.session() as session:
        assert list(session.scalars(select(AgreementAcceptance.version))) == ["2027-01"]
