"""Views through the API: opening (quota, loan, place, download rules) and the single-use content URL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.api.conftest import PDF, assert_error, events
from tests.conftest import everyone_works
from vault.alerts.raising import Finding, raise_alert
from vault.models import Alert, AlertStatus, DocumentView, Role, Severity, utcnow
from vault.services import accounts

TRUSTED = {"REMOTE_ADDR": "10.1.2.3"}
OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def settings_overrides():
    # The content URL tests fetch the original bytes, which a grade may allow (stamped copies: tests/viewer).
    return {"trusted_places": "Head office=10.1.0.0/16",
            "policy": {"grades": {"1": {"download_original": True}, "2": {"download_original": True}}}}


@pytest.fixture
def customer_id(api):
    return api.customer()


def test_a_view_delivers_the_bytes_once_with_safe_headers(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=1, filename="Prices 2024.pdf")
    response = api.open_view(document_id, json={"download": True})
    assert response.status_code == 201
    opened = response.get_json()
    assert opened["remaining"] == 9  # grade 1: ten views
    assert opened["content_url"].startswith("http://localhost/api/v1/content/")
    content = api.get(opened["content_url"], "bob")
    assert content.status_code == 200
    assert content.get_data() == PDF
    assert content.headers["Content-Type"] == "application/pdf"
    assert content.headers["Content-Length"] == str(len(PDF))
    assert content.headers["Cache-Control"] == "no-store"
    assert content.headers["Content-Disposition"].startswith('attachment; filename="Prices 2024.pdf"')
    # A PDF is not sandboxed (Chromium's viewer would refuse to start) but may still run no page script.
    csp = content.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert [(e.actor_name, e.document_id) for e in events(rt, "document:download")] == [("bob", document_id)]
    assert len(events(rt, "content:delivered")) == 1
    # The same URL again: gone, and recorded as a refusal; nothing more is delivered.
    again = api.get(opened["content_url"], "bob")
    assert_error(again, 410, "content_url_used")
    assert [e.reason_code for e in events(rt, "content:open", "denied")] == ["content_url_used"]
    assert len(events(rt, "content:delivered")) == 1


def test_a_download_is_an_attachment(api, customer_id):
    document_id = api.upload(customer_id, grade=1)
    opened = api.open_view(document_id, json={"download": True}).get_json()
    content = api.get(opened["content_url"], "bob")
    assert content.headers["Content-Disposition"].startswith("attachment;")
    assert content.get_data() == PDF


def test_another_persons_content_url_is_404_and_stays_usable(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=1)
    url = api.open_view(document_id, json={"download": True}).get_json()["content_url"]
    assert_error(api.get(url, "bea"), 404, "not_found")
    assert_error(api.get(url), 401, "not_authenticated")
    assert_error(api.get(url + "x", "bob"), 404, "not_found")
    assert api.call("HEAD", url, "bob", check=False).status_code == 405
    assert api.get(url, "bob").get_data() == PDF
    # Both probes, another person's URL and an unknown one, are recorded the same way (the pages do too).
    assert [(e.actor_name, e.reason_code) for e in events(rt, "content:open", "denied")] == [
        ("bea", "not_found"), ("bob", "not_found")]


def test_grade_2_needs_an_active_loan(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=2)
    assert_error(api.open_view(document_id), 403, "no_active_loan")
    loan_id = api.loan(document_id)
    assert_error(api.open_view(document_id), 403, "no_active_loan")  # requested is not approved
    api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={})
    assert api.open_view(document_id).status_code == 201
    # Another borrower's loan is no loan of yours.
    assert_error(api.open_view(document_id, "bea"), 403, "no_active_loan")
    assert [e.reason_code for e in events(rt, "document:view", "denied")] == [
        "no_active_loan", "no_active_loan", "no_active_loan"]


def test_quota_exhausted(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=2)
    api.approved_loan(document_id)
    remaining = [api.open_view(document_id).get_json()["remaining"] for _ in range(3)]
    assert remaining == [2, 1, 0]
    body = assert_error(api.open_view(document_id), 403, "quota_exhausted")
    assert "3 views" in body["error"]
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == 0
    assert len(events(rt, "document:view")) == 3
    assert [e.reason_code for e in events(rt, "document:view", "denied")] == ["quota_exhausted"]


def test_grade_3_opens_only_from_a_trusted_place_and_never_downloads(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=3)
    loan_id = api.approved_loan(document_id)
    api.post(f"/api/v1/loans/{loan_id}/release", "kim")
    assert_error(api.open_view(document_id, environ_base=OUTSIDE), 403, "place_not_trusted")
    assert_error(api.open_view(document_id, environ_base=TRUSTED, json={"download": True}), 403,
                 "download_not_allowed")
    response = api.open_view(document_id, environ_base=TRUSTED)
    assert response.status_code == 201
    opened = events(rt, "document:view")
    assert [(e.named_place, e.client_addr, e.declared_place) for e in opened] == [("Head office", "10.1.2.3", "Office")]
    denied = [(e.action, e.reason_code, e.client_addr, e.declared_place)
              for e in events(rt, "document:view", "denied") + events(rt, "document:download", "denied")]
    assert sorted(denied) == [
        ("document:download", "download_not_allowed", "10.1.2.3", "Office"),
        ("document:view", "place_not_trusted", "203.0.113.9", "Office")]
    # No unit was spent by the refusals.
    assert response.get_json()["remaining"] == 2


def test_a_loan_revoked_after_opening_stops_the_delivery(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=2)
    loan_id = api.approved_loan(document_id)
    url = api.open_view(document_id, json={"download": True}).get_json()["content_url"]
    api.post(f"/api/v1/loans/{loan_id}/revoke", "ann", json={"reason": "The customer relationship ended"})
    assert_error(api.get(url, "bob"), 410, "content_url_used")  # the revocation gave the unit back, URL dead
    assert events(rt, "content:delivered") == []


def test_a_compiler_reads_their_own_file_only_through_a_loan_others_approve(api, users, rt, customer_id):
    users.make("cora", Role.COMPILER, Role.BORROWER, Role.APPROVER)
    everyone_works(rt, customer_id)
    document_id = api.upload(customer_id, grade=1, user="cora")
    assert_error(api.open_view(document_id, "cora"), 403, "no_active_loan")
    loan_id = api.loan(document_id, "cora")
    assert_error(api.post(f"/api/v1/loans/{loan_id}/approve", "cora", json={}), 403, "separation_of_duties")
    api.post(f"/api/v1/loans/{loan_id}/approve", "ann", json={})
    assert api.open_view(document_id, "cora").status_code == 201


def test_view_input_errors(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=1)
    body = assert_error(api.post(f"/api/v1/documents/{document_id}/views", "bob", json={"download": "yes"}),
                        422, "invalid_request")
    assert body["fields"] == {"reason": "is required", "place": "is required", "download": "must be true or false"}
    assert_error(api.open_view(document_id, json={"reason": "short"}), 403, "reason_too_short")
    assert_error(api.open_view(99999), 404, "not_found")
    assert_error(api.open_view(document_id, "carl"), 403, "not_permitted")
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == 10
    assert api.get(f"/api/v1/documents/{document_id}", "carl").get_json()["remaining_views"] is None
    assert events(rt, "document:view") == []


@pytest.mark.parametrize(("slips", "code"), [
    ({"reason": "short", "download": True}, "download_not_allowed"),
    ({"reason": "?!.......,,"}, "reason_not_meaningful"),
    ({"place": "  ", "download": True}, "download_not_allowed"),
    ({"reason": "", "place": ""}, "reason_too_short"),
    ({"place": ""}, "place_required"),
])
def test_an_opening_with_several_slips_answers_the_first_code(api, rt, customer_id, slips, code):
    """The input rules the page lists all at once answer a program with one code, the first in the order
    they always had (download, reason, place); one refusal record, nothing spent."""
    document_id = api.upload(customer_id, grade=3)
    loan_id = api.approved_loan(document_id)
    api.post(f"/api/v1/loans/{loan_id}/release", "kim")
    assert_error(api.open_view(document_id, environ_base=TRUSTED, json=slips), 403, code)
    # A refusal of where the person is still comes before any slip, as it did.
    assert_error(api.open_view(document_id, environ_base=OUTSIDE, json=slips), 403, "place_not_trusted")
    denied = events(rt, "document:view", "denied") + events(rt, "document:download", "denied")
    assert sorted(e.reason_code for e in denied) == sorted([code, "place_not_trusted"])
    assert events(rt, "document:view") == []
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == 3


def test_an_expired_content_url_is_gone_and_gives_the_view_back(api, rt, customer_id):
    document_id = api.upload(customer_id, grade=1)
    opened = api.open_view(document_id, json={"download": True}).get_json()
    assert opened["remaining"] == 9
    # The URL lives at most a minute; move its expiry into the past rather than wait for it.
    with rt.db.session() as session:
        session.execute(update(DocumentView).where(DocumentView.id == opened["view_id"])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_error(api.get(opened["content_url"], "bob"), 410, "content_url_expired")
    assert api.get(f"/api/v1/documents/{document_id}", "bob").get_json()["remaining_views"] == 10
    assert [e.reason_code for e in events(rt, "content:open", "denied")] == ["content_url_expired"]
    assert events(rt, "content:delivered") == []


def test_grade_3_content_is_delivered_only_to_a_trusted_place(api, rt, customer_id):
    """Finding 3: opening from the office, then fetching the bytes from outside, is refused and refunded."""
    document_id = api.upload(customer_id, grade=3)
    loan_id = api.approved_loan(document_id)
    api.post(f"/api/v1/loans/{loan_id}/release", "kim")
    opened = api.open_view(document_id, environ_base=TRUSTED)
    assert opened.status_code == 201
    # Grade 3 is read in the viewer: its page images are the bytes that leave, each checked for the place.
    page = opened.get_json()["page_url"].replace("{n}", "1")
    assert_error(api.get(page, "bob", environ_base=OUTSIDE), 403, "place_not_trusted")
    assert [e.reason_code for e in events(rt, "view:page", "denied")] == ["place_not_trusted"]
    assert api.get(page, "bob", environ_base=TRUSTED).status_code == 200


def test_a_suspension_stops_the_pages_of_a_view_already_open(api, rt, customer_id):
    """The window of a view opened before the suspension does not outlast it: a suspension of the person's
    customer records, or of all content by a high alert, refuses the next page at once."""
    document_id = api.upload(customer_id, grade=1)
    page = api.open_view(document_id).get_json()["page_url"].replace("{n}", "1")
    assert api.get(page, "bob").status_code == 200
    with rt.db.session() as session:
        accounts.get_user(session, "bob").customers_suspended_at = utcnow()
    assert_error(api.get(page, "bob"), 403, "access_suspended")
    with rt.db.session() as session:
        bob = accounts.get_user(session, "bob")
        bob.customers_suspended_at = None
        alert = raise_alert(rt, session, bob, Finding("bulk_pull", Severity.HIGH, "2026-01-01T10", "40 views",
                                                      {"access_suspended": True}))
    assert_error(api.get(page, "bob"), 403, "access_suspended")
    with rt.db.session() as session:
        session.get(Alert, alert).status = AlertStatus.RESOLVED
    assert api.get(page, "bob").status_code == 200
    assert [e.reason_code for e in events(rt, "view:page", "denied")] == ["access_suspended"] * 2
