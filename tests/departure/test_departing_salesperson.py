"""The story the product exists for: a salesperson gives notice and, one evening, from home, tries to
open forty customers' files.

The early warning fires (each rule once), loans of important files need a second approver, nothing
beyond the quota is read, the departure report lists every customer the audit log says they touched,
and once the last day has passed nothing at all is readable: not through the pages, not through the
API, not with an old token or an old content link.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import replace
from typing import Any

import pypdf
import pytest
from sqlalchemy import select

from tests.conftest import csrf_from, login
from tests.departure.conftest import (
    HOME,
    OFFICE,
    TRUSTED,
    ApiCaller,
    days_from_today,
    evening_policy,
    run_cli,
)
from vault.config.settings import DEFAULT_GRADES
from vault.core.context import operator_name
from vault.models import ApiToken, Document, Loan, QuotaUsage
from vault.services import accounts, departures
from vault.web import pipeline

QUOTA = 2  # grade-1 views per person in this story, so quotas run out within the evening
HOME_ADDRESS = HOME.client_addr


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    grades = dict(DEFAULT_GRADES)
    grades[1] = replace(grades[1], views=QUOTA)
    # The evening's forty files must reach the early warning, so this deployment sets no daily cap on
    # grade-1 files on notice worth the name (the cap itself: `test_review_notice_access.py`).
    policy = {**evening_policy(), "departure": {"notice_grade1_daily_cap": 1000}}
    return {"trusted_places": TRUSTED, "policy": policy, "grades": grades}


def test_a_departing_salesperson_cannot_walk_away_with_the_customers(rt, app, company, users, tmp_path):
    # -- before the notice: forty customers, an office routine, an active loan ---------------------------
    names = [f"Customer {n:02d}" for n in range(1, 41)]
    customer_ids = [company.customer(name, "vip" if n <= 3 else "ordinary") for n, name in enumerate(names, 1)]
    grades = [1] * 36 + [2, 2, 2, 3]
    doc_ids = [company.document(cid, grade=g, title=f"Dossier {n:02d}")
               for n, (cid, g) in enumerate(zip(customer_ids, grades, strict=True), 1)]
    own_doc = company.document(customer_ids[0], grade=1, title="Visit notes by Sam", compiler="sam")
    company.view(doc_ids[0], ctx=OFFICE)  # the person's usual place
    loan_before = company.loan(doc_ids[36])  # grade 2, approved before the notice: one approval sufficed
    with rt.db.session() as session:
        assert session.get(Loan, loan_before).approvals_required == 1
    sam_token = users.token("sam")
    sam_browser = app.test_client()
    login(sam_browser, "sam")
    assert sam_browser.get("/").status_code == 200

    # -- notice, given by an administrator on the page -------------------------------------------------
    admin = app.test_client()
    login(admin, "adm")
    form = admin.get("/departures/new")
    assert form.status_code == 200
    answer = admin.post("/departures/new", data={
        "csrf_token": csrf_from(form.get_data(as_text=True)), "user": company.ids["sam"],
        "notice_date": days_from_today(-2).isoformat(), "last_day": days_from_today(12).isoformat(),
        "successor": company.ids["sue"], "note": "Resigned; joins a competitor"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:1000]
    sam = company.refresh("sam")
    assert sam.status == "departing" and sam.can_sign_in and sam.last_day == days_from_today(12)
    # (the test runs on a day off: even the office view was outside working hours)
    assert company.rules() == ["notice", "outside_hours"]
    with rt.db.session() as session:
        departure = departures.departure_of(session, sam)
        assert {i.customer_id for i in departure.items} == set(customer_ids)
        assert all(i.to_user_id == company.ids["sue"] for i in departure.items)
        # key customers: the three VIPs and the four with grade 2-3 files
        assert sorted(i.customer_id for i in departure.items if i.key) == sorted(customer_ids[:3] + customer_ids[36:])
    assert len(company.events("customer:handover")) == 40

    # -- the evening, from home: forty customers' files -------------------------------------------------
    mark = company.head()
    api = ApiCaller(app, sam_token, HOME_ADDRESS)
    outcomes: dict[int, list[int]] = {}
    for doc_id in [*doc_ids, own_doc]:
        outcomes[doc_id] = [api.open_view(doc_id).status_code]
    for doc_id in doc_ids[:3]:  # and again, past the quota
        outcomes[doc_id] += [api.open_view(doc_id).status_code for _ in range(QUOTA)]
    assert all(outcomes[d] == [201] for d in doc_ids[3:36])
    assert outcomes[doc_ids[0]] == [201, 403, 403]  # one view spent at the office already
    assert outcomes[doc_ids[1]] == outcomes[doc_ids[2]] == [201, 201, 403]
    assert outcomes[doc_ids[36]] == [201]  # the loan from before the notice
    assert outcomes[doc_ids[37]] == outcomes[doc_ids[38]] == outcomes[doc_ids[39]] == [403]  # no loan
    assert outcomes[own_doc] == [403]  # a compiler reads their own file only through a loan

    # The rules fire, each once: one alert per rule, person and window.
    assert company.rules() == sorted(["notice", "many_customers", "volume_spike", "outside_hours", "new_place",
                                      "probing", "departing_access", "quotas_exhausted"])
    alerts = {a.rule: a for a in company.alerts()}
    assert alerts["many_customers"].severity == "high" and alerts["many_customers"].evidence["value"] == 37
    assert alerts["probing"].severity == "high"
    assert set(alerts["quotas_exhausted"].evidence["documents"]) == set(doc_ids[:3])
    assert any(HOME_ADDRESS in place for place in alerts["new_place"].evidence["places"])
    assert alerts["departing_access"].evidence["documents"] == [doc_ids[36]]
    assert alerts["outside_hours"].occurrences >= 36
    raised = company.events("alert:raise", after=mark)
    assert Counter(_detail(e)["rule"] for e in raised) == Counter(
        rule for rule in alerts if rule not in ("notice", "outside_hours"))

    # A loan of an important file now needs a second, different approver.
    ann = ApiCaller(app, users.token("ann"), OFFICE.client_addr)
    abe = ApiCaller(app, users.token("abe"), OFFICE.client_addr)
    asked = api.call("POST", "/api/v1/loans", json={"document_id": doc_ids[37], "reason": "Quarterly visit prep",
                                                    "category": "visit_preparation", "place": "Home", "days": 3})
    assert asked.status_code == 201, asked.get_json()
    loan_id = asked.get_json()["id"]
    with rt.db.session() as session:
        assert session.get(Loan, loan_id).approvals_required == 2
    assert ann.call("POST", f"/api/v1/loans/{loan_id}/approve", json={}).get_json()["status"] == "requested"
    assert ann.call("POST", f"/api/v1/loans/{loan_id}/approve", json={}).status_code == 403  # not twice
    assert abe.call("POST", f"/api/v1/loans/{loan_id}/approve", json={}).get_json()["status"] == "active"
    assert alerts["departing_access"].id == {a.rule: a for a in company.alerts()}["departing_access"].id

    # Nothing beyond the quota was read.
    with rt.db.session() as session:
        for doc_id in doc_ids[:36]:
            used = session.scalar(select(QuotaUsage.used).where(QuotaUsage.user_id == company.ids["sam"],
                                                                QuotaUsage.document_id == doc_id))
            assert used <= QUOTA
    opened = Counter(e.document_id for e in company.events("document:view", "allowed") if e.actor_id == sam.id)
    assert all(count <= QUOTA for count in opened.values())
    exhausted = [e for e in company.events(outcome="denied", after=mark) if e.reason_code == "quota_exhausted"]
    assert Counter(e.document_id for e in exhausted) == {doc_ids[0]: 2, doc_ids[1]: 1, doc_ids[2]: 1}

    # -- the report: every customer touched, checked against the audit log ------------------------------
    auditor = app.test_client()
    login(auditor, "aud")
    report_page = auditor.get(f"/departures/{departure.id}/report")
    assert report_page.status_code == 200
    touched = _customers_in_audit_log(rt, company.ids["sam"])
    assert touched == set(customer_ids)
    csv_answer = auditor.get(f"/departures/{departure.id}/report.csv")
    assert csv_answer.status_code == 200 and csv_answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(csv_answer.get_data().decode("utf-8-sig"))))
    assert {int(r["customer_id"]) for r in rows if r["kind"] == "customer"} == touched
    by_document = {int(r["document_id"]): r for r in rows if r["kind"] == "document"}
    views_in_log = Counter(e.document_id for e in company.events("document:view", "allowed")
                           if e.actor_id == sam.id)
    refusals_in_log = Counter(e.document_id for e in company.events(outcome="denied") if e.actor_id == sam.id
                              and e.document_id is not None)
    for doc_id in [*doc_ids, own_doc]:
        assert int(by_document[doc_id]["viewed"]) == views_in_log[doc_id], doc_id
        assert int(by_document[doc_id]["refused"]) == refusals_in_log[doc_id], doc_id
    assert int(by_document[own_doc]["compiled"]) == 1
    assert "203.0.113.9" in by_document[doc_ids[5]]["places"] and "Home" in by_document[doc_ids[5]]["declared_places"]
    assert {r["rule"] for r in rows if r["kind"] == "alert"} == set(alerts)
    pdf_answer = auditor.get(f"/departures/{departure.id}/report.pdf")
    assert pdf_answer.status_code == 200 and pdf_answer.mimetype == "application/pdf"
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf_answer.get_data())).pages)
    for name in names:
        assert name in text, name
    reports = company.events("departure:report")
    assert [(e.actor_name, e.subject_user_id, _detail(e)["format"]) for e in reports] == [
        ("aud", sam.id, "html"), ("aud", sam.id, "csv"), ("aud", sam.id, "pdf")]

    # -- the last day is brought forward to yesterday: from now on nothing is readable -------------------
    unfetched = api.open_view(doc_ids[10]).get_json()  # a view opened, its pages not yet fetched
    app.extensions[pipeline.MAINTENANCE_KEY] = float("inf")  # no request carries out the steps here
    with rt.db.session() as session:
        departures.update_departure(rt, session, company.user(session, "adm"), departure_ref(session, sam.id),
                                    last_day=days_from_today(-1), ctx=OFFICE)
    sam = company.refresh("sam")
    assert not sam.can_sign_in and not sam.disabled  # refused by the last-day check alone
    with rt.db.session() as session:
        assert session.scalar(select(ApiToken).where(ApiToken.user_id == sam.id)).revoked_at is None
        assert accounts.api_caller(session, sam_token, rt.settings) is None
    assert api.call("GET", "/api/v1/me").status_code == 401
    assert api.open_view(doc_ids[11]).status_code == 401
    assert api.call("GET", unfetched["page_url"].replace("{n}", "1")).status_code == 401
    assert api.call("POST", "/api/v1/loans", json={"document_id": doc_ids[38], "reason": "Quarterly visit prep",
                                                   "category": "visit_preparation", "place": "Home",
                                                   "days": 3}).status_code == 401
    old_session = sam_browser.get(f"/documents/{doc_ids[12]}")
    assert old_session.status_code == 302 and "/login" in old_session.headers["Location"]
    again = app.test_client()
    page = again.get("/login")
    signed = again.post("/login", data={"username": "sam", "password": "correct horse battery",
                                        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert again.get("/").status_code == 302  # not signed in
    assert signed.status_code in (200, 302)
    assert company.events("auth:login", "denied")[-1].reason_code == "account_disabled"

    # -- `vault departures run` carries out and audits the last-day steps --------------------------------
    mark = company.head()
    result = run_cli(rt, tmp_path, "departures", "run")
    assert result.exit_code == 0, result.output
    assert "1 departure(s) processed" in result.output
    sam = company.refresh("sam")
    assert sam.disabled and not sam.can_sign_in
    with rt.db.session() as session:
        open_loans = session.scalars(select(Loan).where(Loan.borrower_id == sam.id,
                                                        Loan.status.in_(["requested", "approved", "active"]))).all()
        assert open_loans == []
        assert session.scalar(select(ApiToken).where(ApiToken.user_id == sam.id)).revoked_at is not None
    steps = [(e.action, e.actor_name) for e in company.events(after=mark)]
    operator = operator_name()  # the steps were carried out by `vault departures run`
    assert steps.count(("loan:revoke", operator)) == 2
    assert ("token:revoke", operator) in steps and ("user:disable", operator) in steps
    assert ("auth:sessions_end", operator) in steps and sam.session_epoch > 0
    assert steps[-1] == ("departure:offboard", operator)
    again_run = run_cli(rt, tmp_path, "departures", "run")
    assert "0 departure(s) processed" in again_run.output


def departure_ref(session: Any, user_id: int) -> Any:
    from vault.models import Departure

    return session.scalar(select(Departure).where(Departure.user_id == user_id))


def _detail(event: Any) -> dict[str, Any]:
    import json

    return json.loads(event.detail)


def _customers_in_audit_log(rt: Any, user_id: int) -> set[int]:
    """Customers named by the person's own audit records, directly or through a document."""
    from vault.models import AuditEvent

    with rt.db.session() as session:
        touched: set[int] = set()
        for event in session.scalars(select(AuditEvent).where(AuditEvent.actor_id == user_id)):
            if event.document_id is not None:
                touched.add(session.get(Document, event.document_id).customer_id)
            elif event.customer_id is not None:
                touched.add(event.customer_id)
        return touched
