"""The auditor's desk in the browser: who may read, filters, keyset pages, timelines, charts, the verify
button and downloads."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from tests.audit.conftest import CTX, append, attack, drop_append_only
from tests.conftest import login
from vault.models import AuditEvent, AuditHead, Role


@pytest.fixture
def auditor(client, users):
    users.make("audrey", Role.AUDITOR)
    return login(client, "audrey")


def _events(rt, action):
    with rt.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def _seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<td class="num">(\d+)</td>', html)]


def _views(rt, who: str, count: int, **targets):
    for _ in range(count):
        with rt.db.session() as session:
            rt.audit.record(session, action="document:view", actor=None, actor_name=who, ctx=CTX, **targets)


def test_only_auditors_read_the_log(rt, app, users):
    users.make("root", Role.ADMIN)
    users.make("bea", Role.BORROWER)
    for name in ("root", "bea"):
        client = app.test_client()
        login(client, name)
        assert "Audit log" not in client.get("/").get_data(as_text=True)
        for path in ("/audit/", "/audit/trail/user/1", "/audit/exports/1/manifest"):
            assert client.get(path).status_code == 403, (name, path)
    refusals = [e for e in _events(rt, "audit:read") if e.outcome == "denied"]
    assert [(e.actor_name, e.reason_code) for e in refusals] == [("root", "not_permitted")] * 2 + [
        ("bea", "not_permitted")] * 2


def test_the_desk_lists_events_newest_first(rt, client, auditor):
    append(rt, 3, customer_id=41, document_id=42)
    page = client.get("/audit/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Audit log" in html
    seqs = _seqs(html)
    assert seqs == sorted(seqs, reverse=True) and {1, 2, 3} <= set(seqs)
    assert 'href="/audit/trail/document/42"' in html and 'href="/audit/trail/customer/41"' in html
    assert "Head office" in html and "req-12345678" in html


def test_filters(rt, client, auditor, users):
    bob = users.make("bob", Role.BORROWER)
    with rt.db.session() as session:
        base = session.get(AuditHead, 1).seq  # the records made by creating the accounts come first
    append(rt, 2, action="loan:request", customer_id=7)
    append(rt, 2, action="loan:approve", document_id=8)
    with rt.db.session() as session:
        rt.audit.record(session, action="document:view", actor=None, actor_name="bob", ctx=CTX,
                        subject_user_id=bob.id, outcome="denied", reason_code="quota_exhausted")

    def shown(**args):
        response = client.get("/audit/", query_string=args)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return sorted(_seqs(response.get_data(as_text=True)))

    assert shown(action="loan:request") == [base + 1, base + 2]
    assert shown(action="loan:*") == [base + 1, base + 2, base + 3, base + 4]
    assert shown(customer="7") == [base + 1, base + 2]
    assert shown(document="8") == [base + 3, base + 4]
    assert shown(outcome="denied") == [base + 5]
    assert base + 5 in shown(user="bob") and base + 5 in shown(user=str(bob.id))
    assert shown(place="Head office", action="loan:approve") == [base + 3, base + 4]
    assert shown(since="2000-01-01", until="2000-12-31") == []
    assert len(shown(since="2000-01-01")) >= base + 5
    bad = client.get("/audit/", query_string={"since": "last tuesday"})
    assert bad.status_code == 400 and "is not a date" in bad.get_data(as_text=True)
    unknown = client.get("/audit/", query_string={"user": "nobody"})
    assert unknown.status_code == 400 and "there is no user" in unknown.get_data(as_text=True)


def test_keyset_pages(rt, client, auditor):
    append(rt, 120, action="key:rewrap")
    newest = max(e.seq for e in _events(rt, "key:rewrap"))
    html = client.get("/audit/", query_string={"action": "key:rewrap"}).get_data(as_text=True)
    assert _seqs(html) == list(range(newest, newest - 50, -1))
    older = re.search(r'href="([^"]*before=\d+[^"]*)">Older', html).group(1).replace("&amp;", "&")
    html2 = client.get(older).get_data(as_text=True)
    assert _seqs(html2) == list(range(newest - 50, newest - 100, -1))
    newer = re.search(r'href="([^"]*after=\d+[^"]*)">Newer', html2).group(1).replace("&amp;", "&")
    assert _seqs(client.get(newer).get_data(as_text=True)) == _seqs(html)
    older = re.search(r'href="([^"]*before=\d+[^"]*)">Older', html2).group(1).replace("&amp;", "&")
    html3 = client.get(older).get_data(as_text=True)
    assert _seqs(html3) == list(range(newest - 100, newest - 120, -1))
    assert ">Older<" not in html3


def test_timelines_and_charts_without_scripts_or_inline_styles(rt, client, auditor):
    _views(rt, "alice", 3, customer_id=5, document_id=50)
    _views(rt, "bruno", 1, customer_id=5, document_id=51)
    _views(rt, "carla", 2, customer_id=6, document_id=60)
    response = client.get("/audit/trail/customer/5")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Timeline of customer #5" in html
    assert "<svg" in html and 'class="bar"' in html
    assert "<title>alice: 3</title>" in html and "<title>bruno: 1</title>" in html
    assert "carla" not in html
    # Scripts only from files (the CSP allows no other): the one a page loads names its source.
    assert "style=" not in html and not re.search(r"<script(?![^>]*\ssrc=)", html) and "<style" not in html
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert client.get("/audit/trail/document/60").status_code == 200
    assert client.get("/audit/trail/planet/1").status_code == 404


def test_the_verify_button(rt, client, auditor):
    append(rt, 12)
    assert client.post("/audit/verify").status_code == 400  # no CSRF token
    html = client.post("/audit/verify", data={"csrf_token": auditor}).get_data(as_text=True)
    assert "Intact:" in html
    drop_append_only(rt)
    attack(rt, "UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 7")
    html = client.post("/audit/verify", data={"csrf_token": auditor}).get_data(as_text=True)
    assert "DAMAGED: first bad sequence number 7 — modified." in html
    records = _events(rt, "audit:verify")
    assert [(e.actor_name, json.loads(e.detail)["result"]) for e in records] == [
        ("audrey", "intact"), ("audrey", "damaged")]


def test_download_honours_the_filters_and_keeps_a_manifest(rt, client, auditor):
    append(rt, 4, action="loan:request")
    append(rt, 3, action="auth:logout")
    response = client.post("/audit/export", data={"csrf_token": auditor, "format": "jsonl", "action": "loan:*"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert {row["action"] for row in rows} == {"loan:request"} and len(rows) == 4
    manifest_url = response.headers["X-Vault-Export-Manifest"]
    manifest = client.get(manifest_url).get_json(force=True)
    assert manifest["rows"] == 4 and manifest["filters"] == {"action": "loan:*"}
    exports = _events(rt, "audit:export")
    assert len(exports) == 1 and exports[0].actor_name == "audrey"
    assert json.loads(exports[0].detail) == {"destination": "download", "filters": {"action": "loan:*"},
                                             "format": "jsonl"}
    assert f"/audit/exports/{exports[0].seq}/manifest" in client.get("/audit/").get_data(as_text=True)
    csv_response = client.post("/audit/export", data={"csrf_token": auditor, "format": "csv"})
    assert csv_response.get_data(as_text=True).startswith("seq,ts,actor_id,actor_name,action")
    assert client.post("/audit/export", data={"format": "csv"}).status_code == 400  # CSRF
    assert client.get("/audit/exports/999999/manifest").status_code == 404


def test_trail_pages_keep_the_subject(rt, client, auditor):
    append(rt, 60, action="key:rewrap", loan_id=9)
    append(rt, 5, action="key:rewrap", loan_id=10)
    html = client.get("/audit/trail/loan/9").get_data(as_text=True)
    assert "Trail of loan #9" in html
    first = _seqs(html)
    assert len(first) == 50
    older = re.search(r'href="([^"]*before=\d+[^"]*)">Older', html).group(1).replace("&amp;", "&")
    assert older.startswith("/audit/trail/loan/9?")
    rest = _seqs(client.get(older).get_data(as_text=True))
    assert len(rest) == 10 and max(rest) < min(first)
