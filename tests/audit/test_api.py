"""The audit routes of the JSON API: auditor tokens only, streamed export with filters, verification."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select

from tests.audit.conftest import CTX, append, attack, drop_append_only
from tests.conftest import login
from vault.core.context import AccessContext
from vault.models import AuditEvent, Role
from vault.services import accounts, agreement


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_token(rt, users, username: str) -> str:
    """A token of `username`, who has accepted the confidentiality agreement (the API's condition)."""
    with rt.db.session() as session:
        agreement.accept(rt, session, accounts.get_user(session, username), AccessContext.cli())
    return users.token(username)


def test_export_as_json_lines_with_filters(rt, client, users):
    users.make("audrey", Role.AUDITOR)
    token = api_token(rt, users, "audrey")
    append(rt, 3, action="loan:request")
    with rt.db.session() as session:
        rt.audit.record(session, action="auth:login", actor=None, actor_name="zed", ctx=CTX, outcome="denied",
                        reason_code="bad_credentials")
    response = client.get("/api/v1/audit", query_string={"actor": "zed", "since": "2000-01-01"},
                          headers=bearer(token))
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [(r["actor_name"], r["action"], r["reason_code"]) for r in rows] == [
        ("zed", "auth:login", "bad_credentials")]
    assert rows[0]["prev_mac"] and rows[0]["mac"]
    manifest = client.get(response.headers["X-Vault-Export-Manifest"], headers=bearer(token))
    assert manifest.status_code == 200
    assert manifest.get_json()["rows"] == 1 and manifest.get_json()["filters"]["actor"] == "zed"
    loans = client.get("/api/v1/audit", query_string={"action": "loan:request", "format": "csv"},
                       headers=bearer(token))
    table = list(csv.DictReader(io.StringIO(loans.get_data(as_text=True))))
    assert [row["action"] for row in table] == ["loan:request"] * 3
    with rt.db.session() as session:
        exports = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "audit:export")))
    assert [(e.actor_name, json.loads(e.detail)["destination"]) for e in exports] == [
        ("audrey", "download"), ("audrey", "download")]


def test_bad_parameters_are_json_errors(rt, client, users):
    users.make("audrey", Role.AUDITOR)
    token = api_token(rt, users, "audrey")
    for query, field in (({"since": "soon"}, "since"), ({"format": "xml"}, "format"), ({"limit": "5"}, "limit"),
                         ({"outcome": "maybe"}, "outcome"), ({"actor": "x" * 201}, "actor")):
        response = client.get("/api/v1/audit", query_string=query, headers=bearer(token))
        assert response.status_code == 422, query
        body = response.get_json()
        assert body["code"] == "invalid_request" and body["error"] and field in body["fields"]
    response = client.get("/api/v1/audit/verify", query_string={"from": "zero"}, headers=bearer(token))
    assert response.status_code == 422 and "from" in response.get_json()["fields"]
    missing = client.get("/api/v1/audit/exports/424242/manifest", headers=bearer(token))
    assert missing.status_code == 404 and missing.get_json()["code"] == "not_found"


def test_verify(rt, client, users):
    users.make("audrey", Role.AUDITOR)
    token = api_token(rt, users, "audrey")
    append(rt, 12)
    body = client.get("/api/v1/audit/verify", headers=bearer(token)).get_json()
    assert body["ok"] is True and body["first_bad_seq"] is None and body["checkpoints"] == 1
    drop_append_only(rt)
    attack(rt, "DELETE FROM audit_events WHERE seq = 9")
    body = client.get("/api/v1/audit/verify", headers=bearer(token)).get_json()
    assert (body["ok"], body["first_bad_seq"], body["kind"]) == (False, 9, "deleted")
    with rt.db.session() as session:
        results = [json.loads(e.detail)["result"] for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "audit:verify").order_by(AuditEvent.seq))]
    assert results == ["intact", "damaged"]


def test_only_auditor_tokens(rt, app, client, users):
    users.make("root", Role.ADMIN)
    users.make("bea", Role.BORROWER)
    users.make("audrey", Role.AUDITOR)
    for name in ("root", "bea"):
        token = api_token(rt, users, name)
        for path in ("/api/v1/audit", "/api/v1/audit/verify", "/api/v1/audit/exports/1/manifest"):
            response = client.get(path, headers=bearer(token))
            assert response.status_code == 403, (name, path)
            assert response.get_json()["code"] == "not_permitted"
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit", headers=bearer("vt_not-a-token")).status_code == 401
    browser = app.test_client()
    login(browser, "audrey")
    assert browser.get("/api/v1/audit").status_code == 401  # cookies are ignored by the API
    with rt.db.session() as session:
        exports = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "audit:export")))
    # Refusals are recorded under the refused action; no export was allowed.
    assert sorted((e.actor_name, e.outcome) for e in exports) == [("bea", "denied")] * 2 + [("root", "denied")] * 2
