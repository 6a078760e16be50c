"""The confidentiality agreement for accounts that only use the API: read it, accept it in one's own name,
then the token works; a version that changed in between is refused; nothing else opens before acceptance."""

from __future__ import annotations

import dataclasses
import json
import re

from sqlalchemy import select

from tests.api.conftest import assert_error, events
from vault.core.context import AccessContext
from vault.models import AgreementAcceptance, Role
from vault.services import accounts, agreement
from vault.web.auth import OPEN_BEFORE_AGREEMENT

AGREEMENT, ACCEPT = "/api/v1/agreement", "/api/v1/agreement/accept"


def _acceptances(rt, username: str) -> list[AgreementAcceptance]:
    with rt.db.session() as session:
        user = accounts.get_user(session, username)
        return list(session.scalars(select(AgreementAcceptance).where(AgreementAcceptance.user_id == user.id)
                                    .order_by(AgreementAcceptance.id)))


def test_a_fresh_accounts_token_reads_accepts_and_then_works(api, users, rt):
    users.make("sync", Role.BORROWER)
    token = users.token("sync")
    for method, path in (("GET", "/api/v1/me"), ("GET", "/api/v1/customers"), ("POST", "/api/v1/loans")):
        assert_error(api.call(method, path, token=token, json={}), 403, "agreement_required")
    refused = api.get("/api/v1/me", token=token).get_json()
    assert "/api/v1/agreement" in refused["error"]  # the refusal says where to go
    shown = api.get(AGREEMENT, token=token)
    assert shown.status_code == 200
    body = shown.get_json()
    assert body == {"version": "1", "language": "en", "text": agreement.text(rt.settings), "accepted": False,
                    "accepted_at": None}
    assert body["text"].startswith("# Confidentiality agreement")
    # In the caller's language when there is a translation, as the page shows it.
    russian = api.get(AGREEMENT, token=token, headers={"Accept-Language": "ru"}).get_json()
    assert russian["language"] == "ru" and russian["text"] == agreement.text(rt.settings, "ru") != body["text"]
    assert _acceptances(rt, "sync") == [] and events(rt, "agreement:accept") == []

    accepted = api.post(ACCEPT, token=token, json={"version": body["version"]},
                        headers={"User-Agent": "hr-sync/2.0"})
    assert accepted.status_code == 200, accepted.get_json()
    answer = accepted.get_json()
    assert answer["accepted"] is True and answer["accepted_at"] and answer["version"] == "1"
    # Recorded as the page records it: in the person's own name, with the time, address and browser.
    [row] = _acceptances(rt, "sync")
    assert (row.version, row.client_addr, row.user_agent) == ("1", "127.0.0.1", "hr-sync/2.0")
    [record] = events(rt, "agreement:accept")
    assert (record.actor_name, record.user_agent) == ("sync", "hr-sync/2.0")
    assert json.loads(record.detail) == {"version": "1", "acceptance_id": row.id}
    assert api.get("/api/v1/me", token=token).get_json()["username"] == "sync"
    assert api.get(AGREEMENT, token=token).get_json()["accepted"] is True
    # Accepting again changes nothing.
    assert api.post(ACCEPT, token=token, json={"version": "1"}).status_code == 200
    assert len(_acceptances(rt, "sync")) == 1 and len(events(rt, "agreement:accept")) == 1


def test_a_changed_version_and_bad_bodies_are_refused_and_record_nothing(api, users, rt):
    users.make("sync", Role.BORROWER)
    token = users.token("sync")
    shown = api.get(AGREEMENT, token=token).get_json()["version"]
    rt.settings = dataclasses.replace(rt.settings, agreement_version="2027-01")  # changed after it was read
    stale = assert_error(api.post(ACCEPT, token=token, json={"version": shown}), 409, "agreement_version_stale")
    assert "2027-01" in stale["error"]
    for body in ({}, {"version": ""}, {"version": 1}, {"version": None}, {"version": "x" * 65},
                 {"version": "2027-01", "also": True}, []):
        assert_error(api.post(ACCEPT, token=token, json=body), 422, "invalid_request")
    assert api.post(ACCEPT, token=token, data="{not json", content_type="application/json").status_code == 400
    assert _acceptances(rt, "sync") == [] and events(rt, "agreement:accept") == []
    assert_error(api.get("/api/v1/me", token=token), 403, "agreement_required")
    # A read-only token reads the agreement but does not accept it (accepting changes state).
    with rt.db.session() as session:
        reader = accounts.create_token(rt, session, accounts.get_user(session, "sync"), name="reader",
                                       scope="read", ctx=AccessContext.cli()).secret
    assert api.get(AGREEMENT, token=reader).get_json()["version"] == "2027-01"
    assert_error(api.post(ACCEPT, token=reader, json={"version": "2027-01"}), 403, "token_scope")
    assert _acceptances(rt, "sync") == []
    # Without a token nothing opens, exempt or not.
    assert_error(api.get(AGREEMENT), 401, "not_authenticated")
    assert_error(api.post(ACCEPT, json={"version": "2027-01"}), 401, "not_authenticated")
    # The version now shown is accepted.
    assert api.post(ACCEPT, token=token, json={"version": "2027-01"}).status_code == 200
    assert [row.version for row in _acceptances(rt, "sync")] == ["2027-01"]
    assert api.get("/api/v1/me", token=reader).status_code == 200


def _concrete(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)


def test_the_exemption_opens_those_two_routes_and_nothing_else(api, app, users):
    endpoints = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    assert {endpoints[name] for name in OPEN_BEFORE_AGREEMENT} == {"/api/v1/agreement", "/api/v1/agreement/accept"}
    users.make("sync", Role.BORROWER)
    token = users.token("sync")
    tried = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint in OPEN_BEFORE_AGREEMENT:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = api.call(method, _concrete(rule), token=token, json={}, check=False)
            assert (response.status_code, response.get_json()["code"]) == (403, "agreement_required"), (
                method, rule.rule)
            tried += 1
    assert tried > 50
